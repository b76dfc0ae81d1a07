from __future__ import annotations

import threading

import pytest

from tests.sending.conftest import make_configuration
from textrelay.services import consent, sandboxes
from textrelay.store.models import Message, MessageEvent

TO = "+14155550123"


def send(api, **over):  # type: ignore[no-untyped-def]
    headers = over.pop("headers", None)
    body = {"channel_configuration": "promo", "to": TO, "body": "Hello"}
    body.update(over)
    return api.post("/api/v1/messages", json=body, headers=headers)


def stored_messages(service) -> list[Message]:  # type: ignore[no-untyped-def]
    with service.context.db.session() as session:
        return list(session.query(Message).all())


def prod_id(service) -> str:  # type: ignore[no-untyped-def]
    with service.context.db.session() as session:
        return sandboxes.get_by_name(session, "prod").id


def test_send_answers_202_after_committing_a_queued_message_with_history(api, service, configuration):
    resp = send(api, body="Hi {{ profile.firstName }}", profile={"firstName": "Ann"})
    assert resp.status_code == 202, resp.text
    answer = resp.json()
    assert set(answer) >= {"id", "status", "to", "segments", "encoding", "characters", "channel_configuration",
                           "created_at"}
    assert (answer["status"], answer["to"], answer["segments"], answer["encoding"], answer["characters"]) == \
        ("queued", TO, 1, "GSM-7", 6)
    assert answer["channel_configuration"] == configuration["id"]
    with service.context.db.session() as session:
        row = session.get(Message, answer["id"])
        assert row.status == "queued" and row.body == "Hi Ann" and row.next_attempt_at is not None
        assert row.from_number == "+14155550100"
        assert (row.valid_until - row.created_at).total_seconds() == 36000
        events = session.query(MessageEvent).filter_by(message_id=row.id).all()
        assert [e.status for e in events] == ["queued"]
    detail = api.get(f"/api/v1/messages/{answer['id']}").json()
    assert [h["status"] for h in detail["history"]] == ["queued"]
    assert detail["attempts"] == 0 and detail["provider_message_id"] is None


def test_configuration_may_be_named_by_id_and_number_taken_from_the_execution_field(api, configuration):
    resp = send(api, channel_configuration=configuration["id"], to=None,
                profile={"mobilePhone": "+44 7911 123456", "firstName": "Bo"}, body="{{profile.firstName}}")
    assert resp.status_code == 202, resp.text
    assert resp.json()["to"] == "+447911123456"


@pytest.mark.parametrize(("over", "field"), [
    ({"channel_configuration": "unknown"}, "channel_configuration"),
    ({"channel_configuration": "drafty"}, "channel_configuration"),
    ({"to": "12345"}, "to"),
    ({"to": None}, "to"),
    ({"to": None, "profile": {"firstName": "x"}}, "profile.mobilePhone"),
    ({"to": None, "profile": {"mobilePhone": "garbage"}}, "profile.mobilePhone"),
    ({"body": "Hi {{ profile.firstName }}"}, "body"),
    ({"body": "x" * 1501}, "body"),
    ({"body": "{{ 'ab' * 751 }}"}, "body"),
    ({"body": "line one\n{% if profile.x %}"}, "body"),
    ({"body": ""}, "body"),
    ({"media_urls": ["https://example.com/a.png"]}, "media_urls"),
    ({"validity_period": 0}, "validity_period"),
    ({"validity_period": 36001}, "validity_period"),
    ({"rcs_card": {}}, "rcs_card"),
])
def test_bad_input_is_a_422_naming_the_field_and_nothing_is_stored(api, service, credential, configuration,
                                                                   over, field):
    make_configuration(api, credential["id"], name="drafty", status="draft")
    resp = send(api, **over)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert field in {e["field"] for e in resp.json()["errors"]}, resp.json()
    assert stored_messages(service) == []


def test_media_on_mms_at_most_ten_http_urls(api, service, credential):
    make_configuration(api, credential["id"], name="pics", channel="mms")
    ok = send(api, channel_configuration="pics", body="", media_urls=["https://example.com/a.png"])
    assert ok.status_code == 202, ok.text
    too_many = send(api, channel_configuration="pics", media_urls=[f"https://example.com/{i}.png" for i in range(11)])
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["field"] == "media_urls"
    not_http = send(api, channel_configuration="pics", media_urls=["https://example.com/a", "ftp://x/y"])
    assert not_http.status_code == 422 and not_http.json()["errors"][0]["field"] == "media_urls.1"
    assert len(stored_messages(service)) == 1


def test_missing_variable_is_named_in_the_problem(api, configuration):
    resp = send(api, body="Hi {{ profile.firstName }}", profile={"lastName": "X"})
    assert resp.status_code == 422
    assert "profile.firstName" in resp.json()["errors"][0]["message"]
    assert resp.json()["variable"] == "profile.firstName"


def test_template_syntax_error_names_the_line(api, configuration):
    resp = send(api, body="Hello\nthere {{ profile.firstName ")
    assert resp.status_code == 422
    assert "line 2" in resp.json()["errors"][0]["message"]


def test_conditionals_and_defaults_render(api, service, configuration):
    body = '{% if profile.tier == "gold" %}Gold offer{% else %}Offer{% endif %} for {{ profile.city | default("you") }}'
    gold = send(api, body=body, profile={"tier": "gold"}).json()
    plain = send(api, body=body, profile={"tier": "basic", "city": "Lisbon"}).json()
    with service.context.db.session() as session:
        assert session.get(Message, gold["id"]).body == "Gold offer for you"
        assert session.get(Message, plain["id"]).body == "Offer for Lisbon"


