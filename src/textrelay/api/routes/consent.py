"""``/api/v1/consent``: consent per number with its history; CSV import (streamed) and export."""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from textrelay.api.deps import AdminDep, ContextDep, PrincipalDep, SandboxDep, SessionDep
from textrelay.errors import ValidationFailed
from textrelay.services import consent
from textrelay.services.consent import ConsentSet

router = APIRouter(prefix="/api/v1/consent", tags=["consent"])

Status = Literal["opted_in", "opted_out", "pending"]


@router.get("")
def list_consent(session: SessionDep, sandbox: SandboxDep, _p: PrincipalDep,
                 status: Annotated[Status | None, Query()] = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50,
                 cursor: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
    rows, next_cursor = consent.list_page(session, sandbox, status, limit, cursor)
    return {"items": [consent.view(session, sandbox, r.phone_number, r, with_history=False) for r in rows],
            "next_cursor": next_cursor}


@router.get("/export.csv")
def export_consent(ctx: ContextDep, sandbox: SandboxDep, _p: PrincipalDep,
                   status: Annotated[Status | None, Query()] = None) -> StreamingResponse:
    def rows() -> Iterator[str]:
        with ctx.db.session() as session:
            yield from consent.export_csv(session, sandbox, status)

    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="consent-{sandbox.name}.csv"'})


IMPORT_CHUNK_LINES = 1000


async def _line_chunks(request: Request) -> AsyncIterator[list[str]]:
    """The body's lines, decoded as UTF-8, in chunks as they arrive."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending, lines = "", []
    async for chunk in request.stream():
        try:
            pending += decoder.decode(chunk)
        except UnicodeDecodeError:
            raise ValidationFailed.field("file", "the CSV is not UTF-8 text") from None
        *complete, pending = pending.split("\n")
        lines.extend(line + "\n" for line in complete)
        if len(lines) >= IMPORT_CHUNK_LINES:
            yield lines
            lines = []
    try:
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ValidationFailed.field("file", "the CSV is not UTF-8 text") from None
    if pending:
        lines.append(pending)
    if lines:
        yield lines


@router.post("/import", openapi_extra={"requestBody": {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"},
                 "example": "phone_number,status,sender_number,detail\n+14155550199,opted_out,,paper form\n"}}}})
async def import_consent(request: Request, session: SessionDep, sandbox: SandboxDep,
                         _admin: AdminDep) -> dict[str, Any]:
    """Body: CSV text (``text/csv``) with ``phone_number`` and ``status`` columns, optionally
    ``sender_number`` and ``detail``; read and imported as it streams in. All or nothing."""
    job = consent.ConsentImport(session, sandbox)
    async for lines in _line_chunks(request):
        await asyncio.to_thread(job.feed, lines)
    return await asyncio.to_thread(job.finish)


@router.get("/{number}")
def get_consent(number: str, session: SessionDep, sandbox: SandboxDep, _p: PrincipalDep) -> dict[str, Any]:
    return consent.lookup(session, sandbox, number)


@router.put("/{number}")
def set_consent(number: str, body: ConsentSet, session: SessionDep, sandbox: SandboxDep,
                admin: AdminDep) -> dict[str, Any]:
    row = consent.set_by_api(session, sandbox, number, body, actor=getattr(admin, "username", None))
    return consent.view(session, sandbox, row.phone_number, row)
