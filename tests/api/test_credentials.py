from __future__ import annotations

from tests.support import twilio_sid


def twilio_payload(**over):  # type: ignore[no-untyped-def]
    body = {"name": "Twilio main", "vendor": "twilio", "account_sid": twilio_sid("AC"),
            "auth_token": "f" * 28 + "c0de", "messaging_service_sid": twilio_sid("MG"),
            "inbound_number": "+1 415 555 0100"}
    body.update(over)
    return body


def test_create_credential_normalises_number_masks_token_and_adds_webhooks(api):
    resp = api.post("/api/v1/credentials", json=twilio_payload())
    assert resp.status_code == 201, resp.text
    cred = resp.json()
    assert cred["inbound_number"] == "+14155550100"
    assert cred["auth_token"] == "••••c0de"
    assert "f" * 28 not in resp.text
    assert sorted(h["type"] for h in cred["webhooks"]) == ["feedback", "inbound"]
    assert all(h["url"].startswith(api.base_url + "/hooks/twilio/") for h in cred["webhooks"])
    listed = api.get("/api/v1/credentials").json()["items"]
    assert [c["id"] for c in listed] == [cred["id"]]


def test_bad_fields_are_named_in_a_problem(api):
    resp = api.post("/api/v1/credentials", json=twilio_payload(account_sid="AC123", messaging_service_sid="XX",
                                                                 surprise=1))
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"] for e in resp.json()["errors"]}
    assert {"account_sid", "messaging_service_sid", "surprise"} <= fields
    bad_number = api.post("/api/v1/credentials", json=twilio_payload(inbound_number="12"))
    assert bad_number.status_code == 422
    assert bad_number.json()["errors"][0]["field"] == "inbound_number"
    assert api.get("/api/v1/credentials").json()["items"] == []


