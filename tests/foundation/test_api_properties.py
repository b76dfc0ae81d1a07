"""Property-based: generated requests to the foundation endpoints never make the API fail."""

from __future__ import annotations

from tests.properties import check_generated_requests


def test_no_generated_input_makes_the_api_fail(service):
    assert check_generated_requests(service, r"^/api/v1/(credentials|sandboxes|api-keys)") >= 10
