"""Provisioning: the catalog checks that end a template in provisioningState Failed (it stays
until deleted), and the staging resource group Image Builder creates and removes."""

from __future__ import annotations

import re

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.support.aib import (
    GEN1_DEFINITION,
    GEN2_DEFINITION,
    MANAGED_IMAGE_SOURCE,
    gallery_target,
    managed_image_id,
    template_body,
)
from tests.support.emulator import RESOURCE_GROUP, SUBSCRIPTION_ID

RG = RESOURCE_GROUP


@pytest.fixture
def templates(imagebuilder_client):
    return imagebuilder_client.virtual_machine_image_templates


@pytest.fixture
def groups(emulator):
    from azure.mgmt.resource.resources import ResourceManagementClient

    return ResourceManagementClient(emulator.credential(), SUBSCRIPTION_ID,
                                    **emulator.client_kwargs()).resource_groups


def failed_put(templates, body, name: str = "bad") -> HttpResponseError:
    """PUT answers 201; the async operation then fails, as it does in Azure."""
    poller = templates.begin_create_or_update(RG, name, body)
    with pytest.raises(HttpResponseError) as caught:
        poller.result()
    return caught.value


def test_a_missing_platform_image_fails_provisioning_with_bad_pir_source(templates):
    source = {"type": "PlatformImage", "publisher": "MicrosoftWindowsDesktop", "offer": "Windows-10",
              "sku": "19h1-evd", "version": "latest"}

    error = failed_put(templates, template_body(source=source))

    assert error.error.code == "BadPIRSource"
    template = templates.get(RG, "bad")
    assert template.provisioning_state == "Failed"
    assert template.provisioning_error.provisioning_error_code == "BadPIRSource"
    assert template.provisioning_error.message == (
        "Platform Image was not found. location: eastus, publisherName: MicrosoftWindowsDesktop, offer: Windows-10, "
        "sku: 19h1-evd, version: latest. Please check the specified source image version in Image Builder Template "
        "exists. For information on how to check available versions, types, review https://aka.ms/azvmimagebuilderts.")


def test_a_failed_template_stays_until_deleted_and_cannot_run(templates):
    body = template_body(source={"type": "PlatformImage", "publisher": "Nobody", "offer": "o", "sku": "s",
                                 "version": "1.0.0"})
    failed_put(templates, body)

    with pytest.raises(ResourceExistsError) as conflict:
        templates.begin_create_or_update(RG, "bad", template_body())
    assert conflict.value.error.code == "Conflict"
    with pytest.raises(ResourceExistsError) as not_allowed:
        templates.begin_run(RG, "bad")
    assert not_allowed.value.error.code == "OperationNotAllowed"
    assert not_allowed.value.error.message == (
        "Operation Microsoft.VirtualMachineImages/imageTemplates/run is not allowed in provisioning state: failed or "
        "run state: none.")

    templates.begin_delete(RG, "bad").result()
    assert templates.begin_create_or_update(RG, "bad", template_body()).result().provisioning_state == "Succeeded"


def test_a_platform_image_must_exist_in_the_templates_region(templates, emulator):
    emulator.add_image(location="eastus", publisher="Goldsmith", offer="base", sku="one", version="1.0.0")

    assert templates.begin_create_or_update(RG, "here", template_body(
        source={"type": "PlatformImage", "publisher": "Goldsmith", "offer": "base", "sku": "one",
                "version": "latest"})).result().provisioning_state == "Succeeded"
    error = failed_put(templates, template_body(location="centralus", source={
        "type": "PlatformImage", "publisher": "Goldsmith", "offer": "base", "sku": "one", "version": "1.0.0"}))
    assert error.error.code == "BadPIRSource"


@pytest.mark.parametrize(("offer", "sku", "security_type"), [
    ("hardened-ubuntu", "22_04-tl-only", "TrustedLaunch"),
    ("confidential-ubuntu", "22_04-cvm-only", "ConfidentialVM"),
])
def test_trusted_launch_and_confidential_vm_sources_are_refused(templates, offer, sku, security_type):
    source = {"type": "PlatformImage", "publisher": "Contoso", "offer": offer, "sku": sku, "version": "latest"}

    failed_put(templates, template_body(source=source))

    error = templates.get(RG, "bad").provisioning_error
    assert f"security type '{security_type}'" in error.message


def test_supported_security_types_are_fine(templates):
    source = {"type": "PlatformImage", "publisher": "Canonical", "offer": "0001-com-ubuntu-confidential-vm-jammy",
              "sku": "22_04-lts-cvm", "version": "latest"}

    assert templates.begin_create_or_update(RG, "cvm", template_body(source=source)).result().provisioning_state == \
        "Succeeded"


