"""API keys, admin UI logins, and who may do what."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from textrelay.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from textrelay.services import sandboxes
from textrelay.store.db import Database
from textrelay.store.models import ApiKey, Sandbox, User, utcnow

ROLES = ("admin", "sender")
KEY_PREFIX = "trk_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role, and the one sandbox it is limited to (None: all)."""

    role: str
    sandbox_id: str | None
    key_id: str | None = None
    username: str | None = None

    def require_admin(self) -> None:
        if self.role != "admin":
            raise Forbidden("this call changes configuration and needs an admin API key")

    def can_see(self, sandbox: Sandbox) -> bool:
        return self.sandbox_id is None or self.sandbox_id == sandbox.id


def hash_key(token: str) -> str:
    # API keys carry 256 bits of randomness, so a fast hash is enough to store them safely.
    return hashlib.sha256(token.encode()).hexdigest()


def create_key(session: Session, name: str, role: str, sandbox_name: str | None = None) -> tuple[ApiKey, str]:
    """A new API key; the plaintext is returned once and never stored."""
    if role not in ROLES:
        raise ValidationFailed.field("role", f"must be one of {', '.join(ROLES)}")
    if not name or len(name) > 100:
        raise ValidationFailed.field("name", "1 to 100 characters")
    sandbox_id = sandboxes.get_by_name(session, sandbox_name).id if sandbox_name else None
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, role=role, sandbox_id=sandbox_id, prefix=token[:10], key_hash=hash_key(token))
    session.add(key)
    session.flush()
    return key, token


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.revoked_at.is_(None)).order_by(ApiKey.created_at)))


def revoke_key(session: Session, key_id: str) -> None:
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        raise NotFound(f"API key {key_id} does not exist")
    key.revoked_at = utcnow()


def authenticate(session: Session, token: str | None) -> Principal:
    """Who holds ``token``. Reads only: the request's transaction takes no write lock here."""
    if not token:
        raise Unauthorized("an API key is required: Authorization: Bearer <key>")
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(token)))
    if key is None or key.revoked_at is not None:
        raise Unauthorized("the API key is not valid")
    return Principal(role=key.role, sandbox_id=key.sandbox_id, key_id=key.id)


_touched: dict[str, float] = {}


def touch_key(db: Database, key_id: str) -> None:
    """Record that a key was used, at most once a minute per key and process, in its own short
    transaction (a write inside the request's session would hold SQLite's lock for the whole call)."""
    now = time.monotonic()
    if now - _touched.get(key_id, -1e9) < 60:
        return
    _touched[key_id] = now
    with db.session() as session:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))


# Admin UI logins. Passwords are hashed with scrypt (stdlib), salted per user.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


def create_user(session: Session, username: str, password: str) -> User:
    if not username or len(username) > 100:
        raise ValidationFailed.field("username", "1 to 100 characters")
    if len(password) < 10:
        raise ValidationFailed.field("password", "at least 10 characters")
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        user = User(username=username, password_hash=hash_password(password))
        session.add(user)
    else:
        user.password_hash = hash_password(password)
    session.flush()
    return user


def login(session: Session, username: str, password: str) -> Principal:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not check_password(password, user.password_hash):
        raise Unauthorized("wrong username or password")
    return Principal(role="admin", sandbox_id=None, username=user.username)
