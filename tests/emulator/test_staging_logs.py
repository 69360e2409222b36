"""Staging storage and build logs in Azurite, read the way the portal reads them on Azure: list
the storage accounts of the template's staging group, take `primaryEndpoints.blob`, open
container `packerlogs` with azure-storage-blob and an azure-identity credential from the
emulator's Entra, and read `<runFolder>/customization.log` by byte range.

Needs Node and Azurite (`make install`); skipped without them unless GOLDSMITH_REQUIRE_AZURITE=1.
"""

from __future__ import annotations

import re

import jwt
import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from tests.support.aib import shell, template_body
from tests.support.emulator import ARM_SCOPE, RESOURCE_GROUP, SUBSCRIPTION_ID

RG = RESOURCE_GROUP
STORAGE_API = "2024-01-01"
BEFORE_CUSTOMIZING = 60 + 300  # Queued and Building, simulated seconds
DONE = "Done exporting Packer logs to Azure Storage."


@pytest.fixture
def templates(storage_emulator):
    return storage_emulator.imagebuilder_client().virtual_machine_image_templates


def create(templates, name: str = "web", **body):
    templates.begin_create_or_update(RG, name, template_body(**body)).result()
    return templates.get(RG, name)


def staging_accounts(emulator, template) -> list[dict]:
    """GET …/resourceGroups/<staging>/providers/Microsoft.Storage/storageAccounts, as ARM answers it."""
    token = emulator.credential().get_token(ARM_SCOPE).token
    url = (f"{emulator.base_url}/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/"
           f"{template.exact_staging_resource_group.rsplit('/', 1)[1]}/providers/Microsoft.Storage/storageAccounts")
    response = requests.get(url, params={"api-version": STORAGE_API}, headers={"Authorization": f"Bearer {token}"},
                            verify=str(emulator.ca_path), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["value"]


def logs_container(emulator, template):
    """The packerlogs container of the staging account, through azure-storage-blob and the worker's credential."""
    [account] = staging_accounts(emulator, template)
    service = BlobServiceClient(account["properties"]["primaryEndpoints"]["blob"], credential=emulator.credential(),
                                connection_verify=str(emulator.ca_path))
    return service.get_container_client("packerlogs")


def run_folder(container) -> str:
    [name] = [blob.name for blob in container.list_blobs() if blob.name.endswith("/customization.log")]
    return name.split("/", 1)[0]


def blob_names(emulator, container, count: int) -> list[str]:
    """The container's blob names once there are `count` of them: with the clock running, the
    emulator's writer copies a finished run's last lines within half a second (wall clock)."""
    return emulator.wait_for(lambda: (names := sorted(blob.name for blob in container.list_blobs()))
                             and len(names) == count and names, timeout=10)


def test_a_run_shows_one_storage_account_in_the_staging_group_pointing_at_azurite(storage_emulator, templates,
                                                                                   azurite):
    template = create(templates)
    assert staging_accounts(storage_emulator, template) == []  # Azure creates it when the build starts

    templates.begin_run(RG, "web", polling=False)

    [account] = staging_accounts(storage_emulator, template)
    assert re.fullmatch(r"[a-z0-9]{24}", account["name"])
    assert account["type"] == "Microsoft.Storage/storageAccounts"
    assert account["id"].lower().startswith(template.exact_staging_resource_group.lower() + "/providers/")
    assert account["properties"]["primaryEndpoints"]["blob"] == f"{azurite.url}/{account['name']}/"
    assert account["properties"]["provisioningState"] == "Succeeded"


def test_the_log_grows_in_azurite_as_the_clock_moves_and_range_reads_return_only_new_bytes(storage_emulator,
                                                                                          templates):
    template = create(templates, customize=[shell("first", "echo one"), shell("second", "echo two")])
    storage_emulator.freeze()
    templates.begin_run(RG, "web", polling=False)
    storage_emulator.advance_simulated(BEFORE_CUSTOMIZING + 60)  # inside the first customizer
    container = logs_container(storage_emulator, template)
    blob = container.get_blob_client(f"{run_folder(container)}/customization.log")

    first = blob.download_blob().readall()
    storage_emulator.advance_simulated(120)  # inside the second customizer
    size = blob.get_blob_properties().size
    new = blob.download_blob(offset=len(first), length=size - len(first)).readall()

    assert first.count(b"Starting provisioner shell") == 1
    assert new.count(b"Starting provisioner shell") == 1
    assert b"Starting provisioner shell" not in new.split(b"ending shell")[0].split(b"\n", 1)[0]
    assert blob.download_blob().readall() == first + new
    assert DONE.encode() not in first + new

    storage_emulator.advance_simulated(5000)
    assert blob.download_blob().readall().decode().rstrip().endswith(DONE)


def test_a_failed_build_names_the_log_blob_in_azurite_and_the_validation_log_sits_next_to_it(storage_emulator,
                                                                                             templates):
    template = create(templates, customize=[shell("ok", "echo fine")],
                      validate={"inVMValidations": [shell("check", "exit 4")]})

    with pytest.raises(HttpResponseError) as caught:
        templates.begin_run(RG, "web").result()

    assert caught.value.error.code == "PackerBuildFailed"
    container = logs_container(storage_emulator, template)
    names = blob_names(storage_emulator, container, 2)
    folder = run_folder(container)
    assert names == [f"{folder}/customization.log", f"{folder}/validation.log"]
    validation = container.get_blob_client(f"{folder}/validation.log")
    text = storage_emulator.wait_for(lambda: (text := validation.download_blob().readall().decode())
                                     and DONE in text and text, timeout=10)
    assert "exited with code: 4" in text


def test_a_customizer_failure_message_points_at_the_blob_in_the_staging_account(storage_emulator, templates,
                                                                                 azurite):
    template = create(templates, customize=[shell("broken", "exit 2")])

    with pytest.raises(HttpResponseError):
        templates.begin_run(RG, "web").result()

    message = templates.get(RG, "web").last_run_status.message
    [account] = staging_accounts(storage_emulator, template)
    folder = run_folder(logs_container(storage_emulator, template))
    assert f"Image Build log location: {azurite.url}/{account['name']}/packerlogs/{folder}/customization.log." in message


def test_deleting_the_template_deletes_its_logs_with_the_staging_group(storage_emulator, templates):
    template = create(templates)
    templates.begin_run(RG, "web").result()
    container = logs_container(storage_emulator, template)
    blob_names(storage_emulator, container, 1)

    templates.begin_delete(RG, "web").result()

    with pytest.raises(ResourceNotFoundError):
        list(container.list_blobs())


def test_the_emulator_entra_issues_storage_tokens_azurite_accepts(storage_emulator):
    token = storage_emulator.credential().get_token("https://storage.azure.com/.default").token
    claims = jwt.decode(token, options={"verify_signature": False})

    assert claims["aud"] == "https://storage.azure.com"
    assert claims["iss"].startswith("https://sts.windows.net/")
    assert {"nbf", "iat", "exp"} <= set(claims)


def test_without_azurite_no_staging_account_is_reported(emulator):
    client = emulator.imagebuilder_client().virtual_machine_image_templates
    template = create(client)
    client.begin_run(RG, "web").result()

    assert staging_accounts(emulator, template) == []
