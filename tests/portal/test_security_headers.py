"""Security by default: headers on every page, a clean `check --deploy`, sign-in configuration checks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings
from django.urls import reverse

from portal import checks_identity

BASE_DIR = Path(__file__).resolve().parents[2]
TEMPLATES = BASE_DIR / "templates"


def test_every_page_carries_a_strict_content_security_policy(client, db):
    response = client.get(reverse("portal:login"))

    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert policy["base-uri"] == "'self'"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]


def test_error_pages_and_redirects_carry_it_too(client, db):
    assert "Content-Security-Policy" in client.get("/no-such-page/")
    assert "Content-Security-Policy" in client.get(reverse("portal:home"))


def test_hsts_is_sent_over_https_when_enabled(client, db, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    assert "Strict-Transport-Security" not in client.get(reverse("portal:login"))
    response = client.get(reverse("portal:login"), secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def test_the_entra_login_host_may_receive_the_sign_out_redirect():
    from django.conf import settings

    if settings.ENTRA_ENABLED:
        assert settings.ENTRA_AUTHORITY_HOST in settings.CONTENT_SECURITY_POLICY["form-action"]


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
JS_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']\s*javascript:""", re.IGNORECASE)


@pytest.mark.parametrize("path", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_template_has_inline_script_or_event_handlers(path):
    """The CSP would block them in the browser; catching them here names the file."""
    text = path.read_text()
    assert not INLINE_SCRIPT.search(text), "inline <script>: move it to static/app.js"
    assert not EVENT_HANDLER.search(text), "inline event handler (on...=): bind it in static/app.js"
    assert not JS_URL.search(text), "javascript: URL"


# --- check --deploy --------------------------------------------------------------------------------

DEPLOYED_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "k8Jd2-pQ7vXz!mW4nR9sT1uY6bE3cF5gH0jL8aZ2xC7vB4nM1qW9eR6tY3uI0oP5",
    "ALLOWED_HOSTS": "goldsmith.example.com",
    "DATABASE_URL": "postgres://goldsmith@db.example.com:5432/goldsmith",
    "AZURE_TENANT_ID": "0c5d2a4e-7f1b-4d3e-9a8c-2b6f1e0d9c7a",
    "AZURE_SUBSCRIPTION_ID": "5e8f0a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
    "AZURE_CLIENT_SECRET": "a-real-secret-from-the-vault",
}


def run_check_deploy(extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AZURE_", "ENTRA_", "SECURE_", "SESSION_", "CSRF_", "DJANGO_"))
           and key not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "GOLDSMITH_FAULT_POINTS"}}
    env.update(DEPLOYED_ENV, **(extra or {}))
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_reports_no_issues_with_the_production_defaults():
    result = run_check_deploy()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_reports_no_issues_with_entra_sign_in_too():
    result = run_check_deploy({"ENTRA_CLIENT_ID": "8a7b6c5d-0000-4000-8000-000000000001",
                               "ENTRA_TENANT_ID": DEPLOYED_ENV["AZURE_TENANT_ID"],
                               "ENTRA_CLIENT_SECRET": "from-the-vault"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_turning_a_default_off_is_explicit_and_reported():
    result = run_check_deploy({"SECURE_SSL_REDIRECT": "0"})
    assert result.returncode != 0
    assert "security.W008" in result.stdout + result.stderr


# --- sign-in configuration checks -------------------------------------------------------------------


def ids(messages):
    return [message.id for message in messages]


def test_it_warns_about_half_configured_entra():
    with override_settings(ENTRA_CLIENT_ID="x", ENTRA_TENANT_ID="", ENTRA_CLIENT_SECRET=""):
        assert ids(checks_identity.check_entra_complete()) == ["goldsmith.W020"]
    with override_settings(ENTRA_CLIENT_ID="", ENTRA_TENANT_ID="", ENTRA_CLIENT_SECRET=""):
        assert ids(checks_identity.check_entra_complete()) == []


def test_it_wants_https_for_the_login_host():
    with override_settings(ENTRA_ENABLED=True, ENTRA_AUTHORITY_HOST="http://login.example"):
        assert ids(checks_identity.check_entra_authority_https()) == ["goldsmith.E021"]


@pytest.mark.parametrize(("host", "secret", "expected"), [
    ("https://127.0.0.1:8443", "real", ["goldsmith.E022"]),
    ("https://login.microsoftonline.com", "emulator-portal-secret", ["goldsmith.E022"]),
    ("https://login.microsoftonline.com", "real", []),
])
def test_a_deployment_must_not_sign_in_with_the_emulator(host, secret, expected):
    with override_settings(DEPLOYED=True, ENTRA_ENABLED=True, ENTRA_AUTHORITY_HOST=host, ENTRA_CLIENT_SECRET=secret):
        assert ids(checks_identity.check_deployed_entra_emulator()) == expected
