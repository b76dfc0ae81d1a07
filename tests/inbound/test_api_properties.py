"""Property-based: generated requests to the webhooks, consent, inbound-messages and events APIs
never make the service fail."""

from __future__ import annotations

import pytest

from tests.inbound.helpers import make_line
from tests.properties import check_generated_requests


@pytest.mark.slow
def test_no_generated_input_makes_these_apis_fail(service, api):
    make_line(api).text("STOP")
    assert check_generated_requests(service, r"^/api/v1/(webhooks|consent|inbound-messages|events)") >= 10
