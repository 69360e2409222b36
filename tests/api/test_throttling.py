"""API_RATE_PER_MINUTE: requests per token per minute, counted in Redis; 429 with Retry-After over it."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client, override_settings

from tests.api.conftest import client_with, token_of

BUILDS = "/api/v1/builds/"


@override_settings(API_RATE_PER_MINUTE=3)
def test_a_token_over_its_rate_gets_429_with_retry_after(bob, web):
    client = client_with(token_of(bob))

    statuses = [client.get(BUILDS).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    response = client.get(BUILDS)
    assert response.json()["error"]["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60


@override_settings(API_RATE_PER_MINUTE=2)
def test_the_budget_is_the_token_s_wherever_its_requests_arrive(bob, web):
    secret = token_of(bob)
    first, second = client_with(secret), client_with(secret)  # two pipelines, or two web processes

    assert [first.get(BUILDS).status_code, second.get(BUILDS).status_code] == [200, 200]
    assert second.get(BUILDS).status_code == 429
    assert client_with(token_of(bob)).get(BUILDS).status_code == 200  # another token has its own budget
    assert any(key.startswith(b"goldsmith:1:api-rate:t") for key in cache._cache.get_client().keys("*"))


@override_settings(API_RATE_PER_MINUTE=1)
def test_session_calls_spend_their_user_s_budget(bob, web):
    browser = Client()
    browser.force_login(bob)

    assert [browser.get(BUILDS).status_code for _ in range(2)] == [200, 429]


@override_settings(API_RATE_PER_MINUTE=0)
def test_zero_turns_the_limit_off(bob, web):
    client = client_with(token_of(bob))

    assert {client.get(BUILDS).status_code for _ in range(5)} == {200}


@override_settings(API_RATE_PER_MINUTE=1)
def test_anonymous_calls_are_refused_before_any_budget_is_spent(db):
    assert [client_with(None).get(BUILDS).status_code for _ in range(3)] == [401, 401, 401]


def test_without_redis_the_limit_is_not_applied(bob, web, caplog):
    client = client_with(token_of(bob))
    unreachable = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                               "LOCATION": "redis://127.0.0.1:9/0", "OPTIONS": {"socket_connect_timeout": 0.2}}}
    with override_settings(CACHES=unreachable, API_RATE_PER_MINUTE=1):
        statuses = [client.get(BUILDS).status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert "not limiting" in caplog.text


@pytest.mark.parametrize("name", ["API_RATE_PER_MINUTE"])
def test_the_setting_is_documented(name):
    from tests.test_settings_docs import ENV_EXAMPLE, OPERATIONS, documented_in_env_example, documented_in_operations

    assert name in documented_in_env_example(ENV_EXAMPLE.read_text())
    assert documented_in_operations(OPERATIONS.read_text(), name)