def test_a_managed_image_source_must_exist_in_the_same_region(templates, emulator):
    ok = templates.begin_create_or_update(RG, "ok", template_body(
        source={"type": "ManagedImage", "imageId": MANAGED_IMAGE_SOURCE})).result()
    assert ok.provisioning_state == "Succeeded"

    missing = failed_put(templates, template_body(source={"type": "ManagedImage",
                                                          "imageId": managed_image_id("nothing")}), "missing")
    assert missing.error.code == "BadManagedImageSource"

    emulator.add_managed_image(id=managed_image_id("far-away"), location="westeurope", osType="Linux",
                               hyperVGeneration="V2")
    far = failed_put(templates, template_body(source={"type": "ManagedImage", "imageId": managed_image_id("far-away")}),
                     "far")
    assert far.error.code == "BadManagedImageSource"
    assert "same region" in far.error.message


def test_a_gallery_source_must_exist_and_be_replicated_to_the_region(templates):
    latest = templates.begin_create_or_update(RG, "latest", template_body(
        source={"type": "SharedImageVersion", "imageVersionId": f"{GEN2_DEFINITION}/versions/latest"})).result()
    assert latest.provisioning_state == "Succeeded"

    missing = failed_put(templates, template_body(
        source={"type": "SharedImageVersion", "imageVersionId": f"{GEN2_DEFINITION}/versions/9.9.9"}), "missing")
    assert missing.error.code == "BadSharedImageVersionSource"

    elsewhere = failed_put(templates, template_body(location="westeurope", source={
        "type": "SharedImageVersion", "imageVersionId": f"{GEN2_DEFINITION}/versions/1.0.0"}), "elsewhere")
    assert elsewhere.error.code == "BadSharedImageVersionSource"
    assert "not replicated" in elsewhere.error.message


def test_a_gallery_target_definition_must_exist(templates):
    target = gallery_target(definition=GEN2_DEFINITION.replace("ubuntu-gen2-tl", "no-such-definition"))

    error = failed_put(templates, template_body(distribute=[target]))

    assert error.error.code == "BadSharedImageDistribute"


def test_an_explicit_gallery_version_must_not_exist_yet(templates):
    target = gallery_target(definition=f"{GEN1_DEFINITION}/versions/1.0.0")
    fresh = gallery_target(definition=f"{GEN1_DEFINITION}/versions/7.0.0")

    error = failed_put(templates, template_body(distribute=[target]))
    assert error.error.code == "BadSharedImageDistribute"
    assert "already exists" in error.error.message
    assert templates.begin_create_or_update(RG, "fresh", template_body(distribute=[fresh])).result() \
        .provisioning_state == "Succeeded"


def test_the_service_creates_a_tagged_staging_group_and_deletes_it_with_the_template(templates, groups):
    template = templates.begin_create_or_update(RG, "web", template_body()).result()
    name = template.exact_staging_resource_group.rsplit("/", 1)[1]

    group = groups.get(name)
    assert group.location == "eastus"
    assert group.tags["createdBy"] == "AzureVMImageBuilder"
    assert group.tags["imageTemplateName"] == "web"
    assert group.tags["imageTemplateResourceGroupName"] == RG

    templates.begin_delete(RG, "web").result()
    assert not groups.check_existence(name)


def test_long_names_give_a_shortened_staging_group_name(templates):
    name = "a-really-long-image-template-name-that-goes-on-and-on-for-64-chr"

    template = templates.begin_create_or_update(RG, name, template_body()).result()

    staging = template.exact_staging_resource_group.rsplit("/", 1)[1]
    assert len(staging) <= 90
    assert re.match(rf"^IT_{RG}_a-really-long-[\w-]*_[0-9a-f-]{{36}}$", staging)


def test_a_user_supplied_staging_group_that_exists_is_kept(templates, groups):
    staging = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/goldsmith-staging"

    template = templates.begin_create_or_update(RG, "web", template_body(stagingResourceGroup=staging)).result()
    assert template.exact_staging_resource_group == staging
    templates.begin_delete(RG, "web").result()

    assert groups.check_existence("goldsmith-staging")


def test_a_user_supplied_staging_group_that_did_not_exist_is_created_and_removed(templates, groups):
    staging = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/aib-staging-web"

    templates.begin_create_or_update(RG, "web", template_body(stagingResourceGroup=staging)).result()
    assert groups.check_existence("aib-staging-web")
    templates.begin_delete(RG, "web").result()

    assert not groups.check_existence("aib-staging-web")


def test_a_staging_group_serves_one_template_in_the_same_region(templates, groups):
    staging = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/goldsmith-staging"
    templates.begin_create_or_update(RG, "first", template_body(stagingResourceGroup=staging)).result()

    second = failed_put(templates, template_body(stagingResourceGroup=staging), "second")
    assert second.error.code == "BadStagingResourceGroup"

    groups.create_or_update("staging-west", {"location": "westus2"})
    other_region = failed_put(templates, template_body(
        stagingResourceGroup=f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/staging-west"), "west")
    assert other_region.error.code == "BadStagingResourceGroup"


def test_deleting_the_resource_group_deletes_its_templates(templates, groups):
    groups.create_or_update("team-images", {"location": "eastus"})
    templates.begin_create_or_update("team-images", "web", template_body()).result()

    groups.begin_delete("team-images").result()

    with pytest.raises(ResourceNotFoundError):
        templates.get("team-images", "web")
    assert [t.name for t in templates.list()] == []
