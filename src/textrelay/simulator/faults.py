"""Fault injection: make the next requests slow, refused, or cut off, reproducibly.

A :class:`FaultPlan` is set with ``POST /_sim/faults`` and cleared with ``DELETE /_sim/faults``.
Probabilities are drawn from one ``random.Random(seed)``, so a seeded plan injects the same faults
in the same order on every run (given the same sequence of requests).
"""

import random
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ENDPOINTS", "FaultDecision", "FaultPlan"]

ENDPOINTS = ("create", "fetch", "list")
"""Which Twilio requests a plan may target: message create, message fetch, message list."""

_PROBABILITIES = ("drop_before_create", "status_429", "status_5xx", "drop_after_create", "malformed")


@dataclass(slots=True)
class FaultDecision:
    """What to do to one request. At most one of the refusals applies; ``delay`` adds to any."""

    delay: float = 0.0
    drop_before: bool = False
    status_429: bool = False
    status_5xx: int | None = None
    drop_after: bool = False
    malformed: str | None = None  # "html" or "truncated"

    @property
    def any(self) -> bool:
        return bool(
            self.delay or self.drop_before or self.status_429 or self.status_5xx
            or self.drop_after or self.malformed
        )


@dataclass(slots=True)
class FaultPlan:
    status_429: float = 0.0
    retry_after: float = 1.0
    status_5xx: float = 0.0
    status_5xx_codes: tuple[int, ...] = (500, 503)
    drop_after_create: float = 0.0
    drop_before_create: float = 0.0
    delay: float = 0.0
    malformed: float = 0.0
    count: int | None = None
    seed: int | None = None
    endpoints: tuple[str, ...] = ("create",)
    applied: int = 0
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "FaultPlan":
        """Build a plan from the control API's JSON; raises ``ValueError`` on a bad field."""
        known = {
            "status_429", "retry_after", "status_5xx", "status_5xx_codes", "drop_after_create",
            "drop_before_create", "delay", "malformed", "count", "seed", "endpoints",
        }
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        plan = cls()
        for name in _PROBABILITIES:
            value = data.get(name, 0.0)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a probability between 0 and 1")
            setattr(plan, name, float(value))
        for name in ("retry_after", "delay"):
            value = data.get(name, getattr(plan, name))
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a non-negative number of seconds")
            setattr(plan, name, float(value))
        count = data.get("count")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
            raise ValueError("count must be a non-negative integer")
        plan.count = count
        codes = data.get("status_5xx_codes", list(plan.status_5xx_codes))
        if not codes or not all(isinstance(c, int) and 500 <= c <= 599 for c in codes):
            raise ValueError("status_5xx_codes must be a non-empty list of 5xx codes")
        plan.status_5xx_codes = tuple(codes)
        endpoints = data.get("endpoints", ["create"])
        if not endpoints or any(e not in ENDPOINTS for e in endpoints):
            raise ValueError(f"endpoints must be a non-empty subset of {list(ENDPOINTS)}")
        plan.endpoints = tuple(endpoints)
        seed = data.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be an integer")
        plan.seed = seed
        plan.rng = random.Random(seed)
        return plan

    def to_json(self) -> dict[str, Any]:
        return {
            "status_429": self.status_429,
            "retry_after": self.retry_after,
            "status_5xx": self.status_5xx,
            "status_5xx_codes": list(self.status_5xx_codes),
            "drop_after_create": self.drop_after_create,
            "drop_before_create": self.drop_before_create,
            "delay": self.delay,
            "malformed": self.malformed,
            "count": self.count,
            "seed": self.seed,
            "endpoints": list(self.endpoints),
            "applied": self.applied,
            "remaining": None if self.count is None else max(self.count - self.applied, 0),
        }

    def draw(self, endpoint: str) -> FaultDecision:
        """Decide the fate of one request to ``endpoint``; uses up one of ``count`` if it applies."""
        if endpoint not in self.endpoints:
            return FaultDecision()
        if self.count is not None and self.applied >= self.count:
            return FaultDecision()
        self.applied += 1
        # Every probability is drawn on every request so that one seed gives one sequence.
        rolls = {name: self.rng.random() for name in _PROBABILITIES}
        code = self.rng.choice(self.status_5xx_codes)
        shape = self.rng.choice(("html", "truncated"))
        decision = FaultDecision(delay=self.delay)
        if rolls["drop_before_create"] < self.drop_before_create:
            decision.drop_before = True
        elif rolls["status_429"] < self.status_429:
            decision.status_429 = True
        elif rolls["status_5xx"] < self.status_5xx:
            decision.status_5xx = code
        elif rolls["drop_after_create"] < self.drop_after_create:
            decision.drop_after = True
        elif rolls["malformed"] < self.malformed:
            decision.malformed = shape
        return decision