def test_update_without_secret_keeps_it(api, service):
    cred = api.post("/api/v1/credentials", json=twilio_payload()).json()
    resp = api.patch(f"/api/v1/credentials/{cred['id']}", json={"name": "Renamed"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["name"] == "Renamed"
    assert resp.json()["auth_token"] == "••••c0de"
    from textrelay.services import credentials as svc
    from textrelay.store.models import Credential

    with service.context.db.session() as session:
        row = session.get(Credential, cred["id"])
        assert svc.secret(row, service.context.keyring, "auth_token") == "f" * 28 + "c0de"
    resp = api.patch(f"/api/v1/credentials/{cred['id']}", json={"auth_token": "n" * 28 + "beef"})
    assert resp.json()["auth_token"] == "••••beef"


def test_name_is_unique_per_sandbox_and_inbound_number_per_account(api, service):
    first = twilio_payload()
    assert api.post("/api/v1/credentials", json=first).status_code == 201
    same_name = api.post("/api/v1/credentials", json=twilio_payload(inbound_number="+14155550101"))
    assert same_name.status_code == 409
    api.post("/api/v1/sandboxes", json={"name": "dev"})
    dev = service.client(sandbox="dev")
    clash = dev.post("/api/v1/credentials", json={**first, "name": "dev twilio"})
    assert clash.status_code == 409
    assert clash.json()["errors"][0]["field"] == "inbound_number"
    own_number = dev.post("/api/v1/credentials", json={**first, "name": "dev twilio", "inbound_number": "+14155550199"})
    assert own_number.status_code == 201, own_number.text


def test_sandbox_scoped_key_sees_nothing_of_another_sandbox(api, service):
    api.post("/api/v1/sandboxes", json={"name": "dev"})
    cred = api.post("/api/v1/credentials", json=twilio_payload()).json()
    dev_key = service.new_key("admin", sandbox="dev")
    dev = service.client(dev_key, sandbox="dev")
    assert dev.get("/api/v1/credentials").json()["items"] == []
    prod_via_dev_key = service.client(dev_key, sandbox="prod")
    assert prod_via_dev_key.get("/api/v1/credentials").status_code == 404
    assert prod_via_dev_key.get(f"/api/v1/credentials/{cred['id']}").status_code == 404
    assert prod_via_dev_key.delete(f"/api/v1/credentials/{cred['id']}").status_code == 404
    assert dev.get(f"/api/v1/credentials/{cred['id']}").status_code == 404
    assert api.get(f"/api/v1/credentials/{cred['id']}").status_code == 200


def test_sender_key_cannot_change_configuration(api, service):
    cred = api.post("/api/v1/credentials", json=twilio_payload()).json()
    sender = service.client(service.new_key("sender"))
    assert sender.get("/api/v1/credentials").status_code == 200
    assert sender.post("/api/v1/credentials", json=twilio_payload(name="x")).status_code == 403
    assert sender.patch(f"/api/v1/credentials/{cred['id']}", json={"name": "y"}).status_code == 403
    assert sender.delete(f"/api/v1/credentials/{cred['id']}").status_code == 403
    assert sender.post("/api/v1/api-keys", json={"name": "k", "role": "admin"}).status_code == 403


def test_missing_or_wrong_key_is_401(service):
    assert service.client(None).get("/api/v1/credentials").status_code == 401
    assert service.client("trk_nope").get("/api/v1/credentials").status_code == 401


def test_delete_refuses_while_a_channel_configuration_uses_the_credential(api, service):
    from textrelay.store.models import ChannelConfiguration

    cred = api.post("/api/v1/credentials", json=twilio_payload()).json()
    with service.context.db.session() as session:
        from textrelay.services import sandboxes

        prod = sandboxes.get_by_name(session, "prod")
        session.add(ChannelConfiguration(sandbox_id=prod.id, name="Promo", channel="sms", sms_type="marketing",
                                         credential_id=cred["id"], sender_number="+14155550100"))
    resp = api.delete(f"/api/v1/credentials/{cred['id']}")
    assert resp.status_code == 409
    assert "Promo" in resp.json()["detail"]
    with service.context.db.session() as session:
        session.query(ChannelConfiguration).delete()
    assert api.delete(f"/api/v1/credentials/{cred['id']}").status_code == 204
    assert api.get(f"/api/v1/credentials/{cred['id']}").status_code == 404


def test_malformed_json_huge_body_and_odd_unicode_never_500(api):
    resp = api.post("/api/v1/credentials", data=b'{"name": ', headers={"content-type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["errors"][0]["field"] == "body"
    huge = api.post("/api/v1/credentials", data=b"{" + b" " * 2_000_000 + b"}",
                    headers={"content-type": "application/json"})
    assert huge.status_code == 413
    odd = api.post("/api/v1/credentials", json=twilio_payload(name="\ud800\u0000\u202e" * 5))
    assert odd.status_code in (201, 422)
    not_object = api.post("/api/v1/credentials", json=[1, 2])
    assert not_object.status_code == 422


def test_credential_rate_limit_is_set_changed_and_removed(api):
    cred = api.post("/api/v1/credentials", json=twilio_payload(rate_limit_mps=5)).json()
    assert cred["rate_limit_mps"] == 5
    assert api.post("/api/v1/credentials", json=twilio_payload(name="b", inbound_number="+14155550102",
                                                                 rate_limit_mps=-1)).status_code == 422
    changed = api.patch(f"/api/v1/credentials/{cred['id']}", json={"rate_limit_mps": 20}).json()
    assert changed["rate_limit_mps"] == 20
    removed = api.patch(f"/api/v1/credentials/{cred['id']}", json={"rate_limit_mps": None}).json()
    assert removed["rate_limit_mps"] is None


def test_nul_and_lone_surrogates_are_refused_naming_the_field(api):
    resp = api.post("/api/v1/credentials", data='{"name": "a\\u0000b", "account_sid": "x"}',
                    headers={"content-type": "application/json"})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "name"
    surrogate = api.post("/api/v1/api-keys", data='{"name": "k\\ud800", "role": "admin"}',
                         headers={"content-type": "application/json"})
    assert surrogate.status_code == 422 and surrogate.json()["errors"][0]["field"] == "name"
    query = api.get("/api/v1/credentials?cursor=%00")
    assert query.status_code == 422 and query.json()["errors"][0]["field"] == "query.cursor"
    pair = api.post("/api/v1/api-keys", json={"name": "emoji \U0001F600 ok", "role": "sender"})
    assert pair.status_code == 201
    assert api.get("/api/v1/credentials").json()["items"] == []
