"""End to end with the Twilio-compatible simulator: it plays the handset, signs the inbound
request itself, and turns our TwiML answer into an outbound reply."""

from __future__ import annotations

import requests

from tests.inbound.helpers import make_line
from textrelay.services.webhooks import DEFAULT_REPLIES
from textrelay.simulator.testing import SimulatorServer, new_account


def test_simulator_signed_stop_opts_out_and_its_reply_is_sent_once(api):
    account_sid, token = new_account()
    line = make_line(api, account_sid=account_sid, token=token)
    with SimulatorServer(accounts=[(account_sid, token)]) as sim:
        def text(body: str, **extra: object) -> dict:
            resp = requests.post(sim.url + "/_sim/inbound", json={
                "account_sid": account_sid, "from": "+14155550199", "to": line.number, "body": body,
                "url": line.url, **extra}, timeout=30)
            assert resp.status_code == 200, resp.text
            return resp.json()

        first = text("Stop!")
        assert first["status"] == 200 and first["content_type"].startswith("text/xml")
        assert [r["body"] for r in first["replies"]] == [DEFAULT_REPLIES["opt_out"]]
        assert line.consent()["status"] == "opted_out"
        assert text("STOP")["replies"] == []
        photo = text("", media_urls=["https://example.test/cat.jpg"])
        assert photo["status"] == 200 and photo["replies"] == []
    stored = api.get("/api/v1/inbound-messages").json()["items"]
    assert stored[0]["media"] == [{"url": "https://example.test/cat.jpg", "content_type": "image/jpeg"}]
    assert len(stored) == 3
