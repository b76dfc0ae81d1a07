"""``/api/v1/inbound-messages``: every inbound message, newest first, with filters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from textrelay.api.deps import PrincipalDep, SandboxDep, SessionDep
from textrelay.services import inbound_messages
from textrelay.services.inbound_messages import Filters

router = APIRouter(prefix="/api/v1/inbound-messages", tags=["inbound messages"])


@router.get("")
def list_inbound(session: SessionDep, sandbox: SandboxDep, _p: PrincipalDep,
                 from_: Annotated[str | None, Query(alias="from", max_length=64)] = None,
                 to: Annotated[str | None, Query(max_length=64)] = None,
                 category: Annotated[str | None, Query(max_length=32,
                                                       description="opt_out, opt_in, double_opt_in, help, "
                                                       "custom or none")] = None,
                 consent_change: Annotated[str | None, Query(max_length=16)] = None,
                 q: Annotated[str | None, Query(max_length=200, description="Text in the body.")] = None,
                 since: Annotated[datetime | None, Query()] = None,
                 until: Annotated[datetime | None, Query()] = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50,
                 cursor: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
    filters = Filters(from_number=from_, to_number=to, category=category, consent_change=consent_change,
                      text=q, since=since, until=until)
    rows, next_cursor = inbound_messages.list_page(session, sandbox, filters, limit, cursor)
    return {"items": [inbound_messages.view(r) for r in rows], "next_cursor": next_cursor}


@router.get("/{message_id}")
def get_inbound(message_id: str, session: SessionDep, sandbox: SandboxDep, _p: PrincipalDep) -> dict[str, Any]:
    return inbound_messages.view(inbound_messages.get(session, sandbox, message_id))
