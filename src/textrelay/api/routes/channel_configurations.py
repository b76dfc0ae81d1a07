from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from textrelay.api.deps import AdminDep, PrincipalDep, SandboxDep, SessionDep
from textrelay.api.pagination import page
from textrelay.services import channel_configurations as configs
from textrelay.services.channel_configurations import ChannelConfigurationCreate, ChannelConfigurationUpdate
from textrelay.store.models import ChannelConfiguration

router = APIRouter(prefix="/api/v1/channel-configurations", tags=["Channel configurations"])


def _view(session: Any, config: ChannelConfiguration, sandbox: Any) -> dict[str, Any]:
    return configs.view(config, sandbox, configs.credential_names(session, [config]).get(config.credential_id))


@router.get("")
def list_channel_configurations(session: SessionDep, sandbox: SandboxDep, _p: PrincipalDep,
                                limit: Annotated[int, Query(ge=1, le=200)] = 50,
                                cursor: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
    rows, next_cursor = page(session, configs.list_query(sandbox), ChannelConfiguration, limit, cursor,
                             newest_first=False)
    names = configs.credential_names(session, rows)
    return {"items": [configs.view(c, sandbox, names.get(c.credential_id)) for c in rows],
            "next_cursor": next_cursor}


@router.post("", status_code=201)
def create_channel_configuration(body: ChannelConfigurationCreate, session: SessionDep, sandbox: SandboxDep,
                                 _admin: AdminDep) -> dict[str, Any]:
    return _view(session, configs.create(session, sandbox, body), sandbox)


@router.get("/{config_id}")
def get_channel_configuration(config_id: str, session: SessionDep, sandbox: SandboxDep,
                              _p: PrincipalDep) -> dict[str, Any]:
    return _view(session, configs.get(session, sandbox, config_id), sandbox)


@router.patch("/{config_id}")
def update_channel_configuration(config_id: str, body: ChannelConfigurationUpdate, session: SessionDep,
                                 sandbox: SandboxDep, _admin: AdminDep) -> dict[str, Any]:
    return _view(session, configs.update(session, sandbox, config_id, body), sandbox)


@router.delete("/{config_id}", status_code=204)
def delete_channel_configuration(config_id: str, session: SessionDep, sandbox: SandboxDep,
                                 _admin: AdminDep) -> Response:
    configs.delete(session, sandbox, config_id)
    return Response(status_code=204)