def test_profile_values_are_printed_literally_never_evaluated(api, service, configuration):
    attack = "{{ ''.__class__.__mro__ }}{% for x in range(9) %}X{% endfor %}"
    resp = send(api, body="Hi {{ profile.firstName }}", profile={"firstName": attack})
    assert resp.status_code == 202, resp.text
    with service.context.db.session() as session:
        assert session.get(Message, resp.json()["id"]).body == "Hi " + attack


def test_template_reaching_into_python_internals_is_refused(api, service, configuration):
    resp = send(api, body="{{ ''.__class__.__mro__[1].__subclasses__() }}")
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "body"
    assert stored_messages(service) == []


def test_segments_and_encoding_are_in_the_answer(api, configuration):
    gsm = send(api, body="a" * 161).json()
    assert (gsm["encoding"], gsm["segments"], gsm["characters"]) == ("GSM-7", 2, 161)
    extension = send(api, body="[" * 80).json()  # extension characters take two septets
    assert (extension["encoding"], extension["segments"]) == ("GSM-7", 1)
    ucs2 = send(api, body="Olá 👋 " + "ç" * 64).json()
    assert ucs2["encoding"] == "UCS-2"
    assert ucs2["segments"] == 2  # 71 UTF-16 units: the emoji takes two


def test_same_idempotency_key_and_body_replays_the_same_answer(api, service, configuration):
    first = send(api, headers={"Idempotency-Key": "order-1"})
    again = send(api, headers={"Idempotency-Key": "order-1"})
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.json() == again.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(stored_messages(service)) == 1


def test_same_idempotency_key_with_another_body_is_a_422(api, service, configuration):
    assert send(api, headers={"Idempotency-Key": "order-2"}).status_code == 202
    other = send(api, body="Different", headers={"Idempotency-Key": "order-2"})
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert len(stored_messages(service)) == 1


def test_concurrent_sends_with_one_idempotency_key_create_one_message(api, service, configuration):
    answers: list = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        client = service.client()
        barrier.wait()
        answers.append(client.post("/api/v1/messages", json={"channel_configuration": "promo", "to": TO,
                                                              "body": "Once"}, headers={"Idempotency-Key": "k-9"}))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [202] * 8
    assert len({a.json()["id"] for a in answers}) == 1
    assert len({a.text for a in answers}) == 1
    assert len(stored_messages(service)) == 1


def test_marketing_to_an_opted_out_number_is_stored_excluded_and_not_queued(api, service, configuration):
    with service.context.db.session() as session:
        consent.record(session, prod_id(service), TO, consent.OPTED_OUT, "api")
    resp = send(api)
    assert resp.status_code == 202
    assert resp.json()["status"] == "excluded"
    assert "opted out" in resp.json()["excluded_reason"]
    detail = api.get(f"/api/v1/messages/{resp.json()['id']}").json()
    assert detail["status"] == "excluded" and "opted out" in detail["error_message"]
    assert detail["next_attempt_at"] is None
    assert [h["status"] for h in detail["history"]] == ["excluded"]


def test_transactional_is_excluded_only_by_an_opt_out_of_the_same_sender(api, service, credential):
    make_configuration(api, credential["id"], name="otp", sms_type="transactional")
    with service.context.db.session() as session:
        consent.record(session, prod_id(service), TO, consent.OPTED_OUT, "keyword", sender="+14155550199")
    other_sender = send(api, channel_configuration="otp", body="Your code is 1234")
    assert other_sender.json()["status"] == "queued"
    with service.context.db.session() as session:
        consent.record(session, prod_id(service), TO, consent.OPTED_OUT, "keyword", sender="+14155550100")
    same_sender = send(api, channel_configuration="otp", body="Your code is 1234")
    assert same_sender.json()["status"] == "excluded"


def test_list_filters_and_pages_newest_first(api, credential, configuration):
    make_configuration(api, credential["id"], name="other")
    ids = [send(api, body=f"m{i}").json()["id"] for i in range(3)]
    other = send(api, channel_configuration="other", to="+14155550124").json()["id"]
    newest = api.get("/api/v1/messages", params={"limit": 2}).json()
    assert [m["id"] for m in newest["items"]] == [other, ids[2]]
    rest = api.get("/api/v1/messages", params={"limit": 2, "cursor": newest["next_cursor"]}).json()
    assert [m["id"] for m in rest["items"]] == [ids[1], ids[0]]
    by_config = api.get("/api/v1/messages", params={"channel_configuration": "other"}).json()["items"]
    assert [m["id"] for m in by_config] == [other]
    by_to = api.get("/api/v1/messages", params={"to": "+1 415 555 0124"}).json()["items"]
    assert [m["id"] for m in by_to] == [other]
    assert api.get("/api/v1/messages", params={"status": "queued"}).json()["items"][0]["id"] == other
    assert api.get("/api/v1/messages", params={"status": "weird"}).status_code == 422


def test_sender_role_may_send_and_read(service, configuration):
    sender = service.client(service.new_key("sender"))
    resp = sender.post("/api/v1/messages", json={"channel_configuration": "promo", "to": TO, "body": "hi"})
    assert resp.status_code == 202
    assert sender.get(f"/api/v1/messages/{resp.json()['id']}").status_code == 200


def test_messages_of_another_sandbox_are_invisible(api, service, configuration):
    msg = send(api).json()
    assert api.post("/api/v1/sandboxes", json={"name": "dev"}).status_code in (200, 201)
    dev = service.client(sandbox="dev")
    assert dev.get(f"/api/v1/messages/{msg['id']}").status_code == 404
    assert dev.get("/api/v1/messages").json()["items"] == []
    assert dev.post("/api/v1/messages", json={"channel_configuration": "promo", "to": TO,
                                              "body": "x"}).status_code == 422
