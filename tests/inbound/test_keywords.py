"""The keyword matcher and the consent rules (pure domain, no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from textrelay.domain import keywords as kw
from textrelay.services.webhooks import DEFAULT_KEYWORDS

DEFAULTS = kw.KeywordSet.build(DEFAULT_KEYWORDS)


@pytest.mark.parametrize("word", DEFAULT_KEYWORDS["opt_out"])
@pytest.mark.parametrize("dress", ["{}", "{} ", "  {}  ", "{}.", "{}!!", "¡{}!", "\"{}\"", "{} 🛑", "\t{}\n"])
@pytest.mark.parametrize("case", [str.upper, str.lower, str.title])
def test_each_default_opt_out_word_matches_exactly_in_any_case_and_dress(word: str, dress: str, case) -> None:
    found = kw.match(dress.format(case(word)), DEFAULTS)
    assert (found.category, found.kind) == ("opt_out", kw.EXACT)


def test_inner_spaces_collapse_and_hyphen_separates_words() -> None:
    assert kw.match("opt    out", DEFAULTS).keyword == "opt out"
    assert kw.match("Opt-Out", DEFAULTS).keyword == "opt out"


def test_fullwidth_letters_are_normalised() -> None:
    assert kw.match("ＳＴＯＰ", DEFAULTS).category == "opt_out"


@pytest.mark.parametrize(("text", "category"), [
    ("START", "opt_in"), ("yes", "opt_in"), ("Unstop", "opt_in"), ("subscribe!", "opt_in"),
    ("HELP", "help"), ("info?", "help"),
])
def test_default_opt_in_and_help_words_match(text: str, category: str) -> None:
    assert kw.match(text, DEFAULTS).category == category


@pytest.mark.parametrize(("text", "kind"), [
    ("please stop texting me", kw.WHOLE_WORD),
    ("unsubscribe me", kw.WHOLE_WORD),
    ("STOP sending these", kw.WHOLE_WORD),
    ("I want to opt out now", kw.WHOLE_WORD),
    ("remove me", kw.PHRASE),
    ("Please do not text this number", kw.PHRASE),
    ("no more texts!", kw.PHRASE),
    ("take me off your list", kw.PHRASE),
    ("STPO", kw.NEAR_MISS),
    ("unsubscibe", kw.NEAR_MISS),
    ("stoop", None),
])
def test_revocation_intent_is_recognised(text: str, kind: str | None) -> None:
    found = kw.match(text, DEFAULTS)
    if kind is None:
        assert found == kw.NO_MATCH
    else:
        assert (found.category, found.kind) == ("opt_out", kind)
        assert found.revocation_intent


@pytest.mark.parametrize("text", ["stopwatch", "nonstop", "endless", "and", "AND", "ned", "the weekend is over",
                                  "cancellation policy?", "I quite like it", "shop", "", "   ", "🙂", "..."])
def test_a_keyword_inside_another_word_or_a_short_near_miss_never_counts(text: str) -> None:
    assert kw.match(text, DEFAULTS) == kw.NO_MATCH


def test_custom_opt_out_keywords_replace_the_defaults() -> None:
    custom = kw.KeywordSet.build({**DEFAULT_KEYWORDS, "opt_out": ["ARRET", "HALT"]})
    assert kw.match("arret", custom).category == "opt_out"
    assert kw.match("STOP", custom) == kw.NO_MATCH
    assert kw.match("please halt now", custom).kind == kw.WHOLE_WORD


def test_custom_category_keywords_match() -> None:
    custom = kw.KeywordSet.build({**DEFAULT_KEYWORDS, "custom": ["PROMO"]})
    assert kw.match("promo", custom).category == "custom"


def test_stop_opts_out_and_confirms_once() -> None:
    found = kw.match("STOP", DEFAULTS)
    assert kw.decide(found, None) == kw.Decision("opted_out", "opt_out")
    assert kw.decide(found, "opted_in") == kw.Decision("opted_out", "opt_out")
    assert kw.decide(found, "opted_out") == kw.Decision(None, None)


def test_revocation_intent_under_confirm_policy_changes_nothing_and_names_the_keyword() -> None:
    found = kw.match("please stop texting me", DEFAULTS)
    assert kw.decide(found, None, "confirm") == kw.Decision(None, "revocation_confirm")
    assert kw.decide(found, None, "opt_out") == kw.Decision("opted_out", "opt_out")
    exact = kw.match("STOP", DEFAULTS)
    assert kw.decide(exact, None, "confirm") == kw.Decision("opted_out", "opt_out")


def test_double_opt_in_sets_pending_then_opt_in_confirms() -> None:
    keywords = kw.KeywordSet.build({**DEFAULT_KEYWORDS, "double_opt_in": ["JOIN"]})
    assert kw.decide(kw.match("join", keywords), None) == kw.Decision("pending", "double_opt_in")
    assert kw.decide(kw.match("yes", keywords), "pending") == kw.Decision("opted_in", "opt_in")
    assert kw.decide(kw.match("join", keywords), "opted_in") == kw.Decision(None, "opt_in")


def test_help_replies_without_consent_change_and_free_text_gets_default() -> None:
    assert kw.decide(kw.match("HELP", DEFAULTS), "opted_out") == kw.Decision(None, "help")
    assert kw.decide(kw.match("what time do you open?", DEFAULTS), None) == kw.Decision(None, "default")


def test_provider_handled_keyword_maps_to_consent() -> None:
    assert kw.provider_decision("STOP") == "opted_out"
    assert kw.provider_decision("start") == "opted_in"
    assert kw.provider_decision("HELP") is None


@given(st.text(max_size=2000))
def test_matcher_never_raises_on_any_text(text: str) -> None:
    found = kw.match(text, DEFAULTS)
    assert found.category in (None, *kw.CATEGORIES)
