"""The compute look-ups in builds/azure.py, through azure-mgmt-compute against the emulator."""

import pytest

from builds import azure
from tests.support.aib import GALLERY_ID, GEN2_DEFINITION, MANAGED_IMAGE_SOURCE
from tests.support.emulator import SUBSCRIPTION_ID

JAMMY = ("eastus", "Canonical", "0001-com-ubuntu-server-jammy")


def test_it_lists_the_catalog_for_browsing(azure_emulator):
    assert "Canonical" in azure.list_publishers("eastus")
    assert "0001-com-ubuntu-server-jammy" in azure.list_offers("eastus", "Canonical")
    assert {"22_04-lts", "22_04-lts-gen2"} <= set(azure.list_skus(*JAMMY))
    versions = azure.list_versions(*JAMMY, "22_04-lts-gen2")
    assert versions[0] == "22.04.202411190"  # newest first
    assert "22.04.202409110" in versions


def test_unknown_catalog_names_list_nothing(azure_emulator):
    assert azure.list_offers("eastus", "NoSuchPublisher") == []
    assert azure.list_skus("eastus", "Canonical", "no-such-offer") == []
    assert azure.list_versions(*JAMMY, "no-such-sku") == []


def test_it_resolves_latest_to_the_newest_listed_version(azure_emulator):
    image = azure.marketplace_image(*JAMMY, "22_04-lts-gen2", "latest")
    assert image.version == "22.04.202411190"
    assert image.hyper_v_generation == "V2"
    assert image.security_type == "TrustedLaunchSupported"
    assert image.os_disk_size_gb == 30
    assert image.plan is None


def test_a_missing_security_type_feature_means_standard(azure_emulator):
    image = azure.marketplace_image(*JAMMY, "22_04-lts", "22.04.202410020")
    assert image.security_type == "Standard" and image.hyper_v_generation == "V1"


def test_it_reads_the_plan_and_deprecation_state(azure_emulator):
    cis = azure.marketplace_image("eastus", "center-for-internet-security-inc", "cis-ubuntu-linux-2204-l1",
                                  "cis-ubuntu2204-l1-gen2", "latest")
    assert cis.plan == azure.Plan("cis-ubuntu2204-l1-gen2", "cis-ubuntu-linux-2204-l1",
                                  "center-for-internet-security-inc")
    old = azure.marketplace_image(*JAMMY, "22_04-lts", "22.04.202404090")
    assert old.deprecation_state == "Deprecated"


def test_a_missing_marketplace_image_is_none(azure_emulator):
    assert azure.marketplace_image(*JAMMY, "22_04-lts-gen2", "1.2.3") is None
    assert azure.marketplace_image(*JAMMY, "no-such-sku", "latest") is None


def test_it_reads_gallery_definitions_versions_and_managed_images(azure_emulator):
    definition = azure.gallery_image(GEN2_DEFINITION)
    assert (definition.security_type, definition.hyper_v_generation, definition.os_type) == (
        "TrustedLaunchSupported", "V2", "Linux")
    version = azure.gallery_image_version(GEN2_DEFINITION + "/versions/latest")
    assert version.name == "2.1.0" and "eastus" in version.regions
    assert version.definition_id.lower() == GEN2_DEFINITION.lower()
    image = azure.managed_image(MANAGED_IMAGE_SOURCE)
    assert (image.location, image.hyper_v_generation, image.os_disk_size_gb) == ("eastus", "V2", 30)
    assert azure.gallery_image(f"{GALLERY_ID}/images/nope") is None
    assert azure.gallery_image_version(GEN2_DEFINITION + "/versions/9.9.9") is None
    assert azure.managed_image(MANAGED_IMAGE_SOURCE.replace("gen2-base", "nope")) is None


def test_latest_gallery_version_skips_versions_excluded_from_latest(azure_emulator):
    version = azure.gallery_image_version(f"{GALLERY_ID}/images/win2022-tl/versions/latest")
    assert version.name == "1.0.0"


def test_it_lists_every_gallery_definition_of_the_subscription(azure_emulator):
    names = {definition.name for definition in azure.gallery_images()}
    assert {"ubuntu-gen2-tl", "tl-only", "ubuntu-gen2-tl-eu"} <= names


def test_it_refuses_ids_of_the_wrong_kind():
    with pytest.raises(azure.AzureError) as caught:
        azure.gallery_image(GEN2_DEFINITION + "/versions/1.0.0")
    assert caught.value.code == "InvalidId" and caught.value.permanent


def test_found_answers_are_cached_and_misses_are_not(azure_emulator, settings):
    settings.AZURE_LOOKUP_CACHE_SECONDS = 300
    before = azure_emulator.last_seq()
    azure.marketplace_image(*JAMMY, "22_04-lts-gen2", "latest")
    azure.marketplace_image(*JAMMY, "22_04-lts-gen2", "latest")
    calls = azure_emulator.requests(before)
    assert len([c for c in calls if c["operation"] == "VirtualMachineImages_Get"]) == 1
    azure_emulator.add_image(location="eastus", publisher="Goldsmith-Tests", offer="new", sku="s", version="1.0.0")
    assert azure.marketplace_image("eastus", "Goldsmith-Tests", "new", "s", "latest") is not None
    azure.lookup_cache_clear()
    azure.marketplace_image(*JAMMY, "22_04-lts-gen2", "latest")
    calls = azure_emulator.requests(before)
    assert len([c for c in calls if c["operation"] == "VirtualMachineImages_Get"]) == 3


def test_a_failing_catalog_becomes_an_azure_error(azure_emulator):
    azure_emulator.add_fault("VirtualMachineImages_Get", 500, count=1)
    with pytest.raises(azure.AzureError) as caught:
        azure.marketplace_image(*JAMMY, "22_04-lts-gen2", "22.04.202411190")
    assert not caught.value.permanent
    assert SUBSCRIPTION_ID
