"""Key rotation for secrets at rest: new key first, then every row re-encrypted, old keys kept
until retired, so processes still holding the old ring keep reading (they reload on a miss)."""

from __future__ import annotations

from sqlalchemy import select

from textrelay.services.context import Context
from textrelay.store.models import Credential, Webhook


def rotate(ctx: Context, *, retire: bool = False) -> int:
    ctx.keyring.add_key_to_file()
    count = 0
    for model in (Credential, Webhook):
        with ctx.db.session() as session:
            for row in session.scalars(select(model)):
                if row.secrets:
                    row.secrets = {k: ctx.keyring.rotate_token(v) for k, v in row.secrets.items()}
                    count += len(row.secrets)
    if retire:
        ctx.keyring.retire_old_keys()
    return count
