"""The request id: taken from X-Request-ID only when the trusted proxy sends it, made up otherwise.

The id is stored with every audit event of the request and printed in every log line, so a
client that could choose it could make its requests look like somebody else's.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.urls import reverse

from portal.models import AuditEvent

PROXY = "10.0.0.5"
CHOSEN = "chosen-by-the-caller-42"


def failed_sign_in(client, **extra):
    """One request that writes one audit event (auth.login_failed)."""
    return client.post(reverse("portal:login"), {"username": "nobody", "password": "wrong"},
                       headers={"X-Request-ID": CHOSEN}, **extra)


def stored_request_id() -> str:
    return AuditEvent.objects.get(action="auth.login_failed").request_id


def test_it_ignores_the_header_from_a_client_that_is_not_the_proxy(client, db, settings):
    settings.TRUSTED_PROXIES = [PROXY]

    response = failed_sign_in(client, REMOTE_ADDR="203.0.113.9")

    assert response["X-Request-ID"] != CHOSEN
    assert stored_request_id() == response["X-Request-ID"]
    assert len(stored_request_id()) == 32  # one the portal made


def test_it_ignores_the_header_when_no_proxy_is_trusted(client, db, settings):
    settings.TRUSTED_PROXIES = []

    response = failed_sign_in(client, REMOTE_ADDR=PROXY)

    assert response["X-Request-ID"] != CHOSEN
    assert stored_request_id() != CHOSEN


@pytest.mark.parametrize("trusted", [[PROXY], ["10.0.0.0/24"], ["192.0.2.1", PROXY]])
def test_it_takes_the_header_from_the_trusted_proxy(client, db, settings, trusted):
    settings.TRUSTED_PROXIES = trusted

    response = failed_sign_in(client, REMOTE_ADDR=PROXY)

    assert response["X-Request-ID"] == CHOSEN
    assert stored_request_id() == CHOSEN


def test_a_malformed_id_from_the_proxy_is_replaced(client, db, settings):
    settings.TRUSTED_PROXIES = [PROXY]

    response = client.post(reverse("portal:login"), {"username": "nobody", "password": "wrong"},
                           headers={"X-Request-ID": "two words"}, REMOTE_ADDR=PROXY)

    assert response["X-Request-ID"] != "two words"
    assert stored_request_id() == response["X-Request-ID"]


def test_a_bad_trusted_proxies_value_stops_the_start():
    environment = {**os.environ, "TRUSTED_PROXIES": "10.0.0.5,proxy.example"}
    result = subprocess.run([sys.executable, "-c", "import portal.settings"], env=environment,
                            capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode != 0
    assert "ImproperlyConfigured: TRUSTED_PROXIES: 'proxy.example' is not an IP address" in result.stderr
