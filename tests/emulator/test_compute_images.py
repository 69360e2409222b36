"""Managed images through azure-mgmt-compute's images operations."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ResourceNotFoundError

from tests.support.emulator import SUBSCRIPTION_ID

RG = "goldsmith-images"


@pytest.fixture
def compute(emulator):
    return emulator.compute_client()


def test_it_reads_a_seeded_managed_image(compute):
    image = compute.images.get(RG, "win2022-base")

    assert image.id == f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RG}/providers/Microsoft.Compute/images/win2022-base"
    assert image.location == "eastus"
    assert image.hyper_v_generation == "V2"
    assert image.storage_profile.os_disk.os_type == "Windows"
    assert image.storage_profile.os_disk.os_state == "Generalized"
    assert image.provisioning_state == "Succeeded"


def test_it_lists_managed_images_by_group_and_subscription(compute):
    in_group = [image.name for image in compute.images.list_by_resource_group(RG)]

    assert in_group == ["ubuntu-2204-gen2-base", "ubuntu-2204-gen1-base", "win2022-base"]
    assert set(in_group) <= {image.name for image in compute.images.list()}


def test_it_answers_resource_not_found(compute):
    with pytest.raises(ResourceNotFoundError) as caught:
        compute.images.get(RG, "missing")

    assert caught.value.error.code == "ResourceNotFound"
    assert caught.value.error.message.startswith(
        f"The Resource 'Microsoft.Compute/images/missing' under resource group '{RG}' was not found.")


def test_control_api_adds_a_managed_image(emulator, compute):
    emulator.add_managed_image(id=f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RG}/providers/Microsoft.Compute/"
                                  "images/rhel9-gen1", location="eastus", osType="Linux", hyperVGeneration="V1")

    image = compute.images.get(RG, "rhel9-gen1")

    assert image.hyper_v_generation == "V1"
    assert image.storage_profile.os_disk.os_type == "Linux"
