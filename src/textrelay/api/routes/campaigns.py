from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from textrelay.api.deps import ContextDep, PrincipalDep, SandboxDep, SessionDep
from textrelay.api.pagination import page
from textrelay.errors import ValidationFailed
from textrelay.services import campaigns
from textrelay.services.campaigns import AudienceImport, AudienceJson, CampaignCreate
from textrelay.store.models import Campaign, ChannelConfiguration

router = APIRouter(prefix="/api/v1/campaigns", tags=["Campaigns"])


@router.get("")
def list_campaigns(session: SessionDep, sandbox: SandboxDep, _p: PrincipalDep,
                   status: Annotated[str | None, Query(max_length=16)] = None,
                   limit: Annotated[int, Query(ge=1, le=200)] = 50,
                   cursor: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
    rows, next_cursor = page(session, campaigns.list_query(sandbox, status), Campaign, limit, cursor)
    return {"items": [campaigns.view(c) for c in rows], "next_cursor": next_cursor}


@router.post("", status_code=201)
def create_campaign(body: CampaignCreate, session: SessionDep, sandbox: SandboxDep,
                    _p: PrincipalDep) -> dict[str, Any]:
    campaign = campaigns.create(session, sandbox, body)
    session.commit()
    return campaigns.progress(session, campaign, session.get(ChannelConfiguration, campaign.channel_configuration_id))


@router.get("/{campaign_id}")
def get_campaign(campaign_id: str, session: SessionDep, sandbox: SandboxDep, _p: PrincipalDep) -> dict[str, Any]:
    campaign = campaigns.get(session, sandbox, campaign_id)
    return campaigns.progress(session, campaign, session.get(ChannelConfiguration, campaign.channel_configuration_id))


@router.get("/{campaign_id}/report")
def campaign_report(campaign_id: str, session: SessionDep, sandbox: SandboxDep, _p: PrincipalDep) -> dict[str, Any]:
    return campaigns.report(session, campaigns.get(session, sandbox, campaign_id))


@router.post("/{campaign_id}/audience", openapi_extra={"requestBody": {"content": {
    "text/csv": {"schema": {"type": "string"}},
    "application/json": {"schema": AudienceJson.model_json_schema()}}}})
async def upload_audience(campaign_id: str, request: Request, ctx: ContextDep, session: SessionDep,
                          sandbox: SandboxDep, _p: PrincipalDep,
                          phone_column: Annotated[str | None, Query(max_length=100)] = None) -> dict[str, Any]:
    """Add members: a `text/csv` body (streamed; a phone column and attribute columns) or JSON
    `{"members": [{"to": ..., "profile": {...}}]}`. Bad rows are counted and reported, not fatal."""
    # The auth lookup may have written (last use of the key); end that transaction before the
    # importer's own ones, or SQLite would make them wait for it.
    await run_in_threadpool(session.commit)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    importer = await run_in_threadpool(AudienceImport, ctx.db, sandbox, campaign_id, phone_column)
    if content_type == "application/json":
        raw = await request.body()
        try:
            data = AudienceJson.model_validate_json(raw)
        except ValidationError as exc:
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
        report = await run_in_threadpool(importer.add_members, data.members)
    elif content_type in ("text/csv", "text/plain", "application/csv"):
        pending = b""
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= 1 << 16:
                await run_in_threadpool(importer.feed, pending)
                pending = b""
        if pending:
            await run_in_threadpool(importer.feed, pending)
        report = await run_in_threadpool(importer.finish_csv)
    else:
        raise ValidationFailed.field("content-type", "send text/csv or application/json")
    return report.as_dict()


@router.post("/{campaign_id}/start")
def start_campaign(campaign_id: str, session: SessionDep, sandbox: SandboxDep, _p: PrincipalDep) -> dict[str, Any]:
    campaign = campaigns.start(session, sandbox, campaign_id)
    session.commit()
    return campaigns.progress(session, campaign, session.get(ChannelConfiguration, campaign.channel_configuration_id))


@router.post("/{campaign_id}/cancel")
def cancel_campaign(campaign_id: str, session: SessionDep, sandbox: SandboxDep, _p: PrincipalDep) -> dict[str, Any]:
    canceled = campaigns.cancel(session, sandbox, campaign_id)
    session.commit()
    campaign = campaigns.get(session, sandbox, campaign_id)
    return {**campaigns.progress(session, campaign), "messages_canceled": canceled}
