"""``/api/v1/consent``: consent per number with its history; CSV import (streamed) and export."""

from __future__ import annotations

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


async def _lines(request: Request) -> AsyncIterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    async for chunk in request.stream():
        try:
            pending += decoder.decode(chunk)
        except UnicodeDecodeError:
            raise ValidationFailed.field("file", "the CSV is not UTF-8 text") from None
        *complete, pending = pending.split("\n")
        for line in complete:
            yield line + "\n"
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


@router.post("/import")
async def import_consent(request: Request, ctx: ContextDep, sandbox: SandboxDep,
                         _admin: AdminDep) -> dict[str, Any]:
    """Body: CSV text (``text/csv``) with ``phone_number`` and ``status`` columns, optionally
    ``sender_number`` and ``detail``. All or nothing."""
    lines = [line async for line in _lines(request)]
    import asyncio

    def run() -> dict[str, Any]:
        with ctx.db.session() as session:
            return consent.import_csv(session, sandbox, lines)

    return await asyncio.to_thread(run)


@router.get("/{number}")
def get_consent(number: str, session: SessionDep, sandbox: SandboxDep, _p: PrincipalDep) -> dict[str, Any]:
    return consent.lookup(session, sandbox, number)


@router.put("/{number}")
def set_consent(number: str, body: ConsentSet, session: SessionDep, sandbox: SandboxDep,
                admin: AdminDep) -> dict[str, Any]:
    row = consent.set_by_api(session, sandbox, number, body, actor=getattr(admin, "username", None))
    return consent.view(session, sandbox, row.phone_number, row)
