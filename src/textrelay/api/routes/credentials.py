from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from sqlalchemy import select

from textrelay.api.deps import AdminDep, ContextDep, PrincipalDep, SandboxDep, SessionDep, public_base_url
from textrelay.api.pagination import page
from textrelay.services import credentials, webhooks
from textrelay.services.credentials import CredentialCreate, CredentialUpdate, VerifyRequest
from textrelay.store.models import Credential

router = APIRouter(prefix="/api/v1/credentials", tags=["API credentials"])


def _view(session: Any, cred: Credential, sandbox: Any, request: Request) -> dict[str, Any]:
    return credentials.view(cred, sandbox, webhooks.for_credential(session, cred.id), public_base_url(request))


@router.get("")
def list_credentials(request: Request, session: SessionDep, sandbox: SandboxDep, _p: PrincipalDep,
                     limit: Annotated[int, Query(ge=1, le=200)] = 50,
                     cursor: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
    rows, next_cursor = page(session, select(Credential).where(Credential.sandbox_id == sandbox.id),
                             Credential, limit, cursor, newest_first=False)
    return {"items": [_view(session, c, sandbox, request) for c in rows], "next_cursor": next_cursor}


@router.post("", status_code=201)
def create_credential(request: Request, body: CredentialCreate, session: SessionDep, ctx: ContextDep,
                      sandbox: SandboxDep, _admin: AdminDep) -> dict[str, Any]:
    cred = credentials.create(session, ctx.keyring, sandbox, body)
    return _view(session, cred, sandbox, request)


@router.get("/{credential_id}")
def get_credential(request: Request, credential_id: str, session: SessionDep, sandbox: SandboxDep,
                   _p: PrincipalDep) -> dict[str, Any]:
    return _view(session, credentials.get(session, sandbox, credential_id), sandbox, request)


@router.patch("/{credential_id}")
def update_credential(request: Request, credential_id: str, body: CredentialUpdate, session: SessionDep,
                      ctx: ContextDep, sandbox: SandboxDep, _admin: AdminDep) -> dict[str, Any]:
    cred = credentials.update(session, ctx.keyring, sandbox, credential_id, body)
    return _view(session, cred, sandbox, request)


@router.delete("/{credential_id}", status_code=204)
def delete_credential(credential_id: str, session: SessionDep, sandbox: SandboxDep, _admin: AdminDep) -> Response:
    credentials.delete(session, sandbox, credential_id)
    return Response(status_code=204)


@router.post("/{credential_id}/verify")
async def verify_credential(credential_id: str, ctx: ContextDep, sandbox: SandboxDep, _admin: AdminDep,
                            body: Annotated[VerifyRequest | None, Body()] = None) -> dict[str, Any]:
    with ctx.db.session() as session:
        cred = credentials.get(session, sandbox, credential_id)
    result = await credentials.verify(cred, ctx.keyring, body or VerifyRequest())
    with ctx.db.session() as session:
        credentials.record_verification(session, sandbox, credential_id, result)
    return result
