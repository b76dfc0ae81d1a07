"""Property-based: schemathesis-generated requests to the webhooks, consent, inbound-messages and
events APIs never make the service fail, and every error is a problem+json saying what is wrong."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.inbound.helpers import make_line

PATHS = r"^/api/v1/(webhooks|consent|inbound-messages|events)"


@pytest.mark.slow
def test_no_generated_input_makes_these_apis_fail(service, api):
    line = make_line(api)
    line.text("STOP")
    schema = schemathesis.openapi.from_url(service.url + "/openapi.json").include(path_regex=PATHS)
    auth = {"Authorization": f"Bearer {service.admin_key}"}
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def run(case):  # type: ignore[no-untyped-def]
                response = case.call(headers=auth)
                case.validate_response(response, checks=[not_a_server_error])
                if response.status_code >= 400:
                    content_type = response.headers.get("content-type") or response.headers.get("Content-Type")
                    content_type = content_type[0] if isinstance(content_type, list) else content_type
                    assert content_type.startswith("application/problem+json"), response.text
                    assert response.json()["detail"]

            try:
                run()
            except Unsatisfiable:
                continue
            checked += 1
    assert checked >= 10
