"""Image templates through azure-mgmt-imagebuilder 2.0.0: create, read, list, update, delete, and
the status codes and LRO headers each begin_* poller relies on (aib-reference §1)."""

from __future__ import annotations

import re

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.rest import HttpRequest
from azure.mgmt.imagebuilder import models as m

from tests.support.aib import IDENTITY_ID, Recorder, gallery_target, template_body
from tests.support.emulator import LOCATION, RESOURCE_GROUP, SUBSCRIPTION_ID

RG = RESOURCE_GROUP
TEMPLATES = "/providers/Microsoft.VirtualMachineImages/imageTemplates/"
OPERATION_URL = re.compile(r"^https://127\.0\.0\.1:\d+/subscriptions/[^/]+/providers/Microsoft\.VirtualMachineImages/"
                           r"locations/eastus/(operations|operationResults)/[0-9a-f-]{36}\?api-version=2025-10-01$")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(emulator, recorder):
    return emulator.imagebuilder_client(raw_response_hook=recorder)


def create(client, name: str = "web", body: dict | None = None) -> m.ImageTemplate:
    return client.virtual_machine_image_templates.begin_create_or_update(RG, name, body or template_body()).result()


def test_it_creates_a_template_with_201_and_an_async_operation(client, recorder):
    template = create(client)

    put = recorder.first("PUT")
    assert put.status == 201
    assert OPERATION_URL.match(put.headers["Azure-AsyncOperation"])
    assert "/operations/" in put.headers["Azure-AsyncOperation"]
    assert put.headers["Retry-After"].isdigit()
    polls = [e for e in recorder.exchanges if "/operations/" in e.url]
    assert polls and all(e.status == 200 for e in polls)
    assert recorder.exchanges[-1].method == "GET" and recorder.exchanges[-1].url.split("?")[0].endswith("/web")

    assert template.provisioning_state == "Succeeded"
    assert template.id == f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RG}{TEMPLATES}web"
    assert template.type == "Microsoft.VirtualMachineImages/imageTemplates"
    assert template.location == LOCATION
    assert template.tags == {"owner": "tests"}


def test_it_fills_read_only_fields_as_azure_does(client):
    template = create(client)

    staging = template.exact_staging_resource_group
    assert re.match(rf"^/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/IT_{RG}_web_[0-9a-f-]{{36}}$", staging)
    identity = template.identity.user_assigned_identities[IDENTITY_ID]
    assert re.match(r"^[0-9a-f-]{36}$", identity.principal_id)
    assert re.match(r"^[0-9a-f-]{36}$", identity.client_id)
    assert template.system_data.created_by == "goldsmith-worker"
    assert template.system_data.created_by_type == "Application"
    assert template.system_data.created_at is not None
    assert template.last_run_status is None  # no run yet


def test_the_template_is_creating_until_provisioning_ends(emulator, client):
    emulator.freeze()
    poller = client.virtual_machine_image_templates.begin_create_or_update(RG, "web", template_body())

    assert client.virtual_machine_image_templates.get(RG, "web").provisioning_state == "Creating"
    assert poller.status() == "InProgress"

    emulator.advance_simulated(30)
    assert poller.result().provisioning_state == "Succeeded"


def test_put_on_an_existing_name_is_a_conflict_with_azures_message(client):
    create(client)

    with pytest.raises(ResourceExistsError) as caught:
        client.virtual_machine_image_templates.begin_create_or_update(RG, "web", template_body())
    assert caught.value.error.code == "Conflict"
    assert caught.value.error.message.startswith("Update/Upgrade of image templates is currently not supported.")
    assert "you must delete it first and then resubmit" in caught.value.error.message


def test_put_into_a_missing_resource_group_is_resource_group_not_found(client):
    with pytest.raises(ResourceNotFoundError) as caught:
        client.virtual_machine_image_templates.begin_create_or_update("no-such-group", "web", template_body())
    assert caught.value.error.code == "ResourceGroupNotFound"
    assert caught.value.error.message == "Resource group 'no-such-group' could not be found."


def test_get_of_a_missing_template_is_resource_not_found(client):
    with pytest.raises(ResourceNotFoundError) as caught:
        client.virtual_machine_image_templates.get(RG, "missing")
    assert caught.value.error.code == "ResourceNotFound"
    assert "'Microsoft.VirtualMachineImages/imageTemplates/missing'" in caught.value.error.message


