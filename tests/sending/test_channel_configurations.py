from __future__ import annotations

import pytest

from tests.sending.conftest import make_configuration, make_credential
from textrelay.services import sandboxes
from textrelay.store.models import Message, utcnow

BASE = "/api/v1/channel-configurations"


def valid(cred_id, **over):  # type: ignore[no-untyped-def]
    body = {"name": "promo", "channel": "sms", "sms_type": "marketing", "credential_id": cred_id,
            "sender_number": "+1 (415) 555-0100"}
    body.update(over)
    return body


def test_create_normalises_and_defaults_then_lists_gets_updates_and_deletes(api, credential):
    resp = api.post(BASE, json=valid(credential["id"], shortening_domain="Go.Example.COM"))
    assert resp.status_code == 201, resp.text
    config = resp.json()
    assert config["sender_number"] == "+14155550100"
    assert config["execution_field"] == "mobilePhone"
    assert config["status"] == "draft"
    assert config["shortening_domain"] == "go.example.com"
    assert config["credential_name"] == credential["name"]
    assert [c["id"] for c in api.get(BASE).json()["items"]] == [config["id"]]
    assert api.get(f"{BASE}/{config['id']}").json()["name"] == "promo"

    patched = api.patch(f"{BASE}/{config['id']}", json={"status": "active", "rate_limit_mps": 2.5,
                                                         "sender_number": "MyShop"})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["status"], patched.json()["rate_limit_mps"], patched.json()["sender_number"]) == \
        ("active", 2.5, "MyShop")

    assert api.delete(f"{BASE}/{config['id']}").status_code == 204
    assert api.get(f"{BASE}/{config['id']}").status_code == 404


@pytest.mark.parametrize(("over", "field"), [
    ({"name": "1promo"}, "name"),
    ({"name": "promo code"}, "name"),
    ({"channel": "fax"}, "channel"),
    ({"sms_type": "bulk"}, "sms_type"),
    ({"credential_id": "nope"}, "credential_id"),
    ({"sender_number": "not a number!"}, "sender_number"),
    ({"sender_number": "ABCDEFGHIJKL"}, "sender_number"),
    ({"shortening_domain": "https://go.example.com/x"}, "shortening_domain"),
    ({"rate_limit_mps": 0}, "rate_limit_mps"),
    ({"status": "paused"}, "status"),
    ({"surprise": True}, "surprise"),
])
def test_bad_field_is_a_422_naming_it_and_nothing_is_stored(api, credential, over, field):
    resp = api.post(BASE, json=valid(credential["id"], **over))
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert field in {e["field"] for e in resp.json()["errors"]}
    assert api.get(BASE).json()["items"] == []


def test_twilio_without_messaging_service_needs_a_sender_and_cannot_do_rcs(api):
    cred = make_credential(api, messaging_service=False)
    no_sender = api.post(BASE, json=valid(cred["id"], sender_number=None))
    assert no_sender.status_code == 422
    assert no_sender.json()["errors"][0]["field"] == "sender_number"
    rcs = api.post(BASE, json=valid(cred["id"], channel="rcs"))
    assert rcs.status_code == 422
    assert rcs.json()["errors"][0]["field"] == "channel"
    assert "custom credential" in rcs.json()["errors"][0]["message"]
    # With a messaging service the sender may be left out.
    with_service = make_credential(api, name="with service")
    assert api.post(BASE, json=valid(with_service["id"], sender_number=None)).status_code == 201


def test_duplicate_name_in_a_sandbox_is_a_409_but_other_sandboxes_may_reuse_it(api, service, credential):
    assert api.post(BASE, json=valid(credential["id"])).status_code == 201
    again = api.post(BASE, json=valid(credential["id"]))
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "name"
    assert api.post("/api/v1/sandboxes", json={"name": "dev"}).status_code in (200, 201)
    dev = service.client(sandbox="dev")
    # A credential of prod is not visible from dev.
    cross = dev.post(BASE, json=valid(credential["id"]))
    assert cross.status_code == 422
    assert cross.json()["errors"][0]["field"] == "credential_id"
    dev_cred = make_credential(dev)
    assert dev.post(BASE, json=valid(dev_cred["id"])).status_code == 201


def test_patch_that_breaks_a_rule_changes_nothing(api):
    cred = make_credential(api, messaging_service=False)
    config = make_configuration(api, cred["id"])
    resp = api.patch(f"{BASE}/{config['id']}", json={"sender_number": None, "name": "renamed"})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "sender_number"
    current = api.get(f"{BASE}/{config['id']}").json()
    assert (current["name"], current["sender_number"]) == ("promo", "+14155550100")


def test_sender_role_reads_but_cannot_change(service, api, configuration):
    sender = service.client(service.new_key("sender"))
    assert sender.get(BASE).status_code == 200
    assert sender.get(f"{BASE}/{configuration['id']}").status_code == 200
    assert sender.patch(f"{BASE}/{configuration['id']}", json={"status": "draft"}).status_code == 403
    assert sender.delete(f"{BASE}/{configuration['id']}").status_code == 403
    assert sender.post(BASE, json=valid(configuration["credential_id"], name="other")).status_code == 403


def test_configuration_with_queued_messages_cannot_be_deleted(api, configuration):
    sent = api.post("/api/v1/messages", json={"channel_configuration": "promo", "to": "+14155550123", "body": "hi"})
    assert sent.status_code == 202
    resp = api.delete(f"{BASE}/{configuration['id']}")
    assert resp.status_code == 409
    assert "queued" in resp.json()["detail"]
    assert api.get(f"{BASE}/{configuration['id']}").status_code == 200


def test_configuration_with_only_finished_messages_cannot_be_deleted_either(api, service, configuration):
    sent = api.post("/api/v1/messages", json={"channel_configuration": "promo", "to": "+14155550123", "body": "hi"})
    with service.context.db.session() as session:
        row = session.get(Message, sent.json()["id"])
        row.status, row.final_at = "delivered", utcnow()
        assert sandboxes.get_by_name(session, "prod").id == row.sandbox_id
    resp = api.delete(f"{BASE}/{configuration['id']}")
    assert resp.status_code == 409
    assert "draft" in resp.json()["detail"]


def test_list_is_paginated_with_a_cursor(api, credential):
    for i in range(5):
        make_configuration(api, credential["id"], name=f"c{i}")
    first = api.get(BASE, params={"limit": 2}).json()
    second = api.get(BASE, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    third = api.get(BASE, params={"limit": 2, "cursor": second["next_cursor"]}).json()
    names = [c["name"] for c in first["items"] + second["items"] + third["items"]]
    assert names == ["c0", "c1", "c2", "c3", "c4"]
    assert third["next_cursor"] is None
