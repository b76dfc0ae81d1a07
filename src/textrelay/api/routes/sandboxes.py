from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from textrelay.api.deps import AdminDep, PrincipalDep, SessionDep
from textrelay.services import sandboxes

router = APIRouter(prefix="/api/v1/sandboxes", tags=["sandboxes"])


class SandboxCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=63, description="Lowercase letters, digits and '-'.")


def _view(sandbox: Any) -> dict[str, Any]:
    return {"id": sandbox.id, "name": sandbox.name, "created_at": sandbox.created_at.isoformat()}


@router.get("")
def list_sandboxes(session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    return {"items": [_view(s) for s in sandboxes.list_all(session) if principal.can_see(s)]}


@router.post("", status_code=201)
def create_sandbox(body: SandboxCreate, session: SessionDep, principal: AdminDep) -> dict[str, Any]:
    if principal.sandbox_id is not None:
        from textrelay.errors import Forbidden

        raise Forbidden("a sandbox-scoped key cannot create sandboxes")
    return _view(sandboxes.create(session, body.name))


@router.delete("/{name}", status_code=204)
def delete_sandbox(name: str, session: SessionDep, principal: AdminDep) -> Response:
    sandbox = sandboxes.get_by_name(session, name)
    if not principal.can_see(sandbox):
        from textrelay.errors import NotFound

        raise NotFound(f"sandbox '{name}' does not exist")
    sandboxes.delete(session, name)
    return Response(status_code=204)
