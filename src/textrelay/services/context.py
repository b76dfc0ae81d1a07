"""What every use case needs: the store, the key ring, the settings."""

from __future__ import annotations

from dataclasses import dataclass

from textrelay.config import Settings
from textrelay.secrets import KeyRing
from textrelay.store.db import Database


@dataclass
class Context:
    settings: Settings
    db: Database
    keyring: KeyRing

    @classmethod
    def from_settings(cls, settings: Settings) -> Context:
        # The data directory holds the database and the key file: owner only.
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        keyring = KeyRing.from_settings(settings.secret_key, settings.resolved_key_file)
        return cls(settings=settings, db=db, keyring=keyring)
