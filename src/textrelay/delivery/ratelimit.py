"""Rate limits in segments per second, shared by every worker and process through the store.

GCRA: each key (a sender number or messaging service, an API credential) has a theoretical
arrival time ``tat``. Reserving ``n`` segments at rate ``r`` moves it to ``max(tat, now) + n/r``
in one atomic upsert (``... ON CONFLICT DO UPDATE ... RETURNING``, on SQLite and PostgreSQL
alike). A claimed batch reserves all its segments per key at once — one round trip per key per
batch — and each message gets the slot that falls to it; messages whose slot is in the future
wait in the outbox until then.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

_UPSERT = {
    "sqlite": "INSERT INTO rate_limits (key, tat) VALUES (:key, :now + :cost) "
              "ON CONFLICT (key) DO UPDATE SET tat = MAX(rate_limits.tat, :now) + :cost RETURNING tat",
    "postgresql": "INSERT INTO rate_limits (key, tat) VALUES (:key, :now + :cost) "
                  "ON CONFLICT (key) DO UPDATE SET tat = GREATEST(rate_limits.tat, :now) + :cost RETURNING tat",
}


@dataclass(frozen=True)
class Limit:
    key: str
    per_second: float  # segments per second


def sender_key(account: str, sender: str) -> str:
    return f"sender:{account}:{sender}"


def credential_key(credential_id: str) -> str:
    return f"credential:{credential_id}"


def reserve(session: Session, now: float, items: Sequence[tuple[int, Sequence[Limit]]]) -> list[float]:
    """Reserve slots for ``items`` (segments, limits), in order; returns each item's slot time
    (epoch seconds; ``now`` when it may go at once)."""
    slots = [now] * len(items)
    by_key: dict[str, list[int]] = defaultdict(list)
    rates: dict[str, float] = {}
    for index, (_, limits) in enumerate(items):
        for limit in limits:
            if limit.per_second > 0:
                by_key[limit.key].append(index)
                rates[limit.key] = limit.per_second
    if not by_key:
        return slots
    statement = text(_UPSERT["postgresql" if session.bind.dialect.name == "postgresql" else "sqlite"])  # type: ignore[union-attr]
    for key in sorted(by_key):  # a fixed order: two workers never wait on each other's rows
        interval = 1.0 / rates[key]
        indexes = by_key[key]
        cost = sum(max(1, items[i][0]) for i in indexes) * interval
        tat = session.execute(statement, {"key": key, "now": now, "cost": cost}).scalar_one()
        start = tat - cost
        for i in indexes:
            slots[i] = max(slots[i], start)
            start += max(1, items[i][0]) * interval
    return slots
