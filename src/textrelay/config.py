"""Settings, read once from the environment (prefix ``TEXTRELAY_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TEXTRELAY_", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Holds the SQLite file and the key file.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite in data_dir if unset.")
    secret_key: str | None = Field(
        default=None, description="Comma-separated Fernet keys, newest first; overrides the key file."
    )
    secret_key_file: Path | None = Field(default=None, description="Key file; data_dir/secret.key if unset.")
    public_url: str | None = Field(
        default=None, description="Public base URL providers call (webhooks); defaults to the request's own."
    )
    trust_proxy_headers: bool = Field(
        default=False, description="Honour X-Forwarded-Proto/Host when rebuilding the public URL."
    )
    host: str = "127.0.0.1"
    port: int = 8000
    session_secret: str | None = None
    run_worker: bool = True
    worker_batch_size: int = 500
    worker_concurrency: int = 64
    worker_poll_interval: float = 0.2
    worker_lease_seconds: float = Field(
        default=60.0, description="How long a claimed message stays with its worker before another may take it back."
    )
    max_body_bytes: int = 1_000_000
    max_upload_bytes: int = 500_000_000
    log_level: str = "INFO"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'textrelay.db').resolve()}"

    @property
    def resolved_key_file(self) -> Path:
        return self.secret_key_file or (self.data_dir / "secret.key")


@lru_cache
def get_settings() -> Settings:
    return Settings()
