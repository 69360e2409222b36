"""Subscriptions and resource groups through azure-mgmt-resource against the emulator."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.resource.resources import ResourceManagementClient

from tests.support.emulator import SUBSCRIPTION_ID


@pytest.fixture
def groups(emulator):
    return ResourceManagementClient(emulator.credential(), SUBSCRIPTION_ID, **emulator.client_kwargs()).resource_groups


def test_it_lists_the_seeded_resource_groups(groups):
    listed = {group.name: group for group in groups.list()}

    assert {"goldsmith-images", "goldsmith-galleries", "goldsmith-staging"} <= set(listed)
    assert listed["goldsmith-images"].location == "eastus"
    assert listed["goldsmith-images"].properties.provisioning_state == "Succeeded"
    assert listed["goldsmith-images"].id == f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/goldsmith-images"


def test_it_creates_reads_updates_and_deletes_a_group(groups):
    created = groups.create_or_update("team-rg", {"location": "West US 2", "tags": {"team": "web"}})

    assert created.location == "westus2"
    assert created.type == "Microsoft.Resources/resourceGroups"
    assert groups.check_existence("team-rg") is True
    assert groups.get("TEAM-RG").tags == {"team": "web"}  # names are case-insensitive

    updated = groups.update("team-rg", {"tags": {"team": "data"}})
    assert updated.tags == {"team": "data"}

    groups.begin_delete("team-rg").result()
    assert groups.check_existence("team-rg") is False


def test_it_answers_resource_group_not_found(groups):
    with pytest.raises(ResourceNotFoundError) as caught:
        groups.get("missing-rg")

    assert caught.value.error.code == "ResourceGroupNotFound"
    assert caught.value.error.message == "Resource group 'missing-rg' could not be found."


def test_it_refuses_to_move_a_group_to_another_location(groups):
    with pytest.raises(HttpResponseError) as caught:
        groups.create_or_update("goldsmith-images", {"location": "westeurope"})

    assert caught.value.status_code == 409
    assert caught.value.error.code == "InvalidResourceGroupLocation"


def test_it_pages_with_top(groups):
    for index in range(4):
        groups.create_or_update(f"page-{index}", {"location": "eastus"})

    pages = groups.list(top=2).by_page()
    first = [group.name for group in next(pages)]

    assert len(first) == 2
    assert len([group.name for page in pages for group in page]) >= 5  # the rest arrives through nextLink


def test_it_filters_by_tag(groups):
    names = [group.name for group in groups.list(filter="tagName eq 'purpose' and tagValue eq 'galleries'")]

    assert names == ["goldsmith-galleries"]


def test_it_accepts_any_subscription_on_first_use(emulator):
    client = ResourceManagementClient(emulator.credential(), "99999999-9999-9999-9999-999999999999",
                                      **emulator.client_kwargs())

    assert list(client.resource_groups.list()) == []
    client.resource_groups.create_or_update("fresh", {"location": "eastus"})
    assert [group.name for group in client.resource_groups.list()] == ["fresh"]


def test_deleting_a_group_deletes_its_compute_resources(emulator, groups):
    compute = emulator.compute_client()
    emulator.add_managed_image(id=f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/doomed/providers/"
                                  "Microsoft.Compute/images/old", location="eastus", osType="Linux",
                               hyperVGeneration="V2")
    assert [image.name for image in compute.images.list_by_resource_group("doomed")] == ["old"]

    groups.begin_delete("doomed").result()

    assert "old" not in [image.name for image in compute.images.list()]


def test_it_reads_a_subscription(emulator):
    # azure-mgmt-resource 26 ships no subscriptions client, so this one goes over plain HTTPS.
    token = emulator.credential().get_token("https://management.azure.com/.default").token
    response = emulator.http.get(f"{emulator.base_url}/subscriptions/{SUBSCRIPTION_ID}",
                                 params={"api-version": "2022-12-01"}, headers={"Authorization": f"Bearer {token}"},
                                 verify=str(emulator.ca_path))

    assert response.status_code == 200
    assert response.json()["subscriptionId"] == SUBSCRIPTION_ID
    assert response.json()["state"] == "Enabled"
    assert response.json()["tenantId"] == "11111111-1111-1111-1111-111111111111"


def test_it_requires_an_api_version(emulator):
    token = emulator.credential().get_token("https://management.azure.com/.default").token
    response = emulator.http.get(f"{emulator.base_url}/subscriptions/{SUBSCRIPTION_ID}/resourcegroups",
                                 headers={"Authorization": f"Bearer {token}"}, verify=str(emulator.ca_path))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MissingApiVersionParameter"
