"""The template schema rules shared by the importer, forms, wizard, API and checktemplate."""

import copy

import pytest

from builds import schema

IDENTITY = ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/"
            "userAssignedIdentities/aib")
GALLERY_IMAGE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/def"

VALID = {
    "location": "eastus",
    "identity": {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}},
    "properties": {
        "source": {"type": "PlatformImage", "publisher": "Canonical", "offer": "ubuntu", "sku": "22_04-lts-gen2",
                   "version": "latest"},
        "customize": [{"type": "Shell", "name": "a", "inline": ["echo hi"]}],
        "distribute": [{"type": "SharedImage", "runOutputName": "out", "galleryImageId": GALLERY_IMAGE,
                        "targetRegions": [{"name": "eastus", "replicaCount": 1}]}],
    },
}


def with_change(path, value):
    body = copy.deepcopy(VALID)
    target = body
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


def rules(body):
    return {(p.rule, p.path) for p in schema.check_template(body)}


def test_it_accepts_a_valid_template():
    assert schema.check_template(VALID) == []


@pytest.mark.parametrize("body, rule, path", [
    (with_change(["identity"], KeyError), "schema.missing-field", "identity"),
    (with_change(["properties", "vmboot"], {}), "schema.unknown-field", "properties.vmboot"),
    (with_change(["properties", "source", "Publisher"], "x"), "schema.unknown-field", "properties.source.Publisher"),
    (with_change(["properties", "buildTimeoutInMinutes"], 961), "schema.build-timeout", "properties.buildTimeoutInMinutes"),
    (with_change(["properties", "buildTimeoutInMinutes"], "60"), "schema.type", "properties.buildTimeoutInMinutes"),
    (with_change(["properties", "customize"], [{"type": "Shell", "scriptUri": "https://x/s.sh", "inline": ["a"]}]),
     "schema.script-source", "properties.customize[0].scriptUri"),
    (with_change(["properties", "customize"], [{"type": "Shell", "name": "n"}]),
     "schema.script-source", "properties.customize[0].inline"),
    (with_change(["properties", "customize"], [{"type": "PowerShell", "inline": ["a"], "runAsSystem": True}]),
     "schema.run-as-system", "properties.customize[0].runAsSystem"),
    (with_change(["properties", "customize"], [{"type": "WindowsRestart", "restartTimeout": "5 minutes"}]),
     "schema.restart-timeout", "properties.customize[0].restartTimeout"),
    (with_change(["properties", "customize"], [{"type": "Shell", "scriptUri": "https://x/s.sh",
                                                 "sha256Checksum": "ABC"}]),
     "schema.sha256", "properties.customize[0].sha256Checksum"),
    (with_change(["properties", "customize"], [{"type": "Bash", "inline": ["a"]}]),
     "schema.bad-value", "properties.customize[0].type"),
    (with_change(["properties", "customize"], [{"type": "File", "sourceUri": "https://x/f"}]),
     "schema.missing-field", "properties.customize[0].destination"),
    (with_change(["properties", "distribute"], [{"type": "VHD", "runOutputName": "bad name!"}]),
     "schema.run-output-name", "properties.distribute[0].runOutputName"),
    (with_change(["properties", "distribute"], [{"type": "VHD", "runOutputName": "a"}, {"type": "VHD", "runOutputName": "a"}]),
     "schema.run-output-unique", "properties.distribute[1].runOutputName"),
    (with_change(["properties", "distribute"], [{"type": "SharedImage", "runOutputName": "a", "galleryImageId": GALLERY_IMAGE,
                                                  "replicationRegions": ["eastus"], "targetRegions": [{"name": "eastus"}]}]),
     "schema.regions-exclusive", "properties.distribute[0].targetRegions"),
    (with_change(["properties", "distribute"], []), "schema.distribute-empty", "properties.distribute"),
    (with_change(["properties", "distribute"], [{"type": "ManagedImage", "runOutputName": "a"}]),
     "schema.missing-field", "properties.distribute[0].imageId"),
    (with_change(["properties", "vmProfile"], {"vnetConfig": {"containerInstanceSubnetId":
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/aci"}}),
     "schema.aci-needs-subnet", "properties.vmProfile.vnetConfig.containerInstanceSubnetId"),
    (with_change(["properties", "errorHandling"], {"onCustomizerError": "Abort"}),
     "schema.bad-value", "properties.errorHandling.onCustomizerError"),
    (with_change(["properties", "source"], {"type": "PlatformImage", "publisher": "p", "offer": "o", "sku": "s",
                                            "version": "1", "planInfo": {"planName": "x"}}),
     "schema.missing-field", "properties.source.planInfo.planProduct"),
    (with_change(["identity", "userAssignedIdentities"], {}), "schema.identity-count", "identity.userAssignedIdentities"),
    (with_change(["tags"], {"t": "x" * 257}), "schema.tag-value", "tags.t"),
])
def test_it_names_the_rule_and_field_of_each_problem(body, rule, path):
    assert (rule, path) in rules(body)


def test_it_suggests_the_right_case_for_a_mis_cased_field():
    problems = schema.check_template(with_change(["properties", "vmProfile"], {"VmSize": "Standard_D2s_v3"}))
    assert problems[0].message.endswith("Did you mean 'vmSize'?")


def test_it_accepts_read_only_fields_on_input_and_strips_them():
    body = with_change(["properties", "provisioningState"], "Succeeded")
    body["properties"]["source"]["exactVersion"] = "22.04.1"
    assert schema.check_template(body) == []
    stripped = schema.strip_readonly(body)
    assert "provisioningState" not in stripped["properties"]
    assert "exactVersion" not in stripped["properties"]["source"]


def test_it_refuses_read_only_fields_when_asked_to():
    body = with_change(["properties", "provisioningState"], "Succeeded")
    problems = schema.check_shape(body, schema.TEMPLATE, allow_readonly=False)
    assert [(p.rule, p.path) for p in problems] == [("schema.read-only", "properties.provisioningState")]


def test_it_checks_steps_against_the_os():
    problems = schema.check_customizer({"type": "PowerShell", "inline": ["a"]}, "customize[0]", os_type="Linux")
    assert [(p.rule, p.path) for p in problems] == [("schema.os-mismatch", "customize[0].type")]


def test_it_warns_about_build_timeouts_too_short_to_work():
    problems = schema.check_template(with_change(["properties", "buildTimeoutInMinutes"], 3))
    assert [(p.rule, p.severity) for p in problems] == [("schema.build-timeout-short", "warning")]
    assert schema.errors(problems) == []
