from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, update

from tests.sending.conftest import make_configuration
from textrelay.delivery.campaigns import expand_some, finish_campaigns
from textrelay.services import consent, sandboxes
from textrelay.store.models import AudienceMember, Campaign, Message, MessageEvent, utcnow


def create_campaign(api, body="Hi {{ profile.firstName }}", **over):  # type: ignore[no-untyped-def]
    payload = {"name": "Spring sale", "channel_configuration": "promo", "body": body}
    payload.update(over)
    resp = api.post("/api/v1/campaigns", json=payload)
    assert resp.status_code == 201, resp.text
    return resp.json()


def upload_csv(api, campaign_id, data, **params):  # type: ignore[no-untyped-def]
    return api.post(f"/api/v1/campaigns/{campaign_id}/audience", data=data, params=params,
                    headers={"Content-Type": "text/csv"})


def expand_all(context, limit: int = 1000) -> int:  # type: ignore[no-untyped-def]
    total = 0
    while created := expand_some(context, limit):
        total += created
    return total


def number(i: int) -> str:
    return f"+1415555{i % 10000:04d}"


def message_count(context, campaign_id: str, status: str | None = None) -> int:  # type: ignore[no-untyped-def]
    with context.db.session() as session:
        q = select(func.count()).select_from(Message).where(Message.campaign_id == campaign_id)
        if status:
            q = q.where(Message.status == status)
        return session.scalar(q)


def csv_stream(rows: int, bad_every: int) -> Iterator[bytes]:
    """A CSV sent with chunked transfer encoding, cut at odd places (inside quoted fields too)."""
    lines = ["phone,firstName,note\r\n"]
    for i in range(rows):
        if i % bad_every == 7:
            lines.append(f"not-a-number,Bad{i},x\r\n")
        else:
            lines.append(f'{number(i)},Ann{i},"multi\nline, with ""quotes"""\r\n')
    data = "".join(lines).encode()
    for start in range(0, len(data), 4099):
        yield data[start:start + 4099]


@pytest.mark.slow
def test_streamed_csv_of_20000_rows_gives_one_message_per_valid_row(api, service, configuration):
    campaign = create_campaign(api, body="Hi {{ profile.firstName }}: {{ profile.note }}")
    started = time.monotonic()
    resp = upload_csv(api, campaign["id"], csv_stream(20_000, 1000))
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert (report["accepted"], report["rejected"], report["audience_size"]) == (19_980, 20, 19_980)
    # Rows are counted from the header line (1); row i starts on physical line 2 + 2*i (notes span two lines).
    assert report["rejected_rows"][0] == {"line": 2 + 2 * 7, "reason": report["rejected_rows"][0]["reason"]}
    assert "not-a-number" in report["rejected_rows"][0]["reason"]
    assert len(report["rejected_rows"]) == 10
    upload_seconds = time.monotonic() - started

    assert api.post(f"/api/v1/campaigns/{campaign['id']}/start").status_code == 200
    started = time.monotonic()
    assert expand_all(service.context) == 19_980
    expand_seconds = time.monotonic() - started
    assert message_count(service.context, campaign["id"]) == 19_980
    with service.context.db.session() as session:
        one = session.scalar(select(Message).where(Message.campaign_id == campaign["id"], Message.to_number ==
                                                   number(0)).limit(1))
        assert one.body == 'Hi Ann0: multi\nline, with "quotes"'
        events = session.scalar(select(func.count()).select_from(MessageEvent).join(
            Message, Message.id == MessageEvent.message_id).where(Message.campaign_id == campaign["id"]))
        assert events == 19_980
    progress = api.get(f"/api/v1/campaigns/{campaign['id']}").json()
    assert (progress["audience_size"], progress["audience_rejected"], progress["messages_created"]) == \
        (19_980, 20, 19_980)
    assert progress["counts"] == {"queued": 19_980}
    print(f"upload {19_980 / upload_seconds:.0f} rows/s, expansion {19_980 / expand_seconds:.0f} messages/s")


