"""Twilio inbound webhook: keywords, consent, replies, storage, signatures and routing."""

from __future__ import annotations

import pytest

from tests.inbound.helpers import make_line, reply_of
from tests.support import twilio_sid
from textrelay.services.webhooks import DEFAULT_KEYWORDS, DEFAULT_REPLIES

HANDSET = "+14155550199"


@pytest.fixture
def line(api):  # type: ignore[no-untyped-def]
    return make_line(api)


def inbound(api, **filters):  # type: ignore[no-untyped-def]
    resp = api.get("/api/v1/inbound-messages", params=filters)
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


def test_stop_opts_number_out_and_replies_once(line, api):
    assert reply_of(line.text("STOP")) == DEFAULT_REPLIES["opt_out"]
    assert line.consent()["status"] == "opted_out"
    assert reply_of(line.text("stop")) is None
    consent = line.consent()
    assert [e["status"] for e in consent["history"]] == ["opted_out"]
    assert consent["history"][0]["source"] == "keyword"
    assert consent["history"][0]["sender_number"] == line.number
    stored = inbound(api)
    assert [m["consent_change"] for m in stored] == [None, "opted_out"]
    assert [m["reply_sent"] for m in stored] == [False, True]


@pytest.mark.parametrize("word", DEFAULT_KEYWORDS["opt_out"])
def test_each_default_opt_out_word_in_any_dress_opts_out(line, word):
    variants = [word, f"  {word.lower()}  ", f"{word.title()}.", f"{word}!!"]
    for index, text in enumerate(variants):
        handset = f"+1415555{index:04d}"
        assert reply_of(line.text(text, handset)) == DEFAULT_REPLIES["opt_out"], text
        assert line.consent(handset)["status"] == "opted_out"


def test_start_opts_back_in_and_help_replies(line):
    line.text("STOP")
    assert reply_of(line.text("start")) == DEFAULT_REPLIES["opt_in"]
    assert line.consent()["status"] == "opted_in"
    assert line.consent()["blocked_senders"] == []
    assert reply_of(line.text("HELP")) == DEFAULT_REPLIES["help"]
    assert [e["status"] for e in line.consent()["history"]] == ["opted_out", "opted_in"]


@pytest.mark.parametrize("text", ["please stop texting me", "STPO", "unsubscibe", "remove me"])
def test_revocation_intent_opts_out_under_default_policy(line, text):
    assert reply_of(line.text(text)) == DEFAULT_REPLIES["opt_out"]
    assert line.consent()["status"] == "opted_out"


@pytest.mark.parametrize(("text", "named"), [("please stop texting me", "STOP"), ("STPO", "STOP"),
                                             ("take me off your list", "STOP")])
def test_revocation_intent_under_confirm_policy_only_names_the_keyword(line, api, text, named):
    resp = api.patch(f"/api/v1/webhooks/{line.inbound_webhook['id']}", json={"revocation_policy": "confirm"})
    assert resp.status_code == 200, resp.text
    reply = reply_of(line.text(text))
    assert reply is not None and f"reply {named}" in reply
    assert line.consent()["status"] == "unknown"
    assert reply_of(line.text("STOP")) == DEFAULT_REPLIES["opt_out"]


@pytest.mark.parametrize("text", ["stopwatch", "and", "nonstop", "endless", "see you at the weekend"])
def test_keyword_inside_another_word_changes_nothing(line, api, text):
    assert reply_of(line.text(text)) is None
    assert line.consent()["status"] == "unknown"
    assert inbound(api)[0]["matched_category"] is None


def test_default_reply_answers_unmatched_text(line, api):
    api.patch(f"/api/v1/webhooks/{line.inbound_webhook['id']}", json={"default_reply": "Thanks <3 & bye"})
    resp = line.text("what time do you open?")
    assert reply_of(resp) == "Thanks <3 & bye"
    assert "&lt;3 &amp; bye" in resp.text


