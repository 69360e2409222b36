"""The 400s Image Builder answers to a bad template body or name (aib-reference §2, §5.1-§5.3)."""

from __future__ import annotations

import copy

import pytest
from azure.core.exceptions import HttpResponseError

from tests.support.aib import IDENTITY_ID, gallery_target, managed_target, shell, template_body
from tests.support.emulator import RESOURCE_GROUP, SUBSCRIPTION_ID

REFERENCE = "Please review http://aka.ms/azvmimagebuildertmplref"
SUBNET = "/subscriptions/x/resourceGroups/n/providers/Microsoft.Network/virtualNetworks/v/subnets/"


@pytest.fixture
def templates(imagebuilder_client):
    return imagebuilder_client.virtual_machine_image_templates


def refused(templates, body, name: str = "bad") -> HttpResponseError:
    with pytest.raises(HttpResponseError) as caught:
        templates.begin_create_or_update(RESOURCE_GROUP, name, body)
    assert caught.value.status_code == 400, caught.value.message
    return caught.value


def with_properties(**changes) -> dict:
    body = template_body()
    body["properties"].update(changes)
    return body


def test_a_template_without_identity_is_refused_with_azures_text(templates):
    body = template_body()
    del body["identity"]

    error = refused(templates, body).error

    assert error.code == "ValidationFailed"
    assert error.message == (f"Validation failed: 'ImageTemplate': Missing field 'identity'. {REFERENCE} for "
                             "details on fields required in the Image Builder Template.")


def test_the_identity_must_be_exactly_one_user_assigned_identity(templates):
    body = template_body()
    body["identity"]["userAssignedIdentities"][IDENTITY_ID.replace("aib-builder", "second")] = {}

    assert "Exactly one user assigned identity" in refused(templates, body).error.message


@pytest.mark.parametrize("name", ["has space", "x" * 65, "semi;colon", "ümlaut"])
def test_template_names_must_match_the_name_pattern(templates, name):
    assert refused(templates, template_body(), name=name).error.code == "ValidationFailed"


def test_a_64_character_name_is_fine(templates):
    template = templates.begin_create_or_update(RESOURCE_GROUP, "a" * 64, template_body()).result()

    assert template.name == "a" * 64


@pytest.mark.parametrize(("timeout", "ok"), [(0, True), (960, True), (961, False), (-1, False)])
def test_build_timeout_is_0_to_960(templates, timeout, ok):
    body = with_properties(buildTimeoutInMinutes=timeout)
    if ok:
        assert templates.begin_create_or_update(RESOURCE_GROUP, "t", body).result().provisioning_state == "Succeeded"
    else:
        assert "Field 'buildTimeoutInMinutes' has a bad value" in refused(templates, body).error.message


@pytest.mark.parametrize("customizer", [
    {"type": "Shell", "name": "both", "inline": ["ls"], "scriptUri": "https://example.com/a.sh"},
    {"type": "Shell", "name": "neither"},
    {"type": "PowerShell", "name": "neither"},
])
def test_a_script_needs_script_uri_or_inline_not_both(templates, customizer):
    message = refused(templates, template_body(customize=[customizer])).error.message

    assert message.startswith("Validation failed: 'ImageTemplate.properties.customize[0]': Exactly one of "
                              "'scriptUri' or 'inline'")


def test_run_as_system_needs_run_elevated(templates):
    customizer = {"type": "PowerShell", "name": "p", "inline": ["dir"], "runAsSystem": True}

    message = refused(templates, template_body(customize=[customizer])).error.message

    assert "'runAsSystem' can only be true when 'runElevated' is also true" in message


def test_replication_regions_and_target_regions_are_exclusive(templates):
    target = gallery_target(replicationRegions=["eastus"], targetRegions=[{"name": "westus2"}])

    message = refused(templates, template_body(distribute=[target])).error.message

    assert "Only one of 'replicationRegions' or 'targetRegions'" in message


def test_container_instance_subnet_needs_subnet_and_no_proxy_size(templates):
    without_subnet = with_properties(vmProfile={"vnetConfig": {"containerInstanceSubnetId": SUBNET + "aci"}})
    with_proxy = with_properties(vmProfile={"vnetConfig": {"subnetId": SUBNET + "build", "proxyVmSize": "Standard_A1_v2",
                                                           "containerInstanceSubnetId": SUBNET + "aci"}})

    assert "only be specified together with 'subnetId'" in refused(templates, without_subnet).error.message
    assert "'proxyVmSize' cannot be specified" in refused(templates, with_proxy).error.message


