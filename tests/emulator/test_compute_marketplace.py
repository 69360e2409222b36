"""Marketplace image look-ups through azure-mgmt-compute's virtual_machine_images."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

JAMMY = ("Canonical", "0001-com-ubuntu-server-jammy")


@pytest.fixture
def images(emulator):
    return emulator.compute_client().virtual_machine_images


def features(image) -> dict[str, str]:
    return {feature.name: feature.value for feature in image.properties.features or []}


def test_it_walks_publishers_offers_skus_and_versions(images):
    assert {"Canonical", "RedHat", "MicrosoftWindowsServer", "MicrosoftWindowsDesktop"} <= {
        publisher.name for publisher in images.list_publishers("eastus")}
    assert "0001-com-ubuntu-server-jammy" in [offer.name for offer in images.list_offers("eastus", "Canonical")]
    skus = [sku.name for sku in images.list_skus("eastus", *JAMMY)]
    assert skus == ["22_04-lts", "22_04-lts-gen2", "22_04-lts-arm64"]

    versions = images.list("eastus", *JAMMY, "22_04-lts-gen2")
    assert [version.name for version in versions] == ["22.04.202409110", "22.04.202410020", "22.04.202411190"]
    assert versions[0].location == "eastus"
    assert versions[0].id.startswith("/Subscriptions/")


def test_it_answers_the_newest_version_with_top_and_orderby(images):
    newest = images.list("westeurope", *JAMMY, "22_04-lts-gen2", top=1, orderby="name desc")

    assert [version.name for version in newest] == ["22.04.202411190"]


def test_it_lists_versions_with_properties(images):
    versions = images.list_with_properties("eastus", "RedHat", "RHEL", "9-lvm-gen2", expand="Properties")

    assert {version.properties.hyper_v_generation for version in versions} == {"V2"}
    assert features(versions[-1])["SecurityType"] == "TrustedLaunchSupported"


@pytest.mark.parametrize(("location", "publisher", "offer", "sku", "generation", "security_type"), [
    ("eastus", "Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts", "V1", None),
    ("eastus", "Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2", "V2", "TrustedLaunchSupported"),
    ("westus2", "Canonical", "ubuntu-24_04-lts", "server", "V2", "TrustedLaunchSupported"),
    ("westus2", "Canonical", "ubuntu-24_04-lts", "server-gen1", "V1", None),
    ("eastus", "Canonical", "0001-com-ubuntu-confidential-vm-jammy", "22_04-lts-cvm", "V2", "ConfidentialVMSupported"),
    ("eastus", "RedHat", "RHEL", "9-lvm", "V1", None),
    ("westeurope", "MicrosoftWindowsServer", "WindowsServer", "2022-datacenter-azure-edition", "V2",
     "TrustedLaunchSupported"),
    ("eastus", "MicrosoftWindowsServer", "WindowsServer", "2022-datacenter", "V1", None),
    ("eastus", "MicrosoftWindowsServer", "WindowsServer", "2025-datacenter-azure-edition", "V2",
     "TrustedLaunchAndConfidentialVmSupported"),
    ("eastus", "MicrosoftWindowsDesktop", "windows-11", "win11-24h2-ent", "V2", "TrustedLaunchSupported"),
    ("eastus", "Contoso", "hardened-ubuntu", "22_04-tl-only", "V2", "TrustedLaunch"),
    ("eastus", "Contoso", "confidential-ubuntu", "22_04-cvm-only", "V2", "ConfidentialVM"),
])
def test_it_describes_generation_and_security_type(images, location, publisher, offer, sku, generation, security_type):
    newest = images.list(location, publisher, offer, sku, top=1, orderby="name desc")[0].name

    image = images.get(location, publisher, offer, sku, newest)

    assert image.properties.hyper_v_generation == generation
    assert features(image).get("SecurityType") == security_type
    assert image.properties.architecture == "x64"


def test_it_describes_windows_and_arm64_images(images):
    windows = images.get("eastus", "MicrosoftWindowsServer", "WindowsServer", "2022-datacenter", "20348.2849.241109")
    arm = images.get("eastus", *JAMMY, "22_04-lts-arm64", "22.04.202411190")

    assert windows.properties.os_disk_image.operating_system == "Windows"
    assert arm.properties.architecture == "Arm64"


def test_it_answers_the_purchase_plan(images):
    image = images.get("eastus", "center-for-internet-security-inc", "cis-ubuntu-linux-2204-l1",
                       "cis-ubuntu2204-l1-gen2", "2.1.3")

    assert image.properties.plan.as_dict() == {"name": "cis-ubuntu2204-l1-gen2", "product": "cis-ubuntu-linux-2204-l1",
                                               "publisher": "center-for-internet-security-inc"}
    plain = images.get("eastus", *JAMMY, "22_04-lts-gen2", "22.04.202411190")
    assert plain.properties.plan is None


def test_it_reports_deprecation_and_hides_deprecated_versions(images):
    listed = [version.name for version in images.list("eastus", *JAMMY, "22_04-lts")]
    deprecated = images.get("eastus", *JAMMY, "22_04-lts", "22.04.202404090")
    scheduled = images.get("eastus", *JAMMY, "22_04-lts", "22.04.202409110")
    active = images.get("eastus", *JAMMY, "22_04-lts", "22.04.202411190")

    assert "22.04.202404090" not in listed
    assert deprecated.properties.image_deprecation_status.image_state == "Deprecated"
    assert scheduled.properties.image_deprecation_status.image_state == "ScheduledForDeprecation"
    assert scheduled.properties.image_deprecation_status.alternative_option.value == "ubuntu-24_04-lts"
    assert active.properties.image_deprecation_status.image_state == "Active"


def test_it_answers_not_found_as_azure_does(images):
    with pytest.raises(ResourceNotFoundError) as missing_version:
        images.get("eastus", *JAMMY, "22_04-lts-gen2", "1.2.3")
    with pytest.raises(ResourceNotFoundError) as missing_offer:
        images.list_skus("eastus", "Canonical", "ubuntoserver")
    with pytest.raises(ResourceNotFoundError) as missing_publisher:
        images.list_offers("eastus", "NoSuchPublisher")

    assert missing_version.value.error.code == "NotFound"
    assert missing_version.value.error.message == "Artifact: VMImage was not found."
    assert missing_offer.value.error.message == "Artifact: VMImage was not found."
    assert missing_publisher.value.error.message == "Publisher: NoSuchPublisher was not found."


def test_it_has_no_latest_version_on_the_rest_api(images):
    # Clients list versions first; GET .../versions/latest is a 404 on Azure too.
    with pytest.raises(ResourceNotFoundError):
        images.get("eastus", *JAMMY, "22_04-lts-gen2", "latest")


def test_it_refuses_an_unknown_orderby(images):
    with pytest.raises(HttpResponseError) as caught:
        images.list("eastus", *JAMMY, "22_04-lts-gen2", orderby="publishedDate desc")

    assert caught.value.status_code == 400


def test_control_api_adds_an_image_version(emulator, images):
    added = emulator.add_image(location="East US", publisher="Contoso", offer="golden", sku="gen2-tl",
                               version="1.0.0", hyperVGeneration="V2", architecture="x64",
                               features={"SecurityType": "TrustedLaunchSupported"},
                               plan={"name": "gen2-tl", "product": "golden", "publisher": "Contoso"})

    image = images.get("eastus", "Contoso", "golden", "gen2-tl", "1.0.0")

    assert added["location"] == "eastus"
    assert features(image) == {"SecurityType": "TrustedLaunchSupported"}
    assert image.properties.plan.product == "golden"
    assert [sku.name for sku in images.list_skus("eastus", "Contoso", "golden")] == ["gen2-tl"]


def test_control_api_refuses_an_incomplete_image(emulator):
    response = emulator.control("POST", "catalog/images", {"publisher": "Contoso"}, expect=400)

    assert "location" in response.json()["error"]["message"]


def test_versions_sort_as_numbers_not_text(emulator, images):
    for version in ("1.9.0", "1.10.0", "1.2.0"):
        emulator.add_image(location="eastus", publisher="Contoso", offer="sorting", sku="s", version=version)

    assert [version.name for version in images.list("eastus", "Contoso", "sorting", "s", orderby="name desc")] == [
        "1.10.0", "1.9.0", "1.2.0"]


def test_it_expands_deprecation_status_and_architecture_on_version_lists(images):
    # What `az vm image list` and Get-AzVMImage -Expand properties/imageDeprecationStatus send.
    versions = images.list_with_properties("eastus", *JAMMY, "22_04-lts", expand="properties/imageDeprecationStatus")

    assert [(version.name, version.properties.image_deprecation_status.image_state,
             version.properties.architecture, version.properties.hyper_v_generation) for version in versions] == [
        ("22.04.202409110", "ScheduledForDeprecation", "x64", "V1"),
        ("22.04.202410020", "Active", "x64", "V1"),
        ("22.04.202411190", "Active", "x64", "V1"),
    ]
    scheduled = versions[0].properties.image_deprecation_status
    assert scheduled.scheduled_deprecation_time.year == 2026
    assert (scheduled.alternative_option.type, scheduled.alternative_option.value) == ("Offer", "ubuntu-24_04-lts")


def test_the_plain_list_also_carries_the_expanded_properties(images):
    versions = images.list("eastus", *JAMMY, "22_04-lts-arm64", expand="properties/imageDeprecationStatus")

    assert {version["properties"]["architecture"] for version in versions} == {"Arm64"}
    plain = images.list("eastus", *JAMMY, "22_04-lts-arm64")
    assert "properties" not in plain[0]


def test_an_active_version_answers_every_deprecation_field(images):
    status = images.get("eastus", *JAMMY, "22_04-lts-gen2", "22.04.202411190").properties.image_deprecation_status

    assert (status.image_state, status.scheduled_deprecation_time, status.alternative_option) == ("Active", None, None)


@pytest.mark.parametrize(("location", "sku", "version", "state", "alternative"), [
    ("eastus", "9-lvm", "9.4.2024081415", "Deprecated", None),
    ("westeurope", "9-lvm", "9.4.2024101511", "ScheduledForDeprecation", ("Offer", "RHEL")),
    ("westus2", "9-lvm", "9.5.2024112210", "Active", None),
])
def test_seeded_red_hat_versions_carry_deprecation(images, location, sku, version, state, alternative):
    status = images.get(location, "RedHat", "RHEL", sku, version).properties.image_deprecation_status

    assert status.image_state == state
    option = status.alternative_option
    assert ((option.type, option.value) if option else None) == alternative
    listed = [item.name for item in images.list(location, "RedHat", "RHEL", sku)]
    assert (version in listed) is (state != "Deprecated")
