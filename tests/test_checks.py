"""The goldsmith.* system checks: each fires on its misconfiguration and stays quiet otherwise."""

from __future__ import annotations

import pytest
from django.core import checks as django_checks
from django.test import override_settings

from portal import checks

# The checks only read DATABASES; the open connections are not touched by overriding it.
pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES:UserWarning")

SQLITE = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "x.sqlite3"}}
POSTGRES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "goldsmith"}}
IDENTITY = ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/"
            "userAssignedIdentities/goldsmith-aib")
# A correctly configured real-Azure deployment: no check may fire on it.
GOOD_DEPLOYMENT = {
    "DEBUG": False,
    "DEPLOYED": True,
    "ALLOWED_HOSTS": ["portal.example.com"],
    "DATABASES": POSTGRES,
    "REDIS_URL": "redis://cache:6379/0",
    "AZURE_ARM_ENDPOINT": "https://management.azure.com",
    "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com",
    "AZURE_EMULATOR": False,
    "AZURE_CA_BUNDLE": "",
    "AZURE_CLIENT_SECRET": "a-real-secret",
    "AZURE_TENANT_ID": "0b6c2c69-54a4-4e2c-9a7e-6f1f4b0c1e11",
    "AZURE_SUBSCRIPTION_ID": "5f0c2d2e-7c5d-4b8e-9a61-2f3a9b8c7d6e",
    "AZURE_TEMPLATE_IDENTITY": IDENTITY,
    "NOTIFY_BASE_URL": "https://portal.example.com",
}


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def run_goldsmith_checks() -> list[str]:
    return ids(django_checks.run_checks(tags=[checks.TAG]))


def test_it_registers_the_checks_and_passes_a_good_deployment():
    with override_settings(**GOOD_DEPLOYMENT):
        assert run_goldsmith_checks() == []


@pytest.mark.parametrize(
    ("debug", "hosts", "expected"),
    [
        (True, ["portal.example.com"], ["goldsmith.E001"]),
        (True, ["*"], ["goldsmith.E001"]),
        (True, ["localhost", "127.0.0.1", "[::1]", ".localhost", "testserver"], []),
        (False, ["portal.example.com"], []),
    ],
)
def test_it_flags_debug_with_public_hosts(debug, hosts, expected):
    with override_settings(DEBUG=debug, ALLOWED_HOSTS=hosts):
        assert ids(checks.check_debug_hosts()) == expected


def test_debug_hint_names_the_public_host():
    with override_settings(DEBUG=True, ALLOWED_HOSTS=["localhost", "portal.example.com"]):
        (error,) = checks.check_debug_hosts()
    assert "portal.example.com" in error.msg
    assert "localhost" not in error.msg
    assert error.hint


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"AZURE_ARM_ENDPOINT": "https://127.0.0.1:8443"}, ["goldsmith.E002"]),
        ({"AZURE_AUTHORITY_HOST": "https://localhost:8443"}, ["goldsmith.E002"]),
        ({"AZURE_ARM_ENDPOINT": "https://[::1]:8443"}, ["goldsmith.E002"]),
        ({"AZURE_ARM_ENDPOINT": "https://emulator:8443"}, ["goldsmith.E002"]),
        ({"AZURE_EMULATOR": True}, ["goldsmith.E002"]),
        ({"DEPLOYED": False, "AZURE_ARM_ENDPOINT": "https://127.0.0.1:8443", "AZURE_EMULATOR": True}, []),
        ({}, []),
    ],
)
def test_it_flags_a_deployment_that_talks_to_the_emulator(overrides, expected):
    with override_settings(**{**GOOD_DEPLOYMENT, **overrides}):
        assert ids(checks.check_deployed_against_emulator()) == expected


def test_it_warns_when_the_ca_bundle_is_missing(tmp_path):
    with override_settings(AZURE_CA_BUNDLE=str(tmp_path / "missing.pem")):
        assert ids(checks.check_ca_bundle()) == ["goldsmith.W003"]
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    with override_settings(AZURE_CA_BUNDLE=str(bundle)):
        assert checks.check_ca_bundle() == []
    with override_settings(AZURE_CA_BUNDLE=""):
        assert checks.check_ca_bundle() == []


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://management.azure.com", ["goldsmith.E004"]),
        ("management.azure.com", ["goldsmith.E004"]),
        ("https://management.azure.com", []),
        ("https://127.0.0.1:8443", []),
    ],
)
def test_it_requires_https_for_arm(endpoint, expected):
    with override_settings(AZURE_ARM_ENDPOINT=endpoint):
        assert ids(checks.check_arm_endpoint_https()) == expected


