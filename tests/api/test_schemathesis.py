"""Schemathesis against a live server: generated requests for every operation of the OpenAPI
document, sent with a token over HTTP, must never get a 5xx nor a response the document does
not describe (status, content type, headers, body).

Bounded: MAX_EXAMPLES per operation (plus the document's own examples), so the run stays well
under a minute on two cores. The caller holds every role that may touch the API's objects
(security, auditor, editor of web), so the generated requests reach past the access checks.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal.models import Membership
from tests import factories
from tests.api.conftest import client_with, token_of

MAX_EXAMPLES = 25
NEGATIVE_EXAMPLES = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection]


@pytest.fixture
def pipeline(live_server, world, web, azure_emulator, settings):
    """A live portal, the API tests' world, and a token of a user holding every catalog role."""
    settings.API_RATE_PER_MINUTE = 0  # hundreds of requests in seconds: the limit has its own tests
    user = factories.make_user("pipeline", role="security")
    Membership.objects.create(user=user, role="auditor")
    Membership.objects.create(user=user, role="editor", department=web)
    secret = token_of(user)
    document = client_with(secret).get("/api/v1/openapi.json").json()
    return {"url": live_server.url, "token": secret, "document": document}


def exercise(operation, strategy, pipeline, failures: list[str], max_examples: int) -> list[int]:
    """Run one strategy of one operation through Hypothesis; returns the statuses it got."""
    sent = []

    @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              derandomize=True)
    @given(case=strategy)
    def run(case):
        response = case.call(base_url=pipeline["url"], headers={"Authorization": f"Bearer {pipeline['token']}"})
        sent.append(response.status_code)
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # one entry per failing operation, reported together
        failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:2000]}")
    return sent


def test_generated_requests_get_documented_answers_and_never_a_server_error(pipeline):
    """(Schemathesis's own pytest plugin does not run under pytest 9 yet, so Hypothesis drives its
    strategies here: positive cases, negative cases and the document's examples, per operation.)"""
    schema = schemathesis.openapi.from_dict(pipeline["document"])
    failures: list[str] = []
    statuses: dict[str, Counter] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        got = statuses.setdefault(operation.label, Counter())
        got.update(exercise(operation, operation.as_strategy(GenerationMode.POSITIVE), pipeline, failures,
                            MAX_EXAMPLES))
        got.update(exercise(operation, operation.as_strategy(GenerationMode.NEGATIVE), pipeline, failures,
                            NEGATIVE_EXAMPLES))
        for strategy in operation.get_strategies_from_examples():
            got.update(exercise(operation, strategy, pipeline, failures, 3))
    assert not failures, "\n\n".join(failures)
    operations = sum(len(methods) for methods in pipeline["document"]["paths"].values())
    assert len(statuses) == operations and all(sum(got.values()) >= MAX_EXAMPLES for got in statuses.values())
    # The document's examples lead past validation to real objects, not only to 400s and 404s.
    assert statuses["POST /api/v1/builds/"][202] >= 1
    assert statuses["GET /api/v1/layers/{department}/{slug}/versions/{version}/"][200] >= 1
