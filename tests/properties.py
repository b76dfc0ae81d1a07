"""The property-based API check shared by each area's tests: schemathesis generates valid and invalid
requests from our own OpenAPI schema; none may answer 5xx, and every error is a problem+json with
a detail."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.support import LiveService


def check_generated_requests(service: LiveService, path_regex: str, max_examples: int = 15) -> int:
    """Run the check on every operation under ``path_regex``; returns how many (operation, mode) ran."""
    schema = schemathesis.openapi.from_url(service.url + "/openapi.json").include(path_regex=path_regex)
    auth = {"Authorization": f"Bearer {service.admin_key}"}
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck),
                      database=None)
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
                continue  # no request of this kind can be expressed (e.g. an invalid bare DELETE)
            checked += 1
    return checked