@pytest.mark.parametrize(
    ("deployed", "databases", "expected"),
    [
        (True, SQLITE, ["goldsmith.W005"]),
        (True, POSTGRES, []),
        (False, SQLITE, []),
    ],
)
def test_it_warns_about_sqlite_when_deployed(deployed, databases, expected):
    with override_settings(DEPLOYED=deployed, DATABASES=databases):
        assert ids(checks.check_deployed_database()) == expected


@pytest.mark.parametrize(
    ("deployed", "secret", "expected"),
    [
        (True, "emulator-secret", ["goldsmith.W006"]),
        (True, "a-real-secret", []),
        (False, "emulator-secret", []),
    ],
)
def test_it_warns_about_the_placeholder_client_secret(deployed, secret, expected):
    with override_settings(DEPLOYED=deployed, AZURE_CLIENT_SECRET=secret):
        assert ids(checks.check_deployed_client_secret()) == expected


@pytest.mark.parametrize(
    ("authority", "expected"),
    [("http://login.microsoftonline.com", ["goldsmith.E007"]), ("https://login.microsoftonline.com", [])],
)
def test_it_requires_https_for_the_authority(authority, expected):
    with override_settings(AZURE_AUTHORITY_HOST=authority):
        assert ids(checks.check_authority_https()) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://cache:6379/0", []),
        ("rediss://cache:6380/0", []),
        ("unix:///srv/goldsmith/var/redis.sock", []),
        ("http://cache:6379", ["goldsmith.E008"]),
        ("cache:6379", ["goldsmith.E008"]),
    ],
)
def test_it_checks_the_redis_url_scheme(url, expected):
    with override_settings(REDIS_URL=url):
        assert ids(checks.check_redis_url()) == expected


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"AZURE_TENANT_ID": checks.EMULATOR_TENANT_ID}, ["goldsmith.W009"]),
        ({"AZURE_SUBSCRIPTION_ID": checks.EMULATOR_SUBSCRIPTION_ID}, ["goldsmith.W009"]),
        ({"DEPLOYED": False, "AZURE_TENANT_ID": checks.EMULATOR_TENANT_ID}, []),
        ({}, []),
    ],
)
def test_it_warns_about_placeholder_azure_ids_when_deployed(overrides, expected):
    with override_settings(**{**GOOD_DEPLOYMENT, **overrides}):
        assert ids(checks.check_deployed_azure_ids()) == expected


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        (IDENTITY, []),
        (IDENTITY.lower(), []),
        ("goldsmith-aib", ["goldsmith.E010"]),
        ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/x", ["goldsmith.E010"]),
    ],
)
def test_it_checks_the_template_identity(identity, expected):
    with override_settings(AZURE_TEMPLATE_IDENTITY=identity):
        assert ids(checks.check_template_identity()) == expected


def test_the_embedded_defaults_pass_every_check():
    # `make run` with nothing configured must start without a single complaint.
    assert run_goldsmith_checks() == []


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True), ("LOCALHOST.", True), ("app.localhost", True), ("127.0.0.1", True),
        ("127.8.9.1", True), ("127.0.0.1:8000", True), ("::1", True), ("[::1]", True), ("[::1]:8000", True),
        ("*", False), ("10.0.0.5", False), ("portal.example.com", False), ("localhost.example.com", False),
        (".example.com", False), ("0.0.0.0", False),
    ],
)
def test_loopback_hosts(host, loopback):
    assert checks.is_loopback_host(host) is loopback


def test_fault_points_in_a_deployed_portal_are_an_error(monkeypatch, settings):
    from builds import checks

    settings.DEPLOYED = True
    monkeypatch.setenv("GOLDSMITH_FAULT_POINTS", "submit.claimed:horse")
    assert [e.id for e in checks.check_fault_points()] == ["goldsmith.E011"]
    monkeypatch.delenv("GOLDSMITH_FAULT_POINTS")
    assert checks.check_fault_points() == []


@pytest.mark.parametrize(
    ("deployed", "base_url", "expected"),
    [
        (True, "https://portal.example.com", []),
        (True, "http://127.0.0.1:8000", ["goldsmith.E030"]),  # the sandbox default
        (True, "https://localhost", ["goldsmith.E030"]),
        (True, "", ["goldsmith.E030"]),
        (True, "portal.example.com", ["goldsmith.E030"]),  # no scheme: links would be relative
        (False, "http://127.0.0.1:8000", []),
    ],
)
def test_a_deployed_portal_needs_its_public_address_for_links_in_messages(deployed, base_url, expected):
    from notify import checks as notify_checks

    with override_settings(DEPLOYED=deployed, NOTIFY_BASE_URL=base_url):
        assert ids(notify_checks.check_base_url()) == expected
