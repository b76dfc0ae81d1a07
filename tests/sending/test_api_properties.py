"""Property-based: generated requests to the sending endpoints never make the service fail."""

from __future__ import annotations

import pytest

from tests.properties import check_generated_requests
from tests.sending.conftest import make_configuration, make_credential


@pytest.mark.slow
def test_no_generated_input_makes_the_sending_api_fail(service, api):
    make_configuration(api, make_credential(api)["id"])
    assert check_generated_requests(service, r"^/api/v1/(channel-configurations|messages|campaigns)",
                                    max_examples=25) >= 10
