"""Fixtures for the API tests: a small catalog (`world`), Bearer-token clients per persona
(`api`), and a clean rate-limit budget for every test.

The world matches the URL matrix's (tests/portal/test_url_matrix.py): gold image "ubuntu"
with published 1.0.0 and draft 1.1.0; web/nginx with 1.0.0 (published) and 1.1.0 (draft);
data/tools 1.0.0; builds web_build (running, with web/nginx@1.0.0), data_build (data) and
security_build (gold only, alice's).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from rest_framework.test import APIClient

from builds.models import Build
from portal import tokens
from tests import factories
from tests.support.build_rows import make_build
from tests.support.workers import flush_redis


@pytest.fixture(autouse=True)
def fresh_rate_budget():
    """Rate-limit counters live in Redis per token/user id, and ids repeat between tests."""
    flush_redis()
    yield


@pytest.fixture
def world(alice, bob, carol, web, data_dept) -> SimpleNamespace:
    gold = factories.make_gold_image("ubuntu", actor=alice)
    published = factories.make_gold_version(gold, "1.0.0", actor=alice)
    draft = factories.make_gold_version(gold, "1.1.0", publish=False, actor=alice)
    web_layer = factories.make_layer(web, gold, "nginx", actor=bob)
    web_version = factories.make_layer_version(web_layer, "1.0.0", actor=bob)
    web_draft = factories.make_layer_version(web_layer, "1.1.0", publish=False, actor=bob)
    data_layer = factories.make_layer(data_dept, gold, "tools", actor=carol)
    data_version = factories.make_layer_version(data_layer, "1.0.0", actor=carol)
    return SimpleNamespace(
        gold=gold, published=published, draft=draft, web_layer=web_layer, web_version=web_version,
        web_draft=web_draft, data_layer=data_layer, data_version=data_version,
        web_build=make_build(published, [web_version], requested_by=bob, state=Build.State.RUNNING,
                             sub_state="Customizing", phases=("Queued", "Building")),
        data_build=make_build(published, [data_version], requested_by=carol),
        security_build=make_build(published, requested_by=alice),
    )


def token_of(user, **kwargs) -> str:
    return tokens.token_create(actor=user, user=user, name="api tests", **kwargs)[1]


def client_with(secret: str | None) -> APIClient:
    client = APIClient(raise_request_exception=False)
    if secret:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def api():
    """api(user) -> an APIClient sending a fresh token of the user's; api(None) -> anonymous."""
    return lambda user: client_with(token_of(user) if user is not None else None)
