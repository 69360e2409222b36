"""GET /healthz against the real database and Redis, and against a Redis that is not there."""

from __future__ import annotations

import json
import os

import pytest
from django.test import override_settings
from django.urls import reverse

pytestmark = pytest.mark.django_db


def dead_redis_url(tmp_path) -> str:
    # A socket path nobody listens on: connecting fails at once, no network involved.
    return f"unix://{tmp_path / 'nobody-here.sock'}"


def test_it_reports_ok_when_database_and_redis_answer(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["redis"]["ok"] is True
    assert response["Cache-Control"].startswith("max-age=0")


def test_it_is_named_healthz():
    assert reverse("healthz") == "/healthz"


def test_it_reports_degraded_with_503_when_redis_is_down(client, tmp_path):
    with override_settings(REDIS_URL=dead_redis_url(tmp_path)):
        response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] is True
    assert body["redis"] == {"ok": False, "error": "ConnectionError"}


def test_it_reveals_no_address_or_secret(client, tmp_path):
    url = dead_redis_url(tmp_path)
    with override_settings(REDIS_URL=url):
        text = client.get("/healthz").content.decode()

    assert str(tmp_path) not in text
    assert "sock" not in text
    assert os.environ["REDIS_URL"] not in text
    assert set(json.loads(text)) == {"status", "database", "redis"}


def test_it_needs_no_sign_in_and_answers_any_host_over_http(client):
    # A deployed portal: strict hosts and the HTTPS redirect, as a container probe meets them.
    with override_settings(ALLOWED_HOSTS=["portal.example.com"], SECURE_SSL_REDIRECT=True):
        probe = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")
        page = client.get("/admin/", HTTP_HOST="10.1.2.3:8000")

    assert probe.status_code == 200
    assert page.status_code == 400  # everything else is still refused


def test_it_refuses_writes(client):
    assert client.post("/healthz").status_code == 405
