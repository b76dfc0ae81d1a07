"""Encryption of secrets at rest.

Secrets (auth tokens, passwords, private keys) are encrypted with Fernet (AES-128-CBC + HMAC-SHA256)
under a key ring held outside the database: ``TEXTRELAY_SECRET_KEY`` (comma-separated, newest
first) or a key file with one key per line, newest first, mode 0600. Rotation without downtime:
``textrelay secrets rotate`` puts a new key at the head of the file and re-encrypts every row; a
running process that meets a token it cannot read re-reads the key file once and tries again, so
old and new processes keep working throughout. ``--retire`` drops the old keys afterwards.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from textrelay.errors import TextrelayError


class SecretsUnavailable(TextrelayError):
    status = 500
    title = "Secret could not be decrypted"


def ensure_key_file(path: Path) -> bool:
    """Create a key file with one fresh key (0600) if none exists; True when created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(Fernet.generate_key().decode() + "\n")
    return True


def _read_keys(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


class KeyRing:
    """Encrypts with the newest key, decrypts with any key in the ring."""

    def __init__(self, keys: list[str], key_file: Path | None = None) -> None:
        if not keys:
            raise ValueError("the key ring is empty")
        self._key_file = key_file
        self._lock = threading.Lock()
        self._set(keys)

    @classmethod
    def from_settings(cls, secret_key: str | None, key_file: Path) -> KeyRing:
        if secret_key:
            return cls([k.strip() for k in secret_key.split(",") if k.strip()])
        ensure_key_file(key_file)
        return cls(_read_keys(key_file), key_file)

    def _set(self, keys: list[str]) -> None:
        self.keys = keys
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def reload(self) -> bool:
        if self._key_file is None or not self._key_file.exists():
            return False
        keys = _read_keys(self._key_file)
        with self._lock:
            changed = keys != self.keys
            if changed:
                self._set(keys)
        return changed

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            if self.reload():
                try:
                    return self._fernet.decrypt(token.encode()).decode()
                except InvalidToken:
                    pass
            raise SecretsUnavailable("a stored secret cannot be decrypted with the configured keys") from None

    def rotate_token(self, token: str) -> str:
        """Re-encrypt ``token`` under the newest key."""
        return self._fernet.rotate(token.encode()).decode()

    def add_key_to_file(self) -> None:
        if self._key_file is None:
            raise TextrelayError("keys come from TEXTRELAY_SECRET_KEY; rotate by editing that variable")
        new = Fernet.generate_key().decode()
        self._write([new, *self.keys])

    def retire_old_keys(self) -> None:
        if self._key_file is None:
            raise TextrelayError("keys come from TEXTRELAY_SECRET_KEY; retire keys by editing that variable")
        self._write(self.keys[:1])

    def _write(self, keys: list[str]) -> None:
        assert self._key_file is not None
        tmp = self._key_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(keys) + "\n")
        os.replace(tmp, self._key_file)
        with self._lock:
            self._set(keys)


def mask(secret: str | None) -> str | None:
    """What the API and UI show of a secret: at most its last 4 characters."""
    if not secret:
        return None
    tail = secret[-4:] if len(secret) >= 12 else ""
    return "••••" + tail
