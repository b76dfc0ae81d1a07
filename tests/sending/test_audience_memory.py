"""The audience importer's memory does not grow with the audience."""

from __future__ import annotations

import tracemalloc

import pytest

from textrelay.services import campaigns, channel_configurations, credentials, sandboxes


def _campaign(context) -> tuple:  # type: ignore[no-untyped-def]
    with context.db.session() as session:
        box = sandboxes.get_by_name(session, "prod")
        cred = credentials.create(session, context.keyring, box, credentials.TwilioCredentialCreate(
            name="t", account_sid="AC" + "a" * 32, auth_token="x" * 32, messaging_service_sid="MG" + "b" * 32))
        channel_configurations.create(session, box, channel_configurations.ChannelConfigurationCreate(
            name="promo", credential_id=cred.id, status="active"))
        first = campaigns.create(session, box, campaigns.CampaignCreate(name="small", channel_configuration="promo",
                                                                        body="Hi {{ profile.name }}"))
        second = campaigns.create(session, box, campaigns.CampaignCreate(name="big", channel_configuration="promo",
                                                                         body="Hi {{ profile.name }}"))
    return box, first.id, second.id


def _peak_while_importing(context, box, campaign_id: str, rows: int) -> int:  # type: ignore[no-untyped-def]
    importer = campaigns.AudienceImport(context.db, box, campaign_id)
    tracemalloc.start()
    tracemalloc.reset_peak()
    importer.feed(b"phone,name,city\n")
    chunk: list[str] = []
    for i in range(rows):
        chunk.append(f"+1415{555 + i // 10000}{i % 10000:04d},Name {i},Lisbon\n")
        if len(chunk) == 700:  # ~25 kB chunks, as a network stream delivers them
            importer.feed("".join(chunk).encode())
            chunk = []
    importer.feed("".join(chunk).encode())
    report = importer.finish_csv()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert report.accepted == rows
    return peak


@pytest.mark.slow
def test_importing_ten_times_more_rows_needs_no_more_memory(context):
    box, small, big = _campaign(context)
    small_peak = _peak_while_importing(context, box, small, 3_000)
    big_peak = _peak_while_importing(context, box, big, 30_000)
    assert big_peak < small_peak * 1.5 + 256 * 1024, (small_peak, big_peak)