def test_names_are_case_insensitive_like_arm(client):
    create(client, "Web-Template")

    assert client.virtual_machine_image_templates.get(RG, "web-template").name == "Web-Template"


def test_it_lists_by_subscription_and_by_resource_group_with_last_run_status(emulator, client):
    emulator.set_time_scale(20000)
    create(client, "one")
    create(client, "two")
    client.virtual_machine_image_templates.begin_run(RG, "two").result()

    by_group = {t.name: t for t in client.virtual_machine_image_templates.list_by_resource_group(RG)}
    everywhere = {t.name for t in client.virtual_machine_image_templates.list()}

    assert set(by_group) == {"one", "two"}
    assert everywhere == {"one", "two"}
    assert by_group["one"].last_run_status is None
    assert by_group["two"].last_run_status.run_state == "Succeeded"


def test_listing_pages_with_next_links(emulator, client, recorder):
    emulator.settings(page_size=2)
    for index in range(5):
        create(client, f"t{index}")
    recorder.clear()

    names = [t.name for t in client.virtual_machine_image_templates.list_by_resource_group(RG)]

    assert names == [f"t{index}" for index in range(5)]
    pages = [e for e in recorder.exchanges if e.method == "GET"]
    assert len(pages) == 3
    assert "$skipToken=" in pages[1].url and "api-version=2025-10-01" in pages[1].url


def test_listing_defaults_to_pages_of_100(client, recorder):
    for index in range(101):
        client.virtual_machine_image_templates.begin_create_or_update(RG, f"t{index:03}", template_body(),
                                                                     polling=False)
    recorder.clear()

    names = [t.name for t in client.virtual_machine_image_templates.list()]

    assert len(names) == 101
    assert len([e for e in recorder.exchanges if e.method == "GET"]) == 2


def test_listing_a_missing_resource_group_is_resource_group_not_found(client):
    with pytest.raises(ResourceNotFoundError) as caught:
        list(client.virtual_machine_image_templates.list_by_resource_group("nowhere"))
    assert caught.value.error.code == "ResourceGroupNotFound"


def test_delete_answers_202_with_location_until_done(emulator, client, recorder):
    create(client)
    recorder.clear()

    client.virtual_machine_image_templates.begin_delete(RG, "web").result()

    delete = recorder.first("DELETE")
    assert delete.status == 202
    assert "/operationResults/" in delete.headers["Location"] and OPERATION_URL.match(delete.headers["Location"])
    assert "Azure-AsyncOperation" not in delete.headers
    assert "Retry-After" in delete.headers
    polls = [e for e in recorder.exchanges if e.method == "GET"]
    assert [e.status for e in polls][-1] in (200, 204)
    assert all(e.status == 202 for e in polls[:-1])
    with pytest.raises(ResourceNotFoundError):
        client.virtual_machine_image_templates.get(RG, "web")


def test_a_deleting_template_shows_deleting_and_its_location_answers_202(emulator, client):
    create(client)
    emulator.freeze()

    poller = client.virtual_machine_image_templates.begin_delete(RG, "web")

    assert client.virtual_machine_image_templates.get(RG, "web").provisioning_state == "Deleting"
    assert poller.status() == "InProgress"
    emulator.advance_simulated(61)
    poller.result()
    with pytest.raises(ResourceNotFoundError):
        client.virtual_machine_image_templates.get(RG, "web")


def test_delete_of_a_missing_template_is_204(client, recorder):
    client.virtual_machine_image_templates.begin_delete(RG, "missing").result()

    assert recorder.first("DELETE").status == 204


def test_patch_updates_tags_with_202_and_both_lro_headers(client, recorder):
    create(client)
    recorder.clear()

    updated = client.virtual_machine_image_templates.begin_update(
        RG, "web", m.ImageTemplateUpdateParameters(tags={"new-tag": "new-value"})).result()

    patch = recorder.first("PATCH")
    assert patch.status == 202
    assert "/operations/" in patch.headers["Azure-AsyncOperation"]
    assert "/operationResults/" in patch.headers["Location"]
    assert updated.tags == {"new-tag": "new-value"}
    assert updated.system_data.last_modified_at is not None


def test_patch_removes_identities_with_type_none(client):
    create(client)

    updated = client.virtual_machine_image_templates.begin_update(
        RG, "web", {"identity": {"type": "None"}}).result()

    assert updated.identity.type == "None"
    assert not updated.identity.user_assigned_identities


