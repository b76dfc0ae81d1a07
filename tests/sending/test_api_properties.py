"""Property-based: generated valid and invalid requests to the sending endpoints never get a 5xx,
and every error is a problem+json saying what is wrong."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.sending.conftest import make_configuration, make_credential

SENDING_PATHS = r"^/api/v1/(channel-configurations|messages|campaigns)"


@pytest.mark.slow
def test_no_generated_input_makes_the_sending_api_fail(service, api):
    make_configuration(api, make_credential(api)["id"])
    schema = schemathesis.openapi.from_url(service.url + "/openapi.json").include(path_regex=SENDING_PATHS)
    auth = {"Authorization": f"Bearer {service.admin_key}"}
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
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
