from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from textrelay.api.deps import AdminDep, SessionDep
from textrelay.errors import Forbidden
from textrelay.services import access

router = APIRouter(prefix="/api/v1/api-keys", tags=["api keys"])


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    role: Literal["admin", "sender"]
    sandbox: str | None = Field(default=None, max_length=64, description="Limit the key to this sandbox.")


def _view(key: Any) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "role": key.role, "prefix": key.prefix,
            "sandbox_id": key.sandbox_id, "created_at": key.created_at.isoformat(),
            "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None}


@router.get("")
def list_keys(session: SessionDep, principal: AdminDep) -> dict[str, Any]:
    keys = [k for k in access.list_keys(session) if principal.sandbox_id in (None, k.sandbox_id)]
    return {"items": [_view(k) for k in keys]}


@router.post("", status_code=201)
def create_key(body: KeyCreate, session: SessionDep, principal: AdminDep) -> dict[str, Any]:
    if principal.sandbox_id is not None:
        raise Forbidden("a sandbox-scoped key cannot create API keys")
    key, token = access.create_key(session, body.name, body.role, body.sandbox)
    return {**_view(key), "key": token}


@router.delete("/{key_id}", status_code=204)
def revoke_key(key_id: str, session: SessionDep, principal: AdminDep) -> Response:
    if principal.sandbox_id is not None:
        raise Forbidden("a sandbox-scoped key cannot revoke API keys")
    access.revoke_key(session, key_id)
    return Response(status_code=204)
