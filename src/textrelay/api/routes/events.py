"""``/api/v1/events``: where inbound messages and consent changes are forwarded, and the outbox.

Including this router also runs the events-out dispatcher for as long as the app serves.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from textrelay.api.deps import AdminDep, ContextDep, PrincipalDep, SandboxDep, SessionDep
from textrelay.inbound import events
from textrelay.inbound.events import DestinationSet

router = APIRouter(prefix="/api/v1/events", tags=["events out"], lifespan=events.lifespan)


@router.get("/destination")
def get_destination(session: SessionDep, sandbox: SandboxDep, _admin: AdminDep) -> dict[str, Any]:
    return events.destination_view(events.get_destination(session, sandbox), sandbox)


@router.put("/destination")
def set_destination(body: DestinationSet, session: SessionDep, ctx: ContextDep, sandbox: SandboxDep,
                    _admin: AdminDep) -> dict[str, Any]:
    row, generated = events.set_destination(session, ctx.keyring, sandbox, body)
    return events.destination_view(row, sandbox, generated)


@router.delete("/destination", status_code=204)
def delete_destination(session: SessionDep, sandbox: SandboxDep, _admin: AdminDep) -> Response:
    events.delete_destination(session, sandbox)
    return Response(status_code=204)


@router.get("/deliveries")
def list_deliveries(session: SessionDep, sandbox: SandboxDep, _p: PrincipalDep,
                    status: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    return {"items": [events.delivery_view(r) for r in events.list_deliveries(session, sandbox, status, limit)]}
