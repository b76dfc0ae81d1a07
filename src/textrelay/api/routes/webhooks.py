"""``/api/v1/webhooks``: inbound (keywords, replies, revocation policy) and feedback webhooks."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from textrelay.api.deps import AdminDep, ContextDep, PrincipalDep, SandboxDep, SessionDep, public_base_url
from textrelay.services import webhooks
from textrelay.services.webhook_secrets import RotateSecret
from textrelay.services.webhooks import WebhookCreate, WebhookUpdate
from textrelay.store.models import Credential, Webhook

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


def _view(session: Any, hook: Webhook, request: Request) -> dict[str, Any]:
    return webhooks.view(hook, session.get(Credential, hook.credential_id), public_base_url(request))


@router.get("")
def list_webhooks(request: Request, session: SessionDep, sandbox: SandboxDep, _p: PrincipalDep,
                  type: Annotated[Literal["inbound", "feedback"] | None, Query()] = None,
                  credential_id: Annotated[str | None, Query(max_length=32)] = None) -> dict[str, Any]:
    rows = webhooks.list_all(session, sandbox, type, credential_id)
    return {"items": [_view(session, h, request) for h in rows], "next_cursor": None}


@router.post("", status_code=201)
def create_webhook(request: Request, body: WebhookCreate, session: SessionDep, sandbox: SandboxDep,
                   ctx: ContextDep, _admin: AdminDep) -> dict[str, Any]:
    return _view(session, webhooks.create(session, sandbox, body, ctx.keyring), request)


@router.get("/{webhook_id}")
def get_webhook(request: Request, webhook_id: str, session: SessionDep, sandbox: SandboxDep,
                _p: PrincipalDep) -> dict[str, Any]:
    return _view(session, webhooks.get(session, sandbox, webhook_id), request)


@router.patch("/{webhook_id}")
def update_webhook(request: Request, webhook_id: str, body: WebhookUpdate, session: SessionDep,
                   sandbox: SandboxDep, _admin: AdminDep) -> dict[str, Any]:
    return _view(session, webhooks.update(session, sandbox, webhook_id, body), request)


@router.post("/{webhook_id}/rotate-secret")
def rotate_webhook_secret(request: Request, webhook_id: str, session: SessionDep, sandbox: SandboxDep,
                          ctx: ContextDep, _admin: AdminDep, body: RotateSecret | None = None) -> dict[str, Any]:
    """A custom webhook's new secret, shown in clear in this answer only; the old one stops working."""
    hook = webhooks.rotate_secret(session, ctx.keyring, sandbox, webhook_id, body.secret if body else None)
    return _view(session, hook, request)


@router.delete("/{webhook_id}", status_code=204)
def delete_webhook(webhook_id: str, session: SessionDep, sandbox: SandboxDep, _admin: AdminDep) -> Response:
    webhooks.delete(session, sandbox, webhook_id)
    return Response(status_code=204)
