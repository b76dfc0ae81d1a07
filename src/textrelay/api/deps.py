"""Request dependencies: the store session, who is calling, and in which sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from textrelay.errors import NotFound
from textrelay.services import access, sandboxes
from textrelay.services.access import Principal
from textrelay.services.context import Context
from textrelay.store.models import Sandbox


def get_context(request: Request) -> Context:
    return request.app.state.context


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.context.db.session() as session:
        yield session


# scope="function": commit before the answer is sent, so a 2xx means the write is durable.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ContextDep = Annotated[Context, Depends(get_context)]


def get_principal(request: Request, session: SessionDep) -> Principal:
    # The API takes API keys only: a UI session cookie is not accepted here, so no cross-site
    # request can borrow a signed-in admin's browser to call it.
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        principal = access.authenticate(session, token.strip())
        if principal.key_id:
            access.touch_key(request.app.state.context.db, principal.key_id)
        return principal
    return access.authenticate(session, None)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_sandbox(
    session: SessionDep,
    principal: PrincipalDep,
    x_sandbox_name: Annotated[str | None, Header(max_length=64, description="Sandbox of the call; default prod.")]
    = None,
) -> Sandbox:
    name = x_sandbox_name or sandboxes.DEFAULT_SANDBOX
    try:
        sandbox = sandboxes.get_by_name(session, name)
    except NotFound:
        raise NotFound(f"sandbox '{name}' does not exist") from None
    if not principal.can_see(sandbox):
        # A key scoped to another sandbox learns nothing, not even that this one exists.
        raise NotFound(f"sandbox '{name}' does not exist")
    return sandbox


SandboxDep = Annotated[Sandbox, Depends(get_sandbox)]


def require_admin(principal: PrincipalDep) -> Principal:
    principal.require_admin()
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


def public_base_url(request: Request) -> str:
    """The base URL providers reach us on: configured, else rebuilt from the request."""
    ctx: Context = request.app.state.context
    if ctx.settings.public_url:
        return ctx.settings.public_url.rstrip("/")
    scheme = request.url.scheme
    host = request.headers.get("host") or request.url.netloc
    if ctx.settings.trust_proxy_headers:
        scheme = request.headers.get("x-forwarded-proto", scheme).split(",")[0].strip()
        host = request.headers.get("x-forwarded-host", host).split(",")[0].strip()
    return f"{scheme}://{host}"