def test_custom_opt_out_keywords_replace_the_defaults(line, api):
    resp = api.patch(f"/api/v1/webhooks/{line.inbound_webhook['id']}",
                     json={"keywords": {"opt_out": ["ARRET"]}, "replies": {"opt_out": "Désabonné."}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["keywords"]["opt_out"] == ["ARRET"]
    assert resp.json()["keywords"]["help"] == DEFAULT_KEYWORDS["help"]
    assert reply_of(line.text("STOP")) is None
    assert line.consent()["status"] == "unknown"
    assert reply_of(line.text("Arret!")) == "Désabonné."
    assert line.consent()["status"] == "opted_out"


def test_double_opt_in_sets_pending_then_opt_in_confirms(line, api):
    api.patch(f"/api/v1/webhooks/{line.inbound_webhook['id']}", json={"keywords": {"double_opt_in": ["JOIN"]}})
    assert reply_of(line.text("join")) == DEFAULT_REPLIES["double_opt_in"]
    assert line.consent()["status"] == "pending"
    assert reply_of(line.text("YES")) == DEFAULT_REPLIES["opt_in"]
    assert [e["status"] for e in line.consent()["history"]] == ["pending", "opted_in"]


def test_twilio_handled_keyword_is_recorded_without_a_second_reply(line, api):
    assert reply_of(line.text("STOP", OptOutType="STOP")) is None
    assert line.consent()["status"] == "opted_out"
    assert reply_of(line.text("START", OptOutType="START")) is None
    assert line.consent()["status"] == "opted_in"
    assert reply_of(line.text("HELP", OptOutType="HELP")) is None


def test_retried_delivery_is_stored_once_and_answered_the_same_way(line, api):
    sid = twilio_sid("SM")
    first = line.text("STOP", sid=sid)
    again = line.text("STOP", sid=sid)
    assert reply_of(first) == reply_of(again) == DEFAULT_REPLIES["opt_out"]
    assert len(inbound(api)) == 1
    assert len(line.consent()["history"]) == 1


def test_media_is_stored_with_its_content_types(line, api):
    media = {"NumMedia": "2", "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
             "MediaContentType0": "image/jpeg", "MediaUrl1": "https://example.test/b.png",
             "MediaContentType1": "image/png"}
    assert reply_of(line.text("", **media)) is None
    stored = inbound(api)[0]
    assert stored["body"] == ""
    assert stored["media"] == [{"url": media["MediaUrl0"], "content_type": "image/jpeg"},
                               {"url": media["MediaUrl1"], "content_type": "image/png"}]


def test_bad_or_missing_signature_is_refused_and_nothing_stored(line, api):
    params = line.params("STOP")
    import requests

    assert requests.post(line.url, data=params, timeout=10).status_code == 403
    wrong = requests.post(line.url, data=params, headers={"X-Twilio-Signature": "bm90IGl0"}, timeout=10)
    assert wrong.status_code == 403
    assert wrong.headers["content-type"].startswith("application/problem+json")
    other_token = line.text("STOP", headers={})  # control: a correct one works
    assert other_token.status_code == 200
    from tests.inbound.helpers import post_signed

    assert post_signed(line.url, line.params("STOP", "+14155550111"), "x" * 32).status_code == 403
    assert len(inbound(api)) == 1
    assert line.consent("+14155550111")["status"] == "unknown"


def test_unknown_to_number_is_a_404_problem_and_nothing_stored(line, api):
    resp = line.text("STOP", to="+14155550177")
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert inbound(api) == []
    assert line.consent()["status"] == "unknown"


@pytest.mark.parametrize("missing", ["From", "To", "MessageSid"])
def test_missing_fields_are_a_400_naming_the_field(line, api, missing):
    from tests.inbound.helpers import post_signed

    params = line.params("STOP")
    params.pop(missing)
    if missing == "MessageSid":
        params.pop("SmsSid")
    resp = post_signed(line.url, params, line.token)
    assert resp.status_code == 400
    assert resp.json()["errors"][0]["field"] == missing
    assert inbound(api) == []


@pytest.mark.parametrize("body", ["x" * 5000, "", "\x00STOP\x00", "\u202e\u200bSTOP\ufeff", "😀" * 800,
                                  "\ud7ff\ue000 𝕊𝕋𝕆ℙ", "<Response>&amp;</Response>", "STOP " * 400])
def test_odd_bodies_are_handled_without_a_500(line, api, body):
    resp = line.text(body)
    assert resp.status_code == 200, resp.text
    reply_of(resp)
    assert inbound(api)[0]["body"] == body.replace("\x00", "")


def test_inbound_messages_are_listed_with_filters(line, api):
    line.text("STOP", "+14155550101")
    line.text("hello there", "+14155550102")
    line.text("HELP", "+14155550102")
    assert len(inbound(api)) == 3
    assert [m["body"] for m in inbound(api, **{"from": "+14155550102"})] == ["HELP", "hello there"]
    assert [m["body"] for m in inbound(api, category="opt_out")] == ["STOP"]
    assert [m["body"] for m in inbound(api, category="none")] == ["hello there"]
    assert [m["body"] for m in inbound(api, consent_change="opted_out")] == ["STOP"]
    assert [m["body"] for m in inbound(api, q="THERE")] == ["hello there"]
    page = api.get("/api/v1/inbound-messages", params={"limit": 2}).json()
    rest = api.get("/api/v1/inbound-messages", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [m["body"] for m in page["items"] + rest["items"]] == ["HELP", "hello there", "STOP"]
    assert rest["next_cursor"] is None
    bad = api.get("/api/v1/inbound-messages", params={"category": "nonsense"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.category"


def test_nul_characters_in_addresses_are_dropped_not_a_500(line, api):
    resp = line.text("HELP", "+1415555\x000188", OptOutType="\x00")
    assert resp.status_code == 200, resp.text
    assert inbound(api)[0]["from"] == "+14155550188"
