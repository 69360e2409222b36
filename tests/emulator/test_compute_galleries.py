"""Azure Compute Gallery look-ups through azure-mgmt-compute (galleries, gallery_images, gallery_image_versions)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ResourceNotFoundError

from tests.support.emulator import SUBSCRIPTION_ID

RG = "goldsmith-galleries"
GALLERY = "goldsmith_gallery"
GALLERY_ID = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RG}/providers/Microsoft.Compute/galleries/{GALLERY}"


@pytest.fixture
def compute(emulator):
    return emulator.compute_client()


def security_type(definition) -> str | None:
    return {feature.name: feature.value for feature in definition.features or []}.get("SecurityType")


def test_it_lists_and_reads_galleries(compute):
    gallery = compute.galleries.get(RG, GALLERY)

    assert gallery.id == GALLERY_ID
    assert gallery.location == "eastus"
    assert gallery.identifier.unique_name == f"{SUBSCRIPTION_ID}-GOLDSMITH_GALLERY"
    assert [item.name for item in compute.galleries.list_by_resource_group(RG)] == [GALLERY, "goldsmith_gallery_eu"]
    assert GALLERY in [item.name for item in compute.galleries.list()]


@pytest.mark.parametrize(("name", "os_type", "generation", "expected_security_type"), [
    ("ubuntu-gen2-tl", "Linux", "V2", "TrustedLaunchSupported"),
    ("ubuntu-gen1", "Linux", "V1", None),
    ("ubuntu-gen2-plain", "Linux", "V2", None),
    ("win2022-tl", "Windows", "V2", "TrustedLaunchSupported"),
    ("cvm-def", "Linux", "V2", "ConfidentialVMSupported"),
    ("cvm-only", "Linux", "V2", "ConfidentialVM"),
    ("tl-only", "Linux", "V2", "TrustedLaunch"),
    ("tlcvm", "Linux", "V2", "TrustedLaunchAndConfidentialVmSupported"),
    ("win2025-tlcvm", "Windows", "V2", "TrustedLaunchAndConfidentialVmSupported"),
])
def test_it_describes_each_seeded_definition(compute, name, os_type, generation, expected_security_type):
    definition = compute.gallery_images.get(RG, GALLERY, name)

    assert definition.id == f"{GALLERY_ID}/images/{name}"
    assert definition.os_type == os_type
    assert definition.os_state == "Generalized"
    assert definition.hyper_v_generation == generation
    assert security_type(definition) == expected_security_type
    assert definition.identifier.sku == name


def test_it_lists_definitions_of_a_gallery(compute):
    names = [definition.name for definition in compute.gallery_images.list_by_gallery(RG, GALLERY)]

    assert {"ubuntu-gen2-tl", "ubuntu-arm64", "ubuntu-specialized"} <= set(names)
    assert compute.gallery_images.get(RG, GALLERY, "ubuntu-arm64").architecture == "Arm64"
    assert compute.gallery_images.get(RG, GALLERY, "ubuntu-specialized").os_state == "Specialized"


def test_image_versions_are_listed_in_pages_the_sdk_follows(emulator, compute):
    emulator.settings(page_size=2)
    pages = list(compute.gallery_image_versions.list_by_gallery_image(RG, GALLERY, "ubuntu-gen2-tl").by_page())

    assert [[item.name for item in page] for page in pages] == [["0.1.2", "1.0.0"], ["1.2.0", "2.0.0"], ["2.1.0"]]


def test_it_lists_and_reads_image_versions(compute):
    versions = compute.gallery_image_versions.list_by_gallery_image(RG, GALLERY, "ubuntu-gen2-tl")
    version = compute.gallery_image_versions.get(RG, GALLERY, "ubuntu-gen2-tl", "2.1.0")

    assert [item.name for item in versions] == ["0.1.2", "1.0.0", "1.2.0", "2.0.0", "2.1.0"]
    assert version.provisioning_state == "Succeeded"
    assert [region.name for region in version.publishing_profile.target_regions] == ["East US", "West US 2"]
    assert version.publishing_profile.exclude_from_latest is False
    assert version.replication_status is None  # only with $expand=ReplicationStatus


def test_it_expands_replication_status(compute):
    version = compute.gallery_image_versions.get(RG, GALLERY, "ubuntu-gen2-tl", "2.0.0", expand="ReplicationStatus")

    assert version.replication_status.aggregated_state == "Completed"
    assert [(item.region, item.progress) for item in version.replication_status.summary] == [
        ("East US", 100), ("West US 2", 100)]


def test_it_answers_resource_not_found_as_arm_does(compute):
    with pytest.raises(ResourceNotFoundError) as definition:
        compute.gallery_images.get(RG, GALLERY, "nope")
    with pytest.raises(ResourceNotFoundError) as version:
        compute.gallery_image_versions.get(RG, GALLERY, "ubuntu-gen2-tl", "9.9.9")
    with pytest.raises(ResourceNotFoundError) as group:
        compute.gallery_images.get("no-such-rg", GALLERY, "ubuntu-gen2-tl")

    assert definition.value.error.code == "ResourceNotFound"
    assert definition.value.error.message == (
        f"The Resource 'Microsoft.Compute/galleries/{GALLERY}/images/nope' under resource group '{RG}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix")
    assert f"'Microsoft.Compute/galleries/{GALLERY}/images/ubuntu-gen2-tl/versions/9.9.9'" in version.value.error.message
    assert group.value.error.code == "ResourceGroupNotFound"


def test_control_api_adds_a_definition_with_its_gallery_and_group(emulator, compute):
    definition_id = (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/team-galleries/providers/Microsoft.Compute/"
                     "galleries/team_gallery/images/web-base")
    emulator.add_gallery_image(id=definition_id, location="westus2", osType="Linux", osState="Generalized",
                               hyperVGeneration="V2", features={"SecurityType": "TrustedLaunchSupported"})

    definition = compute.gallery_images.get("team-galleries", "team_gallery", "web-base")

    assert definition.location == "westus2"
    assert security_type(definition) == "TrustedLaunchSupported"
    assert compute.galleries.get("team-galleries", "team_gallery").location == "westus2"


def test_control_api_adds_a_version_and_refuses_one_without_a_definition(emulator, compute):
    version_id = f"{GALLERY_ID}/images/ubuntu-gen2-plain/versions/1.1.0"
    emulator.control("POST", "catalog/gallery-image-versions",
                     {"id": version_id, "location": "eastus", "excludeFromLatest": True,
                      "targetRegions": [{"name": "eastus", "regionalReplicaCount": 2}, {"name": "westeurope"}]},
                     expect=201)

    version = compute.gallery_image_versions.get(RG, GALLERY, "ubuntu-gen2-plain", "1.1.0")
    assert version.publishing_profile.exclude_from_latest is True
    assert [(region.name, region.regional_replica_count) for region in version.publishing_profile.target_regions] == [
        ("East US", 2), ("West Europe", 1)]

    missing = emulator.control("POST", "catalog/gallery-image-versions",
                               {"id": f"{GALLERY_ID}/images/nope/versions/1.0.0"}, expect=404)
    assert missing.json()["error"]["code"] == "ResourceNotFound"
    duplicate = emulator.control("POST", "catalog/gallery-image-versions", {"id": version_id}, expect=409)
    assert duplicate.json()["error"]["code"] == "Conflict"
