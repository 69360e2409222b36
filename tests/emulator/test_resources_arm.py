"""The ARM routes the CLI and SDKs need beyond resource groups (issue 16, point 2): cloud
metadata, locations, resource providers, generic resource listings and empty path segments."""

from __future__ import annotations

import requests
from azure.core.rest import HttpRequest
from azure.mgmt.resource.resources import ResourceManagementClient

from tests.support.aib import template_body
from tests.support.emulator import RESOURCE_GROUP, SUBSCRIPTION_ID


def arm(emulator) -> ResourceManagementClient:
    return ResourceManagementClient(emulator.credential(), SUBSCRIPTION_ID, **emulator.client_kwargs())


def test_cloud_metadata_describes_the_emulator_as_a_cloud(emulator):
    answer = requests.get(f"{emulator.base_url}/metadata/endpoints", params={"api-version": "2022-09-01"},
                          verify=str(emulator.ca_path), timeout=10)

    assert answer.status_code == 200
    cloud = answer.json()
    assert cloud["resourceManager"] == f"{emulator.base_url}/"
    assert cloud["authentication"]["loginEndpoint"] == emulator.base_url
    assert cloud["authentication"]["audiences"][0] == "https://management.core.windows.net/"
    assert cloud["suffixes"]["storage"] == "core.windows.net"
    older = requests.get(f"{emulator.base_url}/metadata/endpoints", params={"api-version": "2019-05-01"},
                         verify=str(emulator.ca_path), timeout=10).json()
    assert isinstance(older, list) and older[0]["name"] == cloud["name"]


def test_it_lists_the_subscriptions_locations(emulator):
    response = arm(emulator).send_request(
        HttpRequest("GET", f"/subscriptions/{SUBSCRIPTION_ID}/locations?api-version=2022-12-01"))

    assert response.status_code == 200
    by_name = {location["name"]: location for location in response.json()["value"]}
    assert {"eastus", "westus2", "westeurope"} <= set(by_name)
    east = by_name["eastus"]
    assert east["displayName"] == "East US" and east["regionalDisplayName"] == "(US) East US"
    assert east["metadata"]["geography"] == "United States"
    assert east["metadata"]["pairedRegion"][0]["name"] == "westus"


def test_providers_declare_their_resource_types_and_api_versions(emulator):
    provider = arm(emulator).providers.get("Microsoft.VirtualMachineImages")

    assert provider.registration_state == "Registered"
    types = {t.resource_type: t for t in provider.resource_types}
    assert types["imageTemplates"].api_versions[0] == "2025-10-01"
    assert "2020-02-14" in types["imageTemplates"].api_versions
    assert "East US" in types["imageTemplates"].locations
    assert types["imageTemplates/triggers"].api_versions[-1] == "2022-07-01"
    compute = {t.resource_type for t in arm(emulator).providers.get("Microsoft.Compute").resource_types}
    assert {"images", "galleries", "galleries/images", "galleries/images/versions"} <= compute
    assert "Microsoft.Resources" in {p.namespace for p in arm(emulator).providers.list()}


def test_resource_listings_include_every_services_resources(emulator):
    emulator.imagebuilder_client().virtual_machine_image_templates.begin_create_or_update(
        RESOURCE_GROUP, "web", template_body()).result()
    client = arm(emulator)

    everything = {(r.type, r.name) for r in client.resources.list()}
    in_group = {(r.type, r.name) for r in client.resources.list_by_resource_group(RESOURCE_GROUP)}
    templates = list(client.resources.list(filter="resourceType eq 'Microsoft.VirtualMachineImages/imageTemplates'"))

    assert ("Microsoft.VirtualMachineImages/imageTemplates", "web") in in_group
    assert ("Microsoft.Compute/images", "win2022-base") in in_group
    assert ("Microsoft.Compute/galleries/images/versions", "goldsmith_gallery/ubuntu-gen1/1.0.1") in everything
    assert not any(kind == "Microsoft.Compute/galleries" for kind, _ in in_group)
    assert [t.name for t in templates] == ["web"]


def test_an_empty_path_segment_is_accepted_as_arm_does(emulator):
    client = emulator.imagebuilder_client()
    client.virtual_machine_image_templates.begin_create_or_update(RESOURCE_GROUP, "web", template_body()).result()

    response = client.send_request(HttpRequest(
        "GET", f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}/providers/"
               "Microsoft.VirtualMachineImages//imageTemplates/web?api-version=2025-10-01"))

    assert response.status_code == 200
    assert response.json()["name"] == "web"


def test_resource_show_without_an_api_version_can_learn_one_from_the_provider(emulator):
    """az resource show reads the provider's api-versions, then GETs the resource with the newest."""
    client = arm(emulator)
    emulator.imagebuilder_client().virtual_machine_image_templates.begin_create_or_update(
        RESOURCE_GROUP, "web", template_body()).result()
    versions = next(t.api_versions for t in client.providers.get("Microsoft.VirtualMachineImages").resource_types
                    if t.resource_type == "imageTemplates")

    template = client.resources.get_by_id(
        f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}/providers/"
        "Microsoft.VirtualMachineImages/imageTemplates/web", api_version=versions[0])

    assert template.name == "web"
