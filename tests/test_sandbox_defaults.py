"""With nothing configured, every `manage.py` command reaches the sandbox `make run` starts;
with Azure configured, nothing falls back to it; a sandbox without its emulator says so at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builds import azure

BASE_DIR = Path(__file__).resolve().parent.parent
SHOW = ("import json; from django.conf import settings as s; print(json.dumps({n: getattr(s, n) for n in "
        "('AZURE_ARM_ENDPOINT', 'AZURE_AUTHORITY_HOST', 'AZURE_CA_BUNDLE', 'AZURE_EMULATOR', 'REDIS_URL')}))")


def settings_of_a_second_shell(tmp_path: Path, **variables: str) -> dict:
    """The Azure settings a `manage.py` command sees in a shell with only `variables` set."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AZURE_", "REDIS_URL", "GOLDSMITH_", "ALLOWED_HOSTS", "DEBUG"))}
    env.update(GOLDSMITH_VAR_DIR=str(tmp_path), **variables)
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", SHOW], cwd=BASE_DIR, env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_it_points_an_unconfigured_command_at_the_sandbox(tmp_path):
    (tmp_path / "emulator").mkdir()
    (tmp_path / "emulator" / "ca.pem").write_text("written by the emulator")
    seen = settings_of_a_second_shell(tmp_path)
    assert seen == {
        "AZURE_ARM_ENDPOINT": "https://127.0.0.1:8443",
        "AZURE_AUTHORITY_HOST": "https://127.0.0.1:8443",
        "AZURE_CA_BUNDLE": str(tmp_path / "emulator" / "ca.pem"),
        "AZURE_EMULATOR": True,
        "REDIS_URL": f"unix://{tmp_path / 'redis.sock'}",
    }


def test_it_follows_the_emulator_port(tmp_path):
    seen = settings_of_a_second_shell(tmp_path, GOLDSMITH_EMULATOR_PORT="18443")
    assert seen["AZURE_ARM_ENDPOINT"] == "https://127.0.0.1:18443"
    assert seen["AZURE_CA_BUNDLE"] == ""  # the emulator has not written its CA yet


@pytest.mark.parametrize("variable", ["AZURE_SUBSCRIPTION_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID"])
def test_it_never_falls_back_to_the_emulator_once_azure_is_configured(tmp_path, variable):
    (tmp_path / "emulator").mkdir()
    (tmp_path / "emulator" / "ca.pem").write_text("written by the emulator")
    seen = settings_of_a_second_shell(tmp_path, **{variable: "from-the-operator"})
    assert seen["AZURE_ARM_ENDPOINT"] == "https://management.azure.com"
    assert seen["AZURE_AUTHORITY_HOST"] == "https://login.microsoftonline.com"
    assert seen["AZURE_CA_BUNDLE"] == ""
    assert seen["AZURE_EMULATOR"] is False


def test_it_says_at_once_that_the_emulator_is_not_running(settings):
    settings.AZURE_EMULATOR = True
    settings.AZURE_ARM_ENDPOINT = settings.AZURE_AUTHORITY_HOST = "https://127.0.0.1:9"
    azure.reset_clients()
    azure.lookup_cache_clear()
    started = time.monotonic()
    try:
        with pytest.raises(azure.AzureError) as raised:
            azure.list_publishers("eastus")
    finally:
        azure.reset_clients()
    assert raised.value.code == "EmulatorNotRunning"
    assert raised.value.message == ("the Azure emulator is not running at https://127.0.0.1:9: "
                                    "start it with make run")
    assert raised.value.permanent is False
    assert time.monotonic() - started < 2