@pytest.mark.parametrize(("where", "field"), [
    ("properties", "vmboot"),
    ("properties.source", "Publisher"),
    ("properties.customize[0]", "Inline"),
    ("top", "apiVersion"),
])
def test_unknown_and_miscased_fields_are_refused_like_the_strict_decoder(templates, where, field):
    body = template_body()
    target = {"top": body, "properties": body["properties"], "properties.source": body["properties"]["source"],
              "properties.customize[0]": body["properties"]["customize"][0]}[where]
    target[field] = "x"

    error = refused(templates, body).error

    assert error.code == "ValidationFailed"
    assert error.message.startswith("Unmarshalling entity encountered error: unmarshalling type "
                                    "*v2025_10_01.ImageTemplate")
    assert f'unknown field "{field}"' in error.message


def test_a_miscased_discriminator_value_is_a_bad_value(templates):
    target = {**gallery_target(), "type": "sharedImage"}

    message = refused(templates, template_body(distribute=[target])).error.message

    assert message.startswith("Validation failed: 'ImageTemplate.properties': Field 'distribute[0].type' has a bad "
                              "value: 'sharedImage'.")


def test_wrong_json_types_are_refused(templates):
    message = refused(templates, with_properties(buildTimeoutInMinutes="60")).error.message

    assert "cannot unmarshal string" in message and "buildTimeoutInMinutes" in message


def test_read_only_fields_on_input_are_ignored(templates):
    body = template_body()
    body.update(id="/ignored", name="ignored", type="ignored", systemData={"createdBy": "someone"})
    body["properties"].update(provisioningState="Failed", lastRunStatus={"runState": "Succeeded"},
                              exactStagingResourceGroup="/subscriptions/x/resourceGroups/y",
                              provisioningError={"provisioningErrorCode": "Other", "message": "no"})
    body["properties"]["source"]["exactVersion"] = "1.2.3"
    body["identity"]["userAssignedIdentities"][IDENTITY_ID] = {"principalId": "p", "clientId": "c"}

    template = templates.begin_create_or_update(RESOURCE_GROUP, "ro", body).result()

    assert template.name == "ro"
    assert template.provisioning_state == "Succeeded"
    assert template.last_run_status is None
    assert template.source.exact_version is None
    assert template.identity.user_assigned_identities[IDENTITY_ID].principal_id != "p"


def test_powershell_flags_are_echoed_as_explicit_false(templates):
    customizer = {"type": "PowerShell", "name": "p", "inline": ["dir"]}

    template = templates.begin_create_or_update(RESOURCE_GROUP, "ps", template_body(customize=[customizer])).result()

    assert template.customize[0].run_elevated is False
    assert template.customize[0].run_as_system is False


