from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse

from textrelay.api.deps import PrincipalDep, SandboxDep, SessionDep
from textrelay.api.pagination import page
from textrelay.services import messages
from textrelay.services.messages import SendRequest
from textrelay.store.models import Message

router = APIRouter(prefix="/api/v1/messages", tags=["Messages"])


@router.post("", status_code=202, responses={202: {"description": "Accepted: stored, and queued unless excluded."}})
def send_message(body: SendRequest, session: SessionDep, sandbox: SandboxDep, _p: PrincipalDep,
                 idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
                 ) -> JSONResponse:
    """Send one message. The message is committed before this answers."""
    result = messages.send(session, sandbox, body, idempotency_key)
    # Commit here, not when the dependency closes: a 202 promises the message is stored.
    session.commit()
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return JSONResponse(result.body, status_code=result.status_code, headers=headers)


@router.get("")
def list_messages(session: SessionDep, sandbox: SandboxDep, _p: PrincipalDep,
                  status: Annotated[str | None, Query(max_length=16)] = None,
                  to: Annotated[str | None, Query(max_length=32)] = None,
                  campaign_id: Annotated[str | None, Query(max_length=64)] = None,
                  channel_configuration: Annotated[str | None, Query(max_length=100)] = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50,
                  cursor: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
    query = messages.list_query(session, sandbox, status=status, to=to, campaign_id=campaign_id,
                                channel_configuration=channel_configuration)
    rows, next_cursor = page(session, query, Message, limit, cursor, newest_first=True)
    return {"items": [messages.view(m) for m in rows], "next_cursor": next_cursor}


@router.get("/{message_id}")
def get_message(message_id: str, session: SessionDep, sandbox: SandboxDep, _p: PrincipalDep) -> dict[str, Any]:
    message = messages.get(session, sandbox, message_id)
    return messages.view(message, messages.history(session, message.id))
