"""Pytest plugin: the real Azure CLI (pinned) signed in to the session emulator.

azure-cli pins its own azure-* versions, which conflict with Goldsmith's, so it lives in a
virtual environment of its own, built once and cached under $GOLDSMITH_AZCLI_CACHE (default
~/.cache/goldsmith) as azcli-<version>. When it cannot be built (no network) the tests that need
it skip with the reason, unless GOLDSMITH_REQUIRE_AZCLI=1 (CI), which turns that into a failure.

`azcli` (module-scoped) is one signed-in configuration: a private AZURE_CONFIG_DIR where the
emulator is registered as a cloud (`az cloud register`, endpoint discovery through
/metadata/endpoints), instance discovery is off, and the seeded worker principal is signed in.
Each `az` call costs one to two seconds, so a module shares it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.emulator import TENANT_ID, WORKER_CLIENT_ID, WORKER_SECRET, EmulatorHandle

AZCLI_VERSION = "2.91.0"
CLOUD = "GoldsmithEmulator"
BUILD_TIMEOUT = 900  # seconds: pip resolves and installs about 150 packages


def cache_dir() -> Path:
    return Path(os.environ.get("GOLDSMITH_AZCLI_CACHE") or Path.home() / ".cache" / "goldsmith")


def _unavailable(reason: str) -> None:
    message = f"the Azure CLI {AZCLI_VERSION} is not available: {reason}"
    if os.environ.get("GOLDSMITH_REQUIRE_AZCLI") == "1":
        pytest.fail(message + " (GOLDSMITH_REQUIRE_AZCLI=1)", pytrace=False)
    pytest.skip(message)


def find_or_build() -> Path:
    """The `az` executable of the cached venv, building the venv first when it is missing."""
    venv = cache_dir() / f"azcli-{AZCLI_VERSION}"
    az = venv / "bin" / "az"
    if az.exists() and _works(az):
        return az
    try:
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True,
                       timeout=120)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        f"azure-cli=={AZCLI_VERSION}"], check=True, capture_output=True, text=True,
                       timeout=BUILD_TIMEOUT)
    except subprocess.CalledProcessError as error:
        _unavailable(f"building {venv} failed: {(error.stderr or '').strip()[-500:] or error}")
    except (OSError, subprocess.TimeoutExpired) as error:
        _unavailable(f"building {venv} failed: {error}")
    if not _works(az):
        _unavailable(f"{az} does not run after the build")
    return az


def _works(az: Path) -> bool:
    try:
        answer = subprocess.run([str(az), "version", "-o", "json"], capture_output=True, text=True, timeout=120,
                                env=_base_env(az.parent.parent / "probe-config"))
    except (OSError, subprocess.TimeoutExpired):
        return False
    return answer.returncode == 0 and f'"azure-cli": "{AZCLI_VERSION}"' in answer.stdout


def _base_env(config_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AZURE_", "REQUESTS_CA", "CURL_CA"))}
    env.update(AZURE_CONFIG_DIR=str(config_dir), AZURE_CORE_COLLECT_TELEMETRY="0", AZURE_CORE_NO_COLOR="1",
               AZURE_CORE_SURVEY_MESSAGE="0", AZURE_CORE_DISABLE_PROGRESS_BAR="1")
    return env


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


class AzCli:
    """`az` with its own configuration folder, trusting the emulator's CA."""

    def __init__(self, az: Path, config_dir: Path, emulator: EmulatorHandle):
        self.executable = az
        self.emulator = emulator
        self.env = _base_env(config_dir)
        # The CLI (requests) reads the CA from here; every call goes to the emulator.
        self.env["REQUESTS_CA_BUNDLE"] = str(emulator.ca_path)

    def run(self, *args: str, expect: int | None = 0, timeout: float = 120) -> Result:
        """Run `az ARGS` (JSON output unless -o is given); AssertionError when the exit code differs."""
        command = [str(self.executable), *args]
        if "-o" not in args and "--output" not in args:
            command += ["-o", "json"]
        answer = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=self.env)
        result = Result(answer.returncode, answer.stdout, answer.stderr)
        if expect is not None:
            assert result.returncode == expect, (f"az {' '.join(args)} exited {result.returncode}:\n"
                                                 f"{result.stderr[-2000:]}")
        return result

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start `az ARGS` without waiting (for commands with no --no-wait that a test must overtake)."""
        return subprocess.Popen([str(self.executable), *args, "-o", "json"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env)

    def __call__(self, *args: str, **kwargs: Any) -> Any:
        """Run and return the parsed JSON output (None when there is none)."""
        result = self.run(*args, **kwargs)
        return result.json if result.stdout.strip() else None

    def sign_in(self) -> None:
        self.run("cloud", "register", "-n", CLOUD, "--endpoint-resource-manager", f"{self.emulator.base_url}/",
                 "-o", "none")
        self.run("cloud", "set", "-n", CLOUD, "-o", "none")
        self.run("config", "set", "core.instance_discovery=false", "-o", "none")
        self.run("login", "--service-principal", "-u", WORKER_CLIENT_ID, "-p", WORKER_SECRET, "--tenant", TENANT_ID,
                 "-o", "none")


@pytest.fixture(scope="session")
def azcli_executable() -> Path:
    return find_or_build()


@pytest.fixture(scope="module")
def azcli(azcli_executable, emulator_process, tmp_path_factory) -> Iterator[AzCli]:
    """The CLI signed in to the session emulator as the seeded worker, one config per module."""
    cli = AzCli(azcli_executable, tmp_path_factory.mktemp("azure-config"), emulator_process)
    cli.sign_in()
    yield cli
