"""Consent: lookups with history, API changes, CSV import/export, and what sends make of it."""

from __future__ import annotations

from tests.inbound.helpers import make_line, reply_of

HANDSET = "+14155550199"


def test_put_records_api_consent_with_history_and_blocked_sender(api):
    resp = api.put("/api/v1/consent/+1 415 555 0199", json={"status": "opted_out", "sender_number": "+14155550100",
                                                            "detail": "asked by phone"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["phone_number"] == HANDSET
    assert body["status"] == "opted_out"
    assert body["blocked_senders"] == ["+14155550100"]
    assert body["history"][0]["source"] == "api" and body["history"][0]["detail"] == "asked by phone"
    api.put(f"/api/v1/consent/{HANDSET}", json={"status": "opted_in"})
    again = api.get(f"/api/v1/consent/{HANDSET}").json()
    assert [e["status"] for e in again["history"]] == ["opted_out", "opted_in"]
    assert again["blocked_senders"] == []


def test_bad_consent_input_is_a_422_naming_the_field(api):
    assert api.get("/api/v1/consent/12").json()["errors"][0]["field"] == "number"
    bad = api.put(f"/api/v1/consent/{HANDSET}", json={"status": "maybe"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "status"
    assert api.put(f"/api/v1/consent/{HANDSET}", json={"status": "opted_in", "x": 1}).status_code == 422
    assert api.get(f"/api/v1/consent/{HANDSET}").json()["status"] == "unknown"


def test_list_filters_by_status_and_pages(api):
    for index in range(5):
        api.put(f"/api/v1/consent/+1415555020{index}", json={"status": "opted_out" if index % 2 else "opted_in"})
    outs = api.get("/api/v1/consent", params={"status": "opted_out"}).json()["items"]
    assert sorted(c["phone_number"] for c in outs) == ["+14155550201", "+14155550203"]
    first = api.get("/api/v1/consent", params={"limit": 3}).json()
    rest = api.get("/api/v1/consent", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert len({c["phone_number"] for c in first["items"] + rest["items"]}) == 5
    assert rest["next_cursor"] is None


def test_csv_import_then_export_round_trips(api):
    csv_text = ("phone_number,status,sender_number,detail\n"
                "+14155550201,opted_out,+14155550100,paper form\n"
                "+1 415 555 0202,opted_in,,\n"
                "+14155550203,pending,,\n")
    resp = api.post("/api/v1/consent/import", data=csv_text.encode(), headers={"Content-Type": "text/csv"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"rows": 3, "changed": 3, "unchanged": 0}
    history = api.get("/api/v1/consent/+14155550201").json()["history"]
    assert history[0]["source"] == "import" and history[0]["detail"] == "paper form"
    export = api.get("/api/v1/consent/export.csv")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    lines = export.text.strip().splitlines()
    assert lines[0] == "phone_number,status,source,sender_number,updated_at"
    assert [line.split(",")[:2] for line in lines[1:]] == [
        ["+14155550201", "opted_out"], ["+14155550202", "opted_in"], ["+14155550203", "pending"]]
    again = api.post("/api/v1/consent/import", data=csv_text.encode(), headers={"Content-Type": "text/csv"})
    assert again.json() == {"rows": 3, "changed": 0, "unchanged": 3}


def test_csv_import_with_a_bad_row_imports_nothing_and_names_the_line(api):
    csv_text = "phone_number,status\n+14155550201,opted_out\nnot-a-number,opted_out\n+14155550202,sometimes\n"
    resp = api.post("/api/v1/consent/import", data=csv_text.encode(), headers={"Content-Type": "text/csv"})
    assert resp.status_code == 422
    fields = [e["field"] for e in resp.json()["errors"]]
    assert fields == ["line 3.phone_number", "line 4.status"]
    assert api.get("/api/v1/consent/+14155550201").json()["status"] == "unknown"
    no_header = api.post("/api/v1/consent/import", data=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"})
    assert no_header.status_code == 422 and no_header.json()["errors"][0]["field"] == "file"
    binary = api.post("/api/v1/consent/import", data=b"\xff\xfe\x00bad", headers={"Content-Type": "text/csv"})
    assert binary.status_code == 422


def _marketing_config(api, line):  # type: ignore[no-untyped-def]
    resp = api.post("/api/v1/channel-configurations", json={
        "name": "promo", "channel": "sms", "sms_type": "marketing", "credential_id": line.credential["id"],
        "sender_number": line.number, "status": "active"})
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_after_stop_marketing_sends_are_excluded_with_the_reason_and_after_start_they_go(api):
    line = make_line(api)
    _marketing_config(api, line)
    send = {"channel_configuration": "promo", "to": HANDSET, "body": "Sale today"}
    assert reply_of(line.text("STOP")) is not None
    excluded = api.post("/api/v1/messages", json=send)
    assert excluded.status_code == 202, excluded.text
    assert excluded.json()["status"] == "excluded"
    assert "opted out" in excluded.json()["excluded_reason"]
    line.text("START")
    sent = api.post("/api/v1/messages", json=send)
    assert sent.status_code == 202 and sent.json()["status"] == "queued"


def _campaign(api, context, numbers):  # type: ignore[no-untyped-def]
    from textrelay.delivery.campaigns import expand_some

    created = api.post("/api/v1/campaigns", json={"name": "spring sale", "channel_configuration": "promo",
                                                  "body": "Sale today"})
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    audience = api.post(f"/api/v1/campaigns/{cid}/audience", json={"members": [{"to": n} for n in numbers]})
    assert audience.status_code == 200, audience.text
    assert api.post(f"/api/v1/campaigns/{cid}/start").status_code == 200
    while expand_some(context):
        pass
    return api.get(f"/api/v1/campaigns/{cid}/report").json()


def test_after_stop_a_marketing_campaign_excludes_the_number_with_the_reason_and_after_start_sends_again(
        api, context):
    line = make_line(api)
    _marketing_config(api, line)
    line.text("STOP")
    first = _campaign(api, context, [HANDSET, "+14155550123"])
    assert first["counts"].get("excluded") == 1
    assert first["counts"].get("queued") == 1
    assert len(first["exclusions"]) == 1 and "opted out" in first["exclusions"][0]["reason"]
    line.text("START")
    second = _campaign(api, context, [HANDSET, "+14155550123"])
    assert second["counts"].get("excluded", 0) == 0
    assert second["counts"].get("queued") == 2
