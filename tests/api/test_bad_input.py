"""Bodies the API must refuse in its own error shape, never with a 500: JSON nested deeper than
builds.jsonlimits.MAX_JSON_DEPTH (400 `request.too-deep`) and bodies over the API's bound or
Django's DATA_UPLOAD_MAX_MEMORY_SIZE (413 `request_too_large`). Nothing is written either way."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from api.parsers import MAX_BODY_BYTES
from builds.jsonlimits import MAX_JSON_DEPTH
from builds.models import Build
from tests.api.test_errors_and_auth import error_of
from tests.support.aib import template_body

CHECK = "/api/v1/templates/check/"
BUILDS = "/api/v1/builds/"
BODY_ENDPOINTS = [CHECK + "?offline=true", BUILDS]


def nested(depth: int, leaf: object = 1) -> object:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def deep_text(depth: int) -> bytes:
    """`[[[...]]]` as raw bytes: json.dumps itself would recurse at a thousand levels."""
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
def test_it_refuses_json_nested_a_thousand_levels_deep(api, bob, path):
    response = api(bob).post(path, deep_text(1000), content_type="application/json")

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_failed"
    assert [(p["rule"], p["path"]) for p in error["problems"]] == [("request.too-deep", "")]
    assert not Build.objects.exists()


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
def test_brackets_inside_strings_do_not_count_as_depth(api, bob, path):
    body = json.dumps({"gold_image": "[" * 1000, "version": "{" * 1000}).encode()

    response = api(bob).post(path, body, content_type="application/json")

    assert response.status_code in (200, 400)
    assert "request.too-deep" not in response.content.decode()


def test_the_limit_is_exactly_max_json_depth(api, bob):
    client = api(bob)

    at_limit = client.post(BUILDS, deep_text(MAX_JSON_DEPTH), content_type="application/json")
    over = client.post(BUILDS, deep_text(MAX_JSON_DEPTH + 1), content_type="application/json")

    assert at_limit.status_code == 400
    assert "request.too-deep" not in at_limit.content.decode()  # refused for its shape, not its depth
    assert error_of(over)["problems"][0]["rule"] == "request.too-deep"


@pytest.mark.parametrize("where", ["inline", "unknown-field", "tags", "source"])
def test_a_template_nested_sixty_levels_deep_is_checked_not_crashed(api, bob, where):
    """Under the limit, everything after parsing (shape check, rules, serializers) copes too."""
    deep = nested(60)
    body = template_body()
    if where == "inline":
        body["properties"]["customize"][0]["inline"] = deep
    elif where == "unknown-field":
        body["properties"]["surprise"] = deep
    elif where == "tags":
        body["tags"] = {"owner": deep}
    else:
        body["properties"]["source"] = deep

    response = api(bob).post(CHECK + "?offline=true", body, format="json")

    assert response.status_code == 200
    assert response.json()["ok"] is False


def test_a_build_request_nested_sixty_levels_deep_is_refused_for_its_shape(api, bob):
    response = api(bob).post(BUILDS, {"gold_image": nested(60), "version": "1.0.0", "layers": nested(60)},
                             format="json")

    assert response.status_code == 400
    assert {p["path"] for p in error_of(response)["problems"]} == {"gold_image", "layers[0]"}
    assert not Build.objects.exists()


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
def test_a_body_over_djangos_upload_limit_is_413_in_the_api_s_shape(api, bob, path, settings):
    body = json.dumps({"gold_image": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)}).encode()

    response = api(bob).post(path, body, content_type="application/json")

    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"
    assert not Build.objects.exists()


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
def test_a_body_over_the_api_s_bound_is_413_too(api, bob, path):
    body = json.dumps({"gold_image": "x" * MAX_BODY_BYTES}).encode()

    response = api(bob).post(path, body, content_type="application/json")

    assert response.status_code == 413
    assert error_of(response) == {"code": "request_too_large",
                                  "message": f"The body is larger than {MAX_BODY_BYTES} bytes."}


def test_a_session_call_with_a_huge_body_is_413_before_its_csrf_check(bob, settings):
    """A session call's CSRF check reads the body (for a form token) before the view runs."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(bob)
    browser.get("/profile/")  # a page sets the CSRF cookie, as in a browser
    body = json.dumps({"gold_image": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})

    response = browser.post(BUILDS, body, content_type="application/json")

    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
def test_a_nul_character_in_a_json_string_is_a_400_not_a_database_error(api, bob, path):
    """PostgreSQL cannot store U+0000 in text or jsonb: refused where the body is read."""
    response = api(bob).post(path, '{"template": {"location": "east\\u0000us"}}', content_type="application/json")

    assert response.status_code == 400
    assert [(p["rule"], p["path"]) for p in error_of(response)["problems"]] == [("request.nul", "")]
    assert not Build.objects.exists()
