"""The webhooks resource: defaults per credential, validation, edits."""

from __future__ import annotations

from tests.inbound.helpers import make_line
from textrelay.services.webhooks import DEFAULT_KEYWORDS


def test_a_new_twilio_credential_has_editable_default_inbound_and_feedback_webhooks(api):
    line = make_line(api)
    hooks = api.get("/api/v1/webhooks", params={"credential_id": line.credential["id"]}).json()["items"]
    assert sorted(h["type"] for h in hooks) == ["feedback", "inbound"]
    inbound = next(h for h in hooks if h["type"] == "inbound")
    assert inbound["keywords"]["opt_out"] == DEFAULT_KEYWORDS["opt_out"]
    assert inbound["revocation_policy"] == "opt_out"
    assert inbound["url"] == line.url
    feedback = next(h for h in hooks if h["type"] == "feedback")
    assert "keywords" not in feedback
    resp = api.patch(f"/api/v1/webhooks/{inbound['id']}", json={"name": "Main inbound", "replies": {"help": "Call us"}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["replies"]["help"] == "Call us"
    assert resp.json()["url"] == inbound["url"]


def test_keyword_and_policy_validation_names_the_field(api):
    line = make_line(api)
    hook = line.inbound_webhook["id"]
    cases = [
        ({"keywords": {"help": ["STOP"]}}, "keywords.help[0]"),
        ({"keywords": {"custom": ["!!!"]}}, "keywords.custom[0]"),
        ({"keywords": {"custom": ["a<b"]}}, "keywords.custom[0]"),
        ({"revocation_policy": "maybe"}, "revocation_policy"),
        ({"replies": {"help": "x" * 1501}}, "replies.help"),
        ({"keywords": {"nonsense": ["X"]}}, "keywords.nonsense"),
        ({"url": "https://elsewhere.test"}, "url"),
        ({"sender_number": "ACME"}, "sender_number"),
    ]
    for body, field in cases:
        resp = api.patch(f"/api/v1/webhooks/{hook}", json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in resp.json()["errors"]], (body, resp.json())
    after = api.get(f"/api/v1/webhooks/{hook}").json()
    assert after["keywords"]["help"] == DEFAULT_KEYWORDS["help"]
    assert after["revocation_policy"] == "opt_out"


def test_create_validates_credential_type_and_unique_sender(api):
    line = make_line(api)
    cred = line.credential["id"]
    assert api.post("/api/v1/webhooks", json={"name": "x", "type": "inbound", "credential_id": "nope"}
                    ).json()["errors"][0]["field"] == "credential_id"
    bad_type = api.post("/api/v1/webhooks", json={"name": "x", "type": "outbound", "credential_id": cred})
    assert bad_type.status_code == 422 and bad_type.json()["errors"][0]["field"] == "type"
    fb = api.post("/api/v1/webhooks", json={"name": "fb", "type": "feedback", "credential_id": cred,
                                            "keywords": {"help": ["X"]}})
    assert fb.status_code == 422 and fb.json()["errors"][0]["field"] == "keywords"
    first = api.post("/api/v1/webhooks", json={"name": "a", "type": "inbound", "credential_id": cred,
                                               "sender_number": "+14155550111"})
    assert first.status_code == 201, first.text
    clash = api.post("/api/v1/webhooks", json={"name": "b", "type": "inbound", "credential_id": cred,
                                               "sender_number": "+1 (415) 555-0111"})
    assert clash.status_code == 409 and clash.json()["errors"][0]["field"] == "sender_number"
    same_name = api.post("/api/v1/webhooks", json={"name": "a", "type": "feedback", "credential_id": cred})
    assert same_name.status_code == 409
    assert api.delete(f"/api/v1/webhooks/{first.json()['id']}").status_code == 204
    assert api.get(f"/api/v1/webhooks/{first.json()['id']}").status_code == 404


def test_sender_role_can_read_but_not_edit_webhooks(service, api):
    line = make_line(api)
    sender = service.client(service.new_key("sender"))
    assert sender.get("/api/v1/webhooks").status_code == 200
    assert sender.patch(f"/api/v1/webhooks/{line.inbound_webhook['id']}", json={"name": "x"}).status_code == 403
