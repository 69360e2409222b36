"""Authentication (Bearer tokens, sessions with CSRF) and the one error shape of every API error."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.exceptions import NotAuthenticated

from api import errors
from portal import tokens
from portal.models import ApiToken
from tests.api.conftest import client_with, token_of

BUILDS = "/api/v1/builds/"


def error_of(response) -> dict:
    body = response.json()
    assert list(body) == ["error"], body
    assert set(body["error"]) <= {"code", "message", "problems"}
    return body["error"]


def test_no_token_is_401_with_a_bearer_challenge(db):
    response = client_with(None).get(BUILDS)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="goldsmith"'
    assert error_of(response)["code"] == "not_authenticated"


@pytest.mark.parametrize("spoil", ["unknown", "revoked", "expired", "inactive", "not-ours"])
def test_bad_tokens_are_401(bob, spoil):
    secret = token_of(bob)
    token = ApiToken.objects.get(user=bob)
    if spoil == "unknown":
        secret = secret[:-4] + "AAAA"
    elif spoil == "revoked":
        tokens.token_revoke(actor=bob, token=token)
    elif spoil == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    elif spoil == "inactive":
        bob.is_active = False
        bob.save()
    else:
        secret = "github_pat_123"

    response = client_with(secret).get(BUILDS)

    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response)["code"] == "not_authenticated"


def test_a_token_carries_its_user_s_current_roles(api, bob, web):
    client = api(bob)
    assert client.get(BUILDS).status_code == 200

    bob.memberships.all().delete()

    assert error_of(client.get(BUILDS))["code"] == "permission_denied"


def test_a_session_reads_and_must_send_the_csrf_token_to_change_anything(bob, world):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(bob)
    cancel = f"/api/v1/builds/{world.web_build.uuid}/cancel/"

    assert browser.get(BUILDS).status_code == 200
    refused = browser.post(cancel, content_type="application/json")
    browser.get("/profile/")  # a page sets the CSRF cookie, as in a browser
    accepted = browser.post(cancel, content_type="application/json",
                            headers={"X-CSRFToken": browser.cookies["csrftoken"].value})

    assert refused.status_code == 403 and "CSRF" in error_of(refused)["message"]
    assert accepted.status_code == 202


def test_bearer_calls_need_no_csrf_token_even_beside_a_session_cookie(bob, world):
    browser = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {token_of(bob)}"})
    browser.force_login(bob)

    response = browser.post(f"/api/v1/builds/{world.web_build.uuid}/cancel/", content_type="application/json")

    assert response.status_code == 202


def test_a_wrong_method_is_405_with_allow(api, bob, world):
    response = api(bob).delete(BUILDS)

    assert response.status_code == 405 and "POST" in response["Allow"]
    assert error_of(response)["code"] == "method_not_allowed"


def test_unknown_api_paths_are_a_json_404(api, bob):
    for path in ("/api/", "/api/v2/builds/", "/api/v1/nothing/", "/api/v1/builds"):
        response = api(bob).get(path)
        assert response.status_code == 404, path
        assert error_of(response) == {"code": "not_found", "message": "Not found."}


def test_an_unsatisfiable_accept_header_still_gets_json(api, bob):
    response = api(bob).get(BUILDS, HTTP_ACCEPT="text/html")

    assert response.status_code == 200 and response["Content-Type"] == "application/json"


def test_an_unexpected_exception_is_a_logged_500_in_the_same_shape(caplog):
    response = errors.exception_handler(RuntimeError("boom"), {})

    assert response.status_code == 500
    assert response.data["error"]["code"] == "server_error"
    assert "boom" in caplog.text


def test_every_documented_code_has_its_status():
    assert errors.CODES["validation_failed"] == 400 and errors.CODES["throttled"] == 429
    response = errors.exception_handler(NotAuthenticated(), {})
    assert json.loads(json.dumps(response.data)) == {
        "error": {"code": "not_authenticated", "message": "Authentication credentials were not provided."}}


def test_an_expired_session_gets_the_api_s_401(client, bob, settings):
    from portal.security import SESSION_SEEN, SESSION_STARTED

    client.force_login(bob)
    client.get("/api/v1/builds/")
    session = client.session
    session[SESSION_STARTED] = session[SESSION_SEEN] = 0
    session.save()

    response = client.get("/api/v1/builds/")

    assert response.status_code == 401 and response["WWW-Authenticate"] == 'Bearer realm="goldsmith"'
    assert error_of(response)["code"] == "not_authenticated"
