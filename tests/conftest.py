"""Shared fixtures: a fresh store per test (SQLite, or PostgreSQL when
TEXTRELAY_TEST_DATABASE_URL is set), and the real service on a loopback port."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ApiClient, LiveService, start_service
from textrelay.config import Settings
from textrelay.services import bootstrap
from textrelay.services.context import Context

PG_URL = os.environ.get("TEXTRELAY_TEST_DATABASE_URL")
SHARED = Path(__file__).resolve().parents[2] / "shared"


def _admin_pg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A brand-new, empty database for one test."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'textrelay.db'}"
        return
    import psycopg

    name = f"textrelay_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_pg_url(PG_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_URL.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(_admin_pg_url(PG_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    secret_key_file=tmp_path / "data" / "secret.key", run_worker=False,
                    worker_poll_interval=0.05)


@pytest.fixture
def context(settings: Settings) -> Iterator[Context]:
    ctx = Context.from_settings(settings)
    ctx.db.upgrade()
    with ctx.db.session() as session:
        bootstrap.run(session)
    yield ctx
    ctx.db.dispose()


@pytest.fixture
def service(context: Context) -> Iterator[LiveService]:
    """The real service (API, hooks, UI) on a loopback port, without a delivery worker."""
    live = start_service(context)
    yield live
    live.stop()


@pytest.fixture
def api(service: LiveService) -> ApiClient:
    """An admin client of the live service, in the prod sandbox."""
    return service.client()