def test_patch_replaces_the_identity_with_null_and_empty_object(client):
    create(client)
    other = IDENTITY_ID.replace("aib-builder", "aib-builder-2")

    updated = client.virtual_machine_image_templates.begin_update(
        RG, "web", {"identity": {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY_ID: None, other: {}}}}
    ).result()

    assert list(updated.identity.user_assigned_identities) == [other]


def test_patch_changes_the_vm_profile(client):
    create(client)
    profile = {"vmSize": "Standard_D4s_v3", "osDiskSizeGB": 127,
               "vnetConfig": {"subnetId": "/subscriptions/x/resourceGroups/n/providers/Microsoft.Network/"
                                          "virtualNetworks/v/subnets/build",
                              "containerInstanceSubnetId": "/subscriptions/x/resourceGroups/n/providers/"
                                                           "Microsoft.Network/virtualNetworks/v/subnets/aci"}}

    updated = client.virtual_machine_image_templates.begin_update(
        RG, "web", {"properties": {"vmProfile": profile}}).result()

    assert updated.vm_profile.vm_size == "Standard_D4s_v3"
    assert updated.vm_profile.vnet_config.container_instance_subnet_id.endswith("/aci")


def test_patch_adds_a_distribution_target_but_never_drops_one(client):
    create(client)
    keep = {"type": "VHD", "runOutputName": "vhd"}

    updated = client.virtual_machine_image_templates.begin_update(
        RG, "web", {"properties": {"distribute": [keep, gallery_target()]}}).result()
    assert [d.run_output_name for d in updated.distribute] == ["vhd", "acg"]

    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_image_templates.begin_update(RG, "web", {"properties": {"distribute": [keep]}})
    assert caught.value.error.code == "ValidationFailed"
    assert caught.value.error.message == ("Validation failed: Distribute target with Runoutput name acg not found in "
                                          "the update request. Deleting a distribution target is not allowed.")


@pytest.mark.parametrize("patch", [
    {"location": "westus"},
    {"properties": {"source": {"type": "PlatformImage"}}},
    {"properties": {"customize": []}},
    {"properties": {"buildTimeoutInMinutes": 30}},
])
def test_patch_refuses_everything_but_tags_identity_distribute_and_vm_profile(client, patch):
    create(client)

    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_image_templates.begin_update(RG, "web", patch)
    assert caught.value.status_code == 400
    assert "unknown field" in caught.value.error.message


def test_an_unknown_api_version_is_refused_as_arm_does(emulator):
    client = emulator.imagebuilder_client(api_version="2022-07-02")

    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_image_templates.get(RG, "web")
    assert caught.value.status_code == 400
    assert caught.value.error.code == "NoRegisteredProviderFound"
    assert "API version '2022-07-02' for type 'imageTemplates'" in caught.value.error.message


def test_a_missing_api_version_is_refused_as_arm_does(client):
    path = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RG}{TEMPLATES}web"

    response = client.send_request(HttpRequest("GET", path))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MissingApiVersionParameter"


def test_the_provider_lists_its_operations(client):
    names = {operation.name for operation in client.operations.list()}

    assert "Microsoft.VirtualMachineImages/imageTemplates/run/action" in names
    assert "Microsoft.VirtualMachineImages/locations/operations/read" in names


def test_requests_without_a_token_get_arms_401(emulator):
    client = emulator.imagebuilder_client(authentication_policy=SansIOHTTPPolicy())

    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_image_templates.get(RG, "web")
    assert caught.value.status_code == 401
    assert caught.value.error.code == "AuthenticationFailed"


def test_concurrent_clients_are_served_and_only_one_put_of_a_name_wins(emulator):
    from concurrent.futures import ThreadPoolExecutor

    clients = [emulator.imagebuilder_client() for _ in range(4)]

    def put(index: int) -> str:
        client = clients[index % len(clients)]
        try:
            client.virtual_machine_image_templates.begin_create_or_update(RG, "contested", template_body(),
                                                                         polling=False)
            return "created"
        except ResourceExistsError:
            return "conflict"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(put, range(16)))
        distinct = list(pool.map(lambda i: create(clients[i % 4], f"t{i}").name, range(8)))

    assert outcomes.count("created") == 1 and outcomes.count("conflict") == 15
    assert sorted(distinct) == sorted(f"t{i}" for i in range(8))
