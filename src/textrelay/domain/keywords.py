"""Keyword matching for inbound messages: pure, no I/O.

Matching follows SPEC §3, in order:

1. **Exact** — the whole message, normalised (Unicode NFKC, case-folded, surrounding punctuation
   and emoji removed, words joined by single spaces), equals a keyword of some category.
2. **Revocation intent** — an opt-out keyword as a whole word inside a longer message, a common
   revocation phrase, or a one-word message that is a near-miss spelling of an opt-out keyword of
   four or more letters. A keyword inside another word never counts ("stopwatch", "nonstop").
3. Otherwise nothing matched.

:func:`decide` then turns a match, the number's current consent and the webhook's revocation
policy into what to do: the consent change (if any) and which reply to send (if any).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rapidfuzz.distance import OSA

CATEGORIES = ("opt_out", "opt_in", "double_opt_in", "help", "custom")
# When one keyword sits in two lists, the safer reading wins: opting out first.
PRECEDENCE = CATEGORIES
REVOCATION_POLICIES = ("opt_out", "confirm")

EXACT, WHOLE_WORD, PHRASE, NEAR_MISS = "exact", "whole_word", "phrase", "near_miss"

# Common ways of saying "stop texting me" that contain no opt-out keyword as such.
REVOCATION_PHRASES: tuple[str, ...] = (
    "remove me",
    "remove my number",
    "do not text",
    "do not message",
    "do not contact",
    "dont text",
    "don't text",
    "dont message",
    "don't message",
    "dont contact",
    "don't contact",
    "no more texts",
    "no more text",
    "no more messages",
    "no more sms",
    "take me off",
    "leave me alone",
    "opt me out",
)

# Everyday words one edit away from an opt-out keyword: a one-word "shop" or "step" is not a
# misspelt STOP. Kept small on purpose; near misses must also start with the keyword's letter.
NOT_NEAR_MISSES = frozenset({
    "stoop", "stomp", "step", "stow", "slop", "shop", "atop", "spot",
    "quiz", "quip", "quid", "quite", "quilt",
    "cancer", "candle", "camel", "canal",
    "revolve", "revolt",
})

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_MIN_NEAR_MISS_LETTERS = 4


def words(text: str) -> list[str]:
    """The message's words, normalised: NFKC, case-folded, punctuation and emoji dropped."""
    folded = unicodedata.normalize("NFKC", text or "").casefold().replace("’", "'")
    return _WORD.findall(folded)


def normalize(text: str) -> str:
    """The form keywords are compared in: ``" Stop!! "`` and ``"STOP."`` are both ``"stop"``."""
    return " ".join(words(text))


@dataclass(frozen=True)
class Match:
    """What an inbound message matched. ``category`` is None when nothing did."""

    category: str | None = None
    keyword: str | None = None
    kind: str | None = None

    @property
    def revocation_intent(self) -> bool:
        return self.category == "opt_out" and self.kind in (WHOLE_WORD, PHRASE, NEAR_MISS)


NO_MATCH = Match()


@dataclass(frozen=True)
class KeywordSet:
    """The keyword lists of one inbound webhook, normalised once."""

    lists: dict[str, tuple[str, ...]]

    @classmethod
    def build(cls, keywords: dict[str, list[str]]) -> KeywordSet:
        return cls({c: tuple(k for k in (normalize(w) for w in keywords.get(c, [])) if k) for c in CATEGORIES})

    def category_of(self, normalized: str) -> str | None:
        for category in PRECEDENCE:
            if normalized in self.lists[category]:
                return category
        return None

    def first(self, category: str) -> str | None:
        found = self.lists.get(category) or ()
        return found[0] if found else None


def _contains(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


def _near_miss(word: str, keyword: str) -> bool:
    compact = keyword.replace(" ", "")
    if len(compact) < _MIN_NEAR_MISS_LETTERS or not compact.isalpha():
        return False
    if len(word) < _MIN_NEAR_MISS_LETTERS or word in NOT_NEAR_MISSES or word[0] != compact[0]:
        return False
    allowed = 2 if len(compact) >= 8 else 1
    return OSA.distance(word, compact, score_cutoff=allowed) <= allowed


_PHRASE_WORDS = tuple((p, p.split()) for p in REVOCATION_PHRASES)


def match(text: str, keywords: KeywordSet) -> Match:
    """Match one inbound message against a webhook's keywords (see the module doc for the order)."""
    found = words(text)
    if not found:
        return NO_MATCH
    whole = " ".join(found)
    category = keywords.category_of(whole)
    if category is not None:
        return Match(category, whole, EXACT)
    opt_out = keywords.lists["opt_out"]
    if len(found) > 1:
        for keyword in opt_out:
            if _contains(found, keyword.split()):
                return Match("opt_out", keyword, WHOLE_WORD)
        for phrase, phrase_words in _PHRASE_WORDS:
            if _contains(found, phrase_words):
                return Match("opt_out", phrase, PHRASE)
        return NO_MATCH
    word = found[0]
    for keyword in opt_out:
        if _near_miss(word, keyword):
            return Match("opt_out", keyword, NEAR_MISS)
    return NO_MATCH


# --- What to do about a match ---------------------------------------------------------------

OPTED_IN, OPTED_OUT, PENDING = "opted_in", "opted_out", "pending"


@dataclass(frozen=True)
class Decision:
    """The consent status to record (None: unchanged) and the reply category to send (None: none).

    ``reply`` is a keyword category, ``"revocation_confirm"`` or ``"default"``.
    """

    consent: str | None = None
    reply: str | None = None


def decide(found: Match, current: str | None, revocation_policy: str = "opt_out") -> Decision:
    """Consent rules for one inbound message.

    - Opt-out (exact, or revocation intent under the ``opt_out`` policy): opt out and confirm,
      but only once — a number already opted out gets no second confirmation.
    - Revocation intent under ``confirm``: nothing changes; the reply names the exact keyword.
    - Opt-in: opts in (confirms a pending double opt-in) and replies.
    - Double opt-in keyword: sets pending and asks for confirmation, unless already opted in.
    - Help and custom keywords reply; nothing matched gets the default reply.
    """
    category = found.category
    if category == "opt_out":
        if found.revocation_intent and revocation_policy == "confirm":
            return Decision(None, "revocation_confirm")
        if current == OPTED_OUT:
            return Decision(None, None)
        return Decision(OPTED_OUT, "opt_out")
    if category == "opt_in":
        return Decision(None if current == OPTED_IN else OPTED_IN, "opt_in")
    if category == "double_opt_in":
        if current == OPTED_IN:
            return Decision(None, "opt_in")
        return Decision(None if current == PENDING else PENDING, "double_opt_in")
    if category in ("help", "custom"):
        return Decision(None, category)
    return Decision(None, "default")


def provider_decision(opt_out_type: str) -> str | None:
    """The consent status implied by a provider that handled the keyword itself (Twilio's
    ``OptOutType``: STOP, START, HELP)."""
    kind = (opt_out_type or "").strip().upper()
    return {"STOP": OPTED_OUT, "START": OPTED_IN}.get(kind)
