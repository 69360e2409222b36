"""Every published Image Builder api-version (issue 16, point 1), through azure-mgmt-imagebuilder's
`api_version` argument: each version's schema, case and strictness rules, and response shape."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from tests.support.aib import template_body
from tests.support.emulator import LOCATION, RESOURCE_GROUP, SUBSCRIPTION_ID

RG = RESOURCE_GROUP
OLDER = ["2022-07-01", "2021-10-01"]
T = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RG}/providers/Microsoft.VirtualMachineImages/imageTemplates/"


@pytest.mark.parametrize("version", OLDER)
def test_the_whole_lifecycle_works_at_an_older_api_version(fast_emulator, version):
    templates = fast_emulator.imagebuilder_client(api_version=version).virtual_machine_image_templates

    created = templates.begin_create_or_update(RG, "web", template_body()).result()
    assert created.provisioning_state == "Succeeded"
    templates.begin_run(RG, "web").result()
    assert templates.get(RG, "web").last_run_status.run_state == "Succeeded"
    assert [output.name for output in templates.list_run_outputs(RG, "web")] == ["vhd"]
    assert [t.name for t in templates.list_by_resource_group(RG)] == ["web"]
    templates.begin_delete(RG, "web").result()
    assert list(templates.list_by_resource_group(RG)) == []


@pytest.mark.parametrize(("version", "field", "since"), [
    ("2022-07-01", {"autoRun": {"state": "Enabled"}}, "2024-02-01"),
    ("2022-07-01", {"errorHandling": {"onCustomizerError": "abort"}}, "2023-07-01"),
    ("2021-10-01", {"optimize": {"vmBoot": {"state": "Enabled"}}}, "2022-07-01"),
])
def test_a_field_from_a_later_version_is_refused(emulator, version, field, since):
    client = emulator.imagebuilder_client(api_version=version)
    name = next(iter(field))

    response = client.send_request(HttpRequest("PUT", f"{T}web?api-version={version}",
                                               json=template_body(**field)))

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(
        f"Validation failed: 'ImageTemplate.properties': Field '{name}' is not supported in api-version "
        f"'{version}'; it was introduced in api-version '{since}'.")


def test_a_field_from_a_later_version_is_an_unknown_field_in_a_strict_version(emulator):
    client = emulator.imagebuilder_client(api_version="2024-02-01")

    response = client.send_request(HttpRequest("PUT", f"{T}web?api-version=2024-02-01",
                                               json=template_body(additionalDataDisks=[{"sizeGB": 10}])))

    assert response.status_code == 400
    assert "unmarshalling type *v2024_02_01.ImageTemplate: struct field Properties: unknown field " \
           "\"additionalDataDisks\"" in response.json()["error"]["message"]


def test_versions_before_2024_02_01_ignore_case_and_unknown_fields(emulator):
    client = emulator.imagebuilder_client(api_version="2022-07-01")
    body = template_body(optimize={"VMBOOT": {"state": "Enabled"}}, madeUp=True)
    body["Tags"] = body.pop("tags")

    created = client.send_request(HttpRequest("PUT", f"{T}web?api-version=2022-07-01", json=body))

    assert created.status_code == 201, created.text()
    shown = created.json()
    assert shown["properties"]["optimize"] == {"vmBoot": {"state": "Enabled"}}
    assert shown["tags"] == {"owner": "tests"}
    assert "madeUp" not in shown["properties"]
    strict = client.send_request(HttpRequest("PUT", f"{T}other?api-version=2024-02-01", json=body))
    assert strict.status_code == 400 and "unknown field" in strict.json()["error"]["message"]


def test_responses_are_shaped_for_the_version_asked(emulator):
    latest = emulator.imagebuilder_client()
    latest.virtual_machine_image_templates.begin_create_or_update(
        RG, "web", template_body(autoRun={"state": "Disabled"})).result()

    def fetch(version: str) -> dict:
        return latest.send_request(HttpRequest("GET", f"{T}web?api-version={version}")).json()

    assert fetch("2025-10-01")["properties"]["autoRun"] == {"state": "Disabled"}
    assert "autoRun" not in fetch("2023-07-01")["properties"]
    assert "exactStagingResourceGroup" in fetch("2022-02-14")["properties"]
    old = fetch("2021-10-01")
    assert "exactStagingResourceGroup" not in old["properties"] and "systemData" in old
    assert "systemData" not in fetch("2020-02-14")


def test_patch_changes_distribute_only_from_2023_07_01(emulator):
    latest = emulator.imagebuilder_client()
    latest.virtual_machine_image_templates.begin_create_or_update(RG, "web", template_body()).result()
    patch = {"properties": {"distribute": [{"type": "VHD", "runOutputName": "vhd"}]}}

    old = latest.send_request(HttpRequest("PATCH", f"{T}web?api-version=2022-07-01", json=patch))
    newer = latest.send_request(HttpRequest("PATCH", f"{T}web?api-version=2023-07-01", json=patch))

    assert old.status_code == 400 and "introduced in api-version '2023-07-01'" in old.json()["error"]["message"]
    assert newer.status_code == 202


def test_triggers_exist_from_2022_07_01(emulator):
    client = emulator.imagebuilder_client(api_version="2022-02-14")
    client.virtual_machine_image_templates.begin_create_or_update(RG, "web", template_body()).result()

    response = client.send_request(HttpRequest("GET", f"{T}web/triggers?api-version=2022-02-14"))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "NoRegisteredProviderFound"
    assert "for type 'triggers'. The supported api-versions are '2025-10-01, 2024-02-01, 2023-07-01, " \
           "2022-07-01'." in error["message"]


def test_an_unpublished_api_version_gets_arms_no_registered_provider_found(emulator):
    client = emulator.imagebuilder_client(api_version="2019-05-01-preview")

    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_image_templates.begin_create_or_update(RG, "web", template_body()).result()

    assert caught.value.status_code == 400
    assert caught.value.error.code == "NoRegisteredProviderFound"
    message = caught.value.error.message
    assert message.startswith(f"No registered resource provider found for location '{LOCATION}' and API version "
                              "'2019-05-01-preview' for type 'imageTemplates'. The supported api-versions are "
                              "'2025-10-01, 2024-02-01, 2023-07-01, 2022-07-01, 2022-02-14, 2021-10-01, 2020-02-14'. "
                              "The supported locations are 'East US, ")