def test_json_audience_counts_and_reports_bad_members(api, configuration):
    campaign = create_campaign(api)
    resp = api.post(f"/api/v1/campaigns/{campaign['id']}/audience", json={"members": [
        {"to": "+14155550101", "profile": {"firstName": "Ann"}},
        {"profile": {"mobilePhone": "+14155550102", "firstName": "Bo"}},
        {"to": "nonsense"},
        {"profile": {"firstName": "No number"}},
    ]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["accepted"], body["rejected"]) == (2, 2)
    assert [r["index"] for r in body["rejected_rows"]] == [2, 3]
    bad = api.post(f"/api/v1/campaigns/{campaign['id']}/audience", json={"members": [{"to": 1, "x": 2}]})
    assert bad.status_code == 422
    assert "members.0.x" in {e["field"] for e in bad.json()["errors"]}


def test_csv_phone_column_defaults_to_phone_then_the_execution_field_or_is_named(api, service, configuration):
    campaign = create_campaign(api)
    no_phone = upload_csv(api, campaign["id"], b"number,firstName\n+14155550101,Ann\n")
    assert no_phone.status_code == 422
    assert no_phone.json()["errors"][0]["field"] == "query.phone_column"
    named = upload_csv(api, campaign["id"], b"number,firstName\n+14155550101,Ann\n", phone_column="number")
    assert named.json()["accepted"] == 1
    by_field = upload_csv(api, campaign["id"], "\ufeffmobilePhone,firstName\r\n+14155550102,Bo\r\n".encode())
    assert by_field.json()["accepted"] == 1
    assert by_field.json()["audience_size"] == 2
    wrong = upload_csv(api, campaign["id"], b"phone,firstName\n+14155550101,Ann\n", phone_column="missing")
    assert wrong.status_code == 422
    with service.context.db.session() as session:
        members = session.execute(select(AudienceMember.seq, AudienceMember.phone_number, AudienceMember.attributes)
                                  .order_by(AudienceMember.seq)).all()
    assert [tuple(m) for m in members] == [(0, "+14155550101", {"firstName": "Ann"}),
                                           (1, "+14155550102", {"firstName": "Bo"})]


def test_create_validates_configuration_template_and_media(api, service, configuration):
    for over, field in [({"channel_configuration": "nope"}, "channel_configuration"),
                        ({"body": "{% if %}"}, "body"),
                        ({"media_urls": ["https://example.com/a.png"]}, "media_urls"),
                        ({"name": ""}, "name")]:
        resp = api.post("/api/v1/campaigns", json={"name": "x", "channel_configuration": "promo", "body": "hi",
                                                   **over})
        assert resp.status_code == 422, (over, resp.text)
        assert resp.json()["errors"][0]["field"] == field
    assert api.get("/api/v1/campaigns").json()["items"] == []


def test_start_checks_the_template_against_the_first_member(api, configuration):
    campaign = create_campaign(api)
    upload_csv(api, campaign["id"], b"phone,lastName\n+14155550101,Smith\n")
    resp = api.post(f"/api/v1/campaigns/{campaign['id']}/start")
    assert resp.status_code == 422
    assert "profile.firstName" in resp.json()["detail"]
    assert api.get(f"/api/v1/campaigns/{campaign['id']}").json()["status"] == "draft"
    empty = create_campaign(api, name="empty")
    assert api.post(f"/api/v1/campaigns/{empty['id']}/start").status_code == 422


def test_member_without_a_variable_gets_a_failed_message_not_a_crash(api, service, configuration):
    campaign = create_campaign(api)
    upload_csv(api, campaign["id"], b"phone,firstName,other\n+14155550101,Ann,\n")
    api.post(f"/api/v1/campaigns/{campaign['id']}/audience",
             json={"members": [{"to": "+14155550102", "profile": {"other": "x"}}]})
    assert api.post(f"/api/v1/campaigns/{campaign['id']}/start").status_code == 200
    assert expand_all(service.context) == 2
    failed = api.get("/api/v1/messages", params={"campaign_id": campaign["id"], "status": "failed"}).json()["items"]
    assert [m["to"] for m in failed] == ["+14155550102"]
    assert failed[0]["error_message"] == "missing template variable profile.firstName"
    assert message_count(service.context, campaign["id"], "queued") == 1


def test_opted_out_members_are_excluded_with_the_reason(api, service, configuration):
    with service.context.db.session() as session:
        prod = sandboxes.get_by_name(session, "prod").id
        consent.record(session, prod, "+14155550102", consent.OPTED_OUT, "keyword", sender="+14155550100")
        consent.record(session, prod, "+14155550103", consent.OPTED_IN, "api")
    campaign = create_campaign(api)
    upload_csv(api, campaign["id"], b"phone,firstName\n+14155550101,A\n+14155550102,B\n+14155550103,C\n")
    api.post(f"/api/v1/campaigns/{campaign['id']}/start")
    assert expand_all(service.context) == 3
    report = api.get(f"/api/v1/campaigns/{campaign['id']}/report").json()
    assert report["counts"] == {"queued": 2, "excluded": 1}
    assert report["exclusions"][0]["count"] == 1 and "opted out" in report["exclusions"][0]["reason"]
    detail = api.get("/api/v1/messages", params={"to": "+14155550102"}).json()["items"][0]
    assert detail["status"] == "excluded"


def test_cancel_cancels_queued_messages_with_history_and_stops_expansion(api, service, configuration):
    campaign = create_campaign(api)
    csv = "phone,firstName\n" + "".join(f"{number(i)},N{i}\n" for i in range(50))
    upload_csv(api, campaign["id"], csv.encode())
    api.post(f"/api/v1/campaigns/{campaign['id']}/start")
    assert expand_some(service.context, 20) == 20
    with service.context.db.session() as session:  # the worker took five of them
        session.execute(update(Message).where(Message.to_number.in_([number(i) for i in range(5)]))
                        .values(status="sent"))
    resp = api.post(f"/api/v1/campaigns/{campaign['id']}/cancel")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "canceled" and resp.json()["messages_canceled"] == 15
    assert expand_some(service.context, 20) == 0
    assert message_count(service.context, campaign["id"]) == 20
    assert message_count(service.context, campaign["id"], "canceled") == 15
    canceled = api.get("/api/v1/messages", params={"campaign_id": campaign["id"], "status": "canceled"}).json()
    history = api.get(f"/api/v1/messages/{canceled['items'][0]['id']}").json()["history"]
    assert [h["status"] for h in history] == ["queued", "canceled"]
    assert api.post(f"/api/v1/campaigns/{campaign['id']}/cancel").status_code == 409
    assert upload_csv(api, campaign["id"], b"phone\n+14155550101\n").status_code == 409


def test_report_groups_errors_exclusions_and_a_per_minute_timeline(api, service, configuration):
    campaign = create_campaign(api, body="Hello")
    csv = "phone\n" + "".join(f"{number(i)}\n" for i in range(10))
    upload_csv(api, campaign["id"], csv.encode())
    api.post(f"/api/v1/campaigns/{campaign['id']}/start")
    expand_all(service.context)
    now = utcnow()
    with service.context.db.session() as session:
        ids = list(session.scalars(select(Message.id).where(Message.campaign_id == campaign["id"])
                                   .order_by(Message.to_number)))
        session.execute(update(Message).where(Message.id.in_(ids[:6])).values(status="delivered", final_at=now))
        session.execute(update(Message).where(Message.id.in_(ids[6:9])).values(
            status="undelivered", error_code="30003", error_message="Unreachable destination handset", final_at=now))
        session.execute(update(Message).where(Message.id == ids[9]).values(
            status="failed", error_code="21211", error_message="Invalid 'To' Phone Number", final_at=now))
    report = api.get(f"/api/v1/campaigns/{campaign['id']}/report").json()
    assert report["counts"] == {"delivered": 6, "undelivered": 3, "failed": 1}
    assert report["errors"] == [
        {"code": "30003", "message": "Unreachable destination handset", "count": 3},
        {"code": "21211", "message": "Invalid 'To' Phone Number", "count": 1}]
    assert report["exclusions"] == []
    assert report["timeline"] == [{"minute": now.strftime("%Y-%m-%dT%H:%M:00Z"), "delivered": 6, "failed": 4}]
    assert finish_campaigns(service.context) == 1
    done = api.get(f"/api/v1/campaigns/{campaign['id']}").json()
    assert done["status"] == "completed" and done["finished_at"] is not None


def test_campaign_is_not_completed_while_messages_are_queued(api, service, configuration):
    campaign = create_campaign(api, body="Hello")
    upload_csv(api, campaign["id"], b"phone\n+14155550101\n+14155550102\n")
    api.post(f"/api/v1/campaigns/{campaign['id']}/start")
    assert finish_campaigns(service.context) == 0  # nothing expanded yet
    expand_all(service.context)
    assert finish_campaigns(service.context) == 0
    with service.context.db.session() as session:
        session.execute(update(Message).where(Message.campaign_id == campaign["id"]).values(status="sent"))
    assert finish_campaigns(service.context) == 1
    with service.context.db.session() as session:
        assert session.get(Campaign, campaign["id"]).status == "completed"


def test_concurrent_expansion_creates_each_message_once(api, service, configuration):
    campaign = create_campaign(api)
    csv = "phone,firstName\n" + "".join(f"{number(i)},N{i}\n" for i in range(3000))
    upload_csv(api, campaign["id"], csv.encode())
    api.post(f"/api/v1/campaigns/{campaign['id']}/start")
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        expand_all(service.context, 100)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert message_count(service.context, campaign["id"]) == 3000
    with service.context.db.session() as session:
        distinct = session.scalar(select(func.count(func.distinct(Message.to_number))).where(
            Message.campaign_id == campaign["id"]))
    assert distinct == 3000


def test_campaign_on_a_draft_configuration_cannot_start(api, credential):
    make_configuration(api, credential["id"], name="promo", status="draft")
    campaign = create_campaign(api)
    upload_csv(api, campaign["id"], b"phone,firstName\n+14155550101,Ann\n")
    resp = api.post(f"/api/v1/campaigns/{campaign['id']}/start")
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "channel_configuration"


def test_campaign_on_an_rcs_configuration_is_refused_with_the_way_to_send_rcs(api, credential):
    make_configuration(api, credential["id"], name="rich", channel="rcs")
    resp = api.post("/api/v1/campaigns", json={"name": "x", "channel_configuration": "rich", "body": "hi"})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "channel_configuration"
    assert "POST /api/v1/messages" in resp.json()["errors"][0]["message"]


def test_concurrent_uploads_to_one_campaign_number_members_without_gaps(api, service, configuration):
    campaign = create_campaign(api)
    barrier = threading.Barrier(3)
    answers: list = []

    def upload(part: int) -> None:
        client = service.client()
        csv = "phone,firstName\n" + "".join(f"{number(part * 1000 + i)},N\n" for i in range(1000))
        barrier.wait()
        answers.append(client.post(f"/api/v1/campaigns/{campaign['id']}/audience", data=csv.encode(),
                                   headers={"Content-Type": "text/csv"}))

    threads = [threading.Thread(target=upload, args=(p,)) for p in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [200] * 3
    with service.context.db.session() as session:
        seqs = list(session.scalars(select(AudienceMember.seq).where(AudienceMember.campaign_id == campaign["id"])
                                    .order_by(AudienceMember.seq)))
    assert seqs == list(range(3000))
    assert api.get(f"/api/v1/campaigns/{campaign['id']}").json()["audience_size"] == 3000
