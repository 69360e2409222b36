"""Pytest plugin: Azurite (the storage emulator holding build logs) and an emulator wired to it.

`azurite` (session) starts `node_modules/.bin/azurite-blob` over HTTPS with OAuth through
emulator/storage/azurite.py, the helper runall uses too. Without Node or Azurite (`make install`
installs it from package-lock.json) the tests that need it are skipped with the reason, unless
GOLDSMITH_REQUIRE_AZURITE=1 (CI), which makes that a failure.

`staging_emulator` (session) is an emulator process of its own started with `--azurite`, so its
image templates get staging storage accounts and their runs write logs into Azurite; the
function-scoped `storage_emulator` resets it before each test like `emulator` does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from emulator.storage.azurite import NOT_INSTALLED, Azurite, find_binary
from tests.support.emulator import DEFAULT_TIME_SCALE, EmulatorHandle, EmulatorProcess


@pytest.fixture(scope="session")
def azurite(tmp_path_factory) -> Iterator[Azurite]:
    """A running Azurite whose certificate is signed by the staging emulator's CA."""
    if find_binary() is None:
        message = f"{NOT_INSTALLED} (node_modules/.bin/azurite-blob and node are needed; run `make install`)"
        if os.environ.get("GOLDSMITH_REQUIRE_AZURITE") == "1":
            pytest.fail(message + "; GOLDSMITH_REQUIRE_AZURITE=1 requires it", pytrace=False)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("azurite")
    process = Azurite(root / "azurite", root / "emulator").start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def staging_emulator(azurite: Azurite) -> Iterator[EmulatorHandle]:
    """An emulator that reports staging storage accounts and writes build logs into `azurite`."""
    process = EmulatorProcess(azurite.ca_folder, time_scale=DEFAULT_TIME_SCALE,
                              extra_args=tuple(azurite.emulator_args())).start()
    try:
        yield EmulatorHandle(process.base_url, process.ca_path, process, DEFAULT_TIME_SCALE)
    finally:
        process.stop()


@pytest.fixture
def storage_emulator(staging_emulator: EmulatorHandle) -> EmulatorHandle:
    """The staging emulator reset to the seed, answering LROs with Retry-After 0."""
    staging_emulator.reset()
    staging_emulator.settings(retry_after=0)
    return staging_emulator


@pytest.fixture
def azure_storage(storage_emulator: EmulatorHandle) -> Iterator[EmulatorHandle]:
    """`azure_emulator` for the staging emulator: Goldsmith's Azure settings point at the emulator
    that writes logs into Azurite (the test identities created and granted), so builds.azure
    finds and reads the logs the way it does on Azure."""
    from django.test import override_settings

    from builds import azure
    from tests.support.workers import WORKER_PRINCIPAL_ID, flush_redis, provision_identities

    flush_redis()
    provision_identities(storage_emulator)
    with override_settings(AZURE_ARM_ENDPOINT=storage_emulator.base_url, AZURE_AUTHORITY_HOST=storage_emulator.base_url,
                           AZURE_CA_BUNDLE=str(storage_emulator.ca_path), AZURE_EMULATOR=True,
                           AZURE_POLLING_INTERVAL=0, AZURE_CLIENT_ID="goldsmith-worker",
                           AZURE_CLIENT_SECRET="emulator-secret", AZURE_PRINCIPAL_ID=WORKER_PRINCIPAL_ID,
                           BUILD_LOG_CONTAINER_URL=""):
        azure.reset_clients()
        azure.lookup_cache_clear()
        try:
            yield storage_emulator
        finally:
            azure.reset_clients()
            azure.lookup_cache_clear()
    flush_redis()