@pytest.mark.parametrize(("change", "expected"), [
    ({"source": {"type": "PlatformImage", "publisher": "Canonical", "offer": "o", "sku": "s", "version": "latest",
                 "planInfo": {"planName": "n"}}}, "Missing field 'planProduct'"),
    ({"source": {"type": "ManagedImage"}}, "Missing field 'imageId'"),
    ({"source": {"type": "ManagedImage", "imageId": "not-an-id"}}, "Field 'imageId' has a bad value"),
    ({"source": {"type": "SharedImageVersion", "imageVersionId": "/subscriptions/x/nope"}},
     "Field 'imageVersionId' has a bad value"),
    ({"source": {"type": "Unknown"}}, "Field 'source.type' has a bad value: 'Unknown'"),
    ({"distribute": []}, "Missing field 'distribute'"),
    ({"distribute": [{"type": "VHD"}]}, "Missing field 'runOutputName'"),
    ({"distribute": [{"type": "VHD", "runOutputName": "bad name"}]}, "Field 'runOutputName' has a bad value"),
    ({"distribute": [{"type": "VHD", "runOutputName": "a"}, {"type": "VHD", "runOutputName": "A"}]},
     "used by more than one distribution target"),
    ({"distribute": [{"type": "ManagedImage", "runOutputName": "m", "location": "eastus"}]},
     "Missing field 'imageId'"),
    ({"distribute": [{**managed_target(), "location": None}]}, "Missing field 'location'"),
    ({"distribute": [{"type": "SharedImage", "runOutputName": "g"}]}, "Missing field 'galleryImageId'"),
    ({"distribute": [gallery_target(versioning={"scheme": "Newest"})]}, "Field 'versioning.scheme' has a bad value"),
    ({"distribute": [gallery_target(versioning={"scheme": "Latest", "major": -2})]}, "Field 'major' has a bad value"),
    ({"distribute": [gallery_target(targetRegions=[{"name": "eastus", "replicaCount": 0}])]},
     "Field 'replicaCount' has a bad value"),
    ({"distribute": [gallery_target(storageAccountType="Standard_GRS", replicationRegions=["eastus"])]},
     "Field 'storageAccountType' has a bad value"),
    ({"errorHandling": {"onCustomizerError": "Abort"}}, "Field 'onCustomizerError' has a bad value: 'Abort'"),
    ({"optimize": {"vmBoot": {"state": "enabled"}}}, "Field 'state' has a bad value: 'enabled'"),
    ({"autoRun": {"state": "On"}}, "Field 'state' has a bad value: 'On'"),
    ({"customize": [{"type": "WindowsRestart", "restartTimeout": "ten minutes"}]},
     "Field 'restartTimeout' has a bad value"),
    ({"customize": [{"type": "Shell", "inline": ["ls"], "sha256Checksum": "ABC"}]},
     "Field 'sha256Checksum' has a bad value"),
    ({"customize": [{"type": "PowerShell", "inline": ["ls"], "validExitCodes": ["0"]}]}, "cannot unmarshal string"),
    ({"customize": [{"type": "WindowsUpdate", "updateLimit": -1}]}, "Field 'updateLimit' has a bad value"),
    ({"customize": [{"type": "File", "sourceUri": "https://example.com/f"}]}, "Missing field 'destination'"),
    ({"vmProfile": {"osDiskSizeGB": -1}}, "Field 'osDiskSizeGB' has a bad value"),
    ({"vmProfile": {"userAssignedIdentities": ["not-an-arm-id"]}}, "Field 'userAssignedIdentities[0]' has a bad value"),
    ({"stagingResourceGroup": "/subscriptions/other-sub/resourceGroups/staging"},
     "Field 'stagingResourceGroup' has a bad value"),
    ({"stagingResourceGroup": "staging"}, "Field 'stagingResourceGroup' has a bad value"),
    ({"validate": {"inVMValidations": [{"type": "WindowsRestart"}]}}, "has a bad value: 'WindowsRestart'"),
])
def test_field_rules(templates, change, expected):
    body = template_body()
    for key, value in change.items():
        body["properties"][key] = copy.deepcopy(value)
        if key == "distribute":
            for item in body["properties"][key]:
                for name in [k for k, v in item.items() if v is None]:
                    del item[name]

    error = refused(templates, body).error

    assert error.code == "ValidationFailed"
    assert expected in error.message


def test_a_valid_full_template_is_accepted(templates):
    body = template_body(
        customize=[shell("a", "apt-get update"), {"type": "File", "name": "f", "sourceUri": "https://example.com/x",
                                                   "destination": "/tmp/x", "sha256Checksum": "0" * 64}],
        distribute=[gallery_target(targetRegions=[{"name": "eastus", "replicaCount": 2,
                                                   "storageAccountType": "Standard_ZRS"}],
                                   versioning={"scheme": "Latest", "major": 1}, replicationMode="Shallow"),
                    {"type": "VHD", "runOutputName": "vhd"}],
        optimize={"vmBoot": {"state": "Enabled"}},
        validate={"continueDistributeOnFailure": False, "inVMValidations": [shell("check", "true")]},
        errorHandling={"onCustomizerError": "abort", "onValidationError": "cleanup"},
        vmProfile={"vmSize": "Standard_D2ds_v4", "osDiskSizeGB": 64,
                   "userAssignedIdentities": [IDENTITY_ID],
                   "vnetConfig": {"subnetId": SUBNET + "build", "containerInstanceSubnetId": SUBNET + "aci"}},
        stagingResourceGroup=f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/aib-staging-web",
        autoRun={"state": "Disabled"}, managedResourceTags={"costCenter": "1234"},
        additionalDataDisks=[{"sizeGB": 32}], buildTimeoutInMinutes=120,
    )

    template = templates.begin_create_or_update(RESOURCE_GROUP, "full", body).result()

    assert template.provisioning_state == "Succeeded"
    assert template.exact_staging_resource_group.endswith("/resourceGroups/aib-staging-web")
