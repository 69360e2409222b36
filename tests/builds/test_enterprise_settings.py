"""The enterprise settings: schema per api-version, policy rules (require, forbid, fix), the
region and VM size rules and the Azure Policy evaluator. Pure, table-driven."""

from __future__ import annotations

import pytest

from builds import azpolicy, placement, schema, validation
from builds.validation import PolicyRules

SUB = "/subscriptions/22222222-2222-2222-2222-222222222222"
VNET = f"{SUB}/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v"


def body(**props):
    return {"location": "eastus", "properties": {"source": {"type": "PlatformImage"}, "distribute": [], **props}}


def policy_rules(template, **rules):
    return {(p.rule, p.path) for p in validation.check_enterprise_policy(template["properties"], PolicyRules(**rules))}


@pytest.mark.parametrize(("rules", "props", "expected"), [
    ({"staging_resource_group": "azure"}, {"stagingResourceGroup": f"{SUB}/resourceGroups/s"},
     ("policy.staging-resource-group", "properties.stagingResourceGroup")),
    ({"staging_resource_group": "named"}, {}, ("policy.staging-resource-group", "properties.stagingResourceGroup")),
    ({"staging_resource_group_prefix": "goldsmith-"}, {"stagingResourceGroup": f"{SUB}/resourceGroups/mine"},
     ("policy.staging-prefix", "properties.stagingResourceGroup")),
    ({"required_managed_resource_tags": ("cost-center",)}, {},
     ("policy.managed-resource-tag", "properties.managedResourceTags.cost-center")),
    ({"required_managed_resource_tags": ("owner=security",)}, {"managedResourceTags": {"owner": "web"}},
     ("policy.managed-resource-tag", "properties.managedResourceTags.owner")),
    ({"network": "private"}, {}, ("policy.network", "properties.vmProfile.vnetConfig.subnetId")),
    ({"network": "public"}, {"vmProfile": {"vnetConfig": {"subnetId": f"{VNET}/subnets/a"}}},
     ("policy.network", "properties.vmProfile.vnetConfig")),
    ({"allowed_subnets": (f"{VNET}/subnets/ok",)}, {"vmProfile": {"vnetConfig": {"subnetId": f"{VNET}/subnets/no"}}},
     ("policy.subnet", "properties.vmProfile.vnetConfig.subnetId")),
    ({"isolated_builds": "required"}, {"vmProfile": {"vnetConfig": {"subnetId": f"{VNET}/subnets/a"}}},
     ("policy.isolated-build", "properties.vmProfile.vnetConfig.containerInstanceSubnetId")),
    ({"allowed_proxy_vm_sizes": ("Standard_A1_v2",)},
     {"vmProfile": {"vnetConfig": {"subnetId": f"{VNET}/subnets/a", "proxyVmSize": "Standard_D2s_v3"}}},
     ("policy.proxy-vm-size", "properties.vmProfile.vnetConfig.proxyVmSize")),
    ({"on_customizer_error": "abort"}, {}, ("policy.error-handling", "properties.errorHandling.onCustomizerError")),
    ({"on_validation_error": "abort"}, {"errorHandling": {"onValidationError": "cleanup"}},
     ("policy.error-handling", "properties.errorHandling.onValidationError")),
    ({"vm_boot_optimization": "Enabled"}, {}, ("policy.vm-boot", "properties.optimize.vmBoot.state")),
    ({"max_replica_count": 2}, {"distribute": [{"type": "SharedImage", "targetRegions": [
        {"name": "eastus", "replicaCount": 3}]}]},
     ("policy.replica-count", "properties.distribute[0].targetRegions[0].replicaCount")),
    ({"allowed_storage_account_types": ("Standard_ZRS",)}, {"distribute": [{"type": "SharedImage", "targetRegions": [
        {"name": "eastus"}]}]},
     ("policy.storage-account-type", "properties.distribute[0].targetRegions[0].storageAccountType")),
    ({"gallery_versioning": "Source"}, {"distribute": [{"type": "SharedImage", "versioning": {"scheme": "Latest"}}]},
     ("policy.versioning", "properties.distribute[0].versioning")),
    ({"additional_data_disks": False}, {"additionalDataDisks": [{"sizeGB": 10}]},
     ("policy.data-disks", "properties.additionalDataDisks")),
    ({"max_data_disk_size_gb": 64}, {"additionalDataDisks": [{"sizeGB": 128}]},
     ("policy.data-disk-size", "properties.additionalDataDisks[0].sizeGB")),
])
def test_each_policy_rule_refuses_what_it_forbids(rules, props, expected):
    assert expected in policy_rules(body(**props), **rules)


@pytest.mark.parametrize(("rules", "props"), [
    ({"staging_resource_group": "named", "staging_resource_group_prefix": "goldsmith-"},
     {"stagingResourceGroup": f"{SUB}/resourceGroups/goldsmith-staging-1"}),
    ({"required_managed_resource_tags": ("owner=security",)}, {"managedResourceTags": {"owner": "security"}}),
    ({"network": "private", "allowed_subnets": (VNET,)}, {"vmProfile": {"vnetConfig": {"subnetId": f"{VNET}/subnets/a"}}}),
    ({"on_customizer_error": "cleanup"}, {}),  # Azure's default
    ({"on_customizer_error": "abort"}, {"errorHandling": {"onCustomizerError": "abort"}}),
    ({"gallery_versioning": "Latest"}, {"distribute": [{"type": "SharedImage", "versioning": {"scheme": "Latest"}}]}),
    ({}, {"additionalDataDisks": [{"sizeGB": 10}], "stagingResourceGroup": f"{SUB}/resourceGroups/x"}),
])
def test_a_template_that_complies_passes(rules, props):
    assert policy_rules(body(**props), **rules) == set()


@pytest.mark.parametrize(("data", "path"), [
    ({"network": "cloud"}, "network"),
    ({"on_customizer_error": "stop"}, "on_customizer_error"),
    ({"max_replica_count": 101}, "max_replica_count"),
    ({"allowed_subnets": ["not-an-id"]}, "allowed_subnets[0]"),
    ({"allowed_storage_account_types": ["Premium_ZRS"]}, "allowed_storage_account_types[0]"),
    ({"staging_resource_group_prefix": "bad/prefix"}, "staging_resource_group_prefix"),
])
def test_bad_policy_input_is_refused(data, path):
    assert ("policy.rules", path) in {(p.rule, p.path) for p in validation.check_policy_rules(data)}


def test_the_new_rules_round_trip_through_json():
    rules = PolicyRules(network="private", required_managed_resource_tags=("a=b",), max_replica_count=3,
                        additional_data_disks=False)
    assert PolicyRules.from_json(rules.as_json()) == rules
    assert validation.check_policy_rules(rules.as_json()) == []


@pytest.mark.parametrize(("api_version", "props", "path"), [
    ("2024-02-01", {"additionalDataDisks": [{"sizeGB": 10}]}, "properties.additionalDataDisks"),
    ("2023-07-01", {"managedResourceTags": {"a": "b"}}, "properties.managedResourceTags"),
    ("2022-07-01", {"errorHandling": {"onCustomizerError": "abort"}}, "properties.errorHandling"),
    ("2022-02-14", {"optimize": {"vmBoot": {"state": "Enabled"}}}, "properties.optimize.vmBoot"),
    ("2021-10-01", {"stagingResourceGroup": f"{SUB}/resourceGroups/s"}, "properties.stagingResourceGroup"),
])
def test_settings_need_their_api_version(api_version, props, path):
    assert [(p.rule, p.path) for p in schema.check_api_version(props, api_version)] == [("schema.api-version", path)]
    assert schema.check_api_version(props) == []  # 2025-10-01 accepts all of them


def test_the_schema_accepts_every_setting_at_2025_10_01():
    template = {"location": "eastus", "identity": {"type": "UserAssigned", "userAssignedIdentities": {
        f"{SUB}/resourceGroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/i": {}}},
        "properties": {"source": {"type": "PlatformImage", "publisher": "p", "offer": "o", "sku": "s",
                                  "version": "latest"},
                       "distribute": [{"type": "SharedImage", "runOutputName": "g",
                                       "galleryImageId": f"{SUB}/resourceGroups/g/providers/Microsoft.Compute/"
                                                         "galleries/x/images/d",
                                       "targetRegions": [{"name": "eastus", "replicaCount": 2,
                                                          "storageAccountType": "Standard_ZRS"}],
                                       "versioning": {"scheme": "Latest", "major": 2}}],
                       "stagingResourceGroup": f"{SUB}/resourceGroups/goldsmith-staging",
                       "managedResourceTags": {"cost-center": "42"},
                       "vmProfile": {"vnetConfig": {"subnetId": f"{VNET}/subnets/a",
                                                    "containerInstanceSubnetId": f"{VNET}/subnets/aci"}},
                       "errorHandling": {"onCustomizerError": "abort", "onValidationError": "cleanup"},
                       "optimize": {"vmBoot": {"state": "Enabled"}},
                       "additionalDataDisks": [{"sizeGB": 64}]}}
    assert schema.errors(schema.check_template(template)) == []


def test_the_container_instance_subnet_must_share_the_vnet():
    profile = {"vnetConfig": {"subnetId": f"{VNET}/subnets/a", "containerInstanceSubnetId":
                              f"{VNET}2/subnets/aci"}}
    assert "schema.aci-same-vnet" in {p.rule for p in schema.check_vm_profile(profile, "p")}


# --- Regions and VM sizes ----------------------------------------------------------------------

KNOWN = {"eastus": "East US", "westeurope": "West Europe", "northeurope": "North Europe", "westus2": "West US 2"}


@pytest.mark.parametrize(("template", "expected"), [
    ({"location": "mars-north"}, ("region.unknown", "location")),
    ({"location": "eastus", "properties": {"distribute": [{"type": "SharedImage", "targetRegions": [
        {"name": "westeurop"}]}]}}, ("region.unknown", "properties.distribute[0].targetRegions[0].name")),
    ({"location": "westus2"}, ("region.no-image-builder", "location")),
])
def test_region_rules(template, expected):
    assert expected in {(p.rule, p.path) for p in placement.check_regions(template, KNOWN, ["eastus", "westeurope"])}


def test_a_typo_names_the_nearest_regions():
    [problem] = placement.check_regions({"location": "north-europe"}, KNOWN, ())
    assert "Did you mean northeurope" in problem.message


class Sku:
    def __init__(self, name, vcpus=2, memory_gb=8.0, gens=("V1", "V2"), arch="x64", tl=True, cvm="",
                 disks=4, os_mb=1047552, restricted=False):
        self.name, self.vcpus, self.memory_gb, self.hyper_v_generations = name, vcpus, memory_gb, gens
        self.architecture, self.trusted_launch, self.confidential = arch, tl, cvm
        self.max_data_disks, self.os_vhd_size_mb, self.restricted = disks, os_mb, restricted


SKUS = [Sku("Standard_D1_v2", 1, 3.5, gens=("V1",), tl=False), Sku("Standard_D2ds_v5"),
        Sku("Standard_M8ms", 8, 218, tl=False), Sku("Standard_DC2as_v5", gens=("V2",), cvm="SNP"),
        Sku("Standard_D2ps_v5", arch="Arm64", gens=("V2",)), Sku("Standard_D4ds_v5", 4, 16, restricted=True),
        Sku("Standard_B1s", 1, 1, disks=2, os_mb=30720)]


@pytest.mark.parametrize(("size", "needs", "rule"), [
    ("Standard_Nope", placement.Needs(), "vm-size.unavailable"),
    ("Standard_D4ds_v5", placement.Needs(), "vm-size.unavailable"),
    ("Standard_D1_v2", placement.Needs(generation="V2"), "vm-size.generation"),
    ("Standard_M8ms", placement.Needs(generation="V2", security=placement.TRUSTED_LAUNCH), "vm-size.security-type"),
    ("Standard_D2ds_v5", placement.Needs(security=placement.CONFIDENTIAL), "vm-size.security-type"),
    ("Standard_D2ps_v5", placement.Needs(architecture="x64"), "vm-size.architecture"),
    ("Standard_B1s", placement.Needs(os_disk_gb=64), "vm-size.os-disk"),
    ("Standard_B1s", placement.Needs(data_disks=3), "vm-size.data-disks"),
])
def test_vm_size_rules_name_sizes_that_fit(size, needs, rule):
    problems = placement.check_vm_size(size, "properties.vmProfile.vmSize", SKUS, needs, location="eastus")
    assert rule in {p.rule for p in problems}
    assert "Sizes that fit:" in problems[0].message or "No size" in problems[0].message


def test_a_size_that_fits_passes():
    assert placement.check_vm_size("Standard_DC2as_v5", "p", SKUS, placement.Needs(
        generation="V2", security=placement.CONFIDENTIAL), location="eastus") == []


def test_size_choices_show_vcpus_memory_and_price():
    choices = placement.size_choices(SKUS, {"Standard_D2ds_v5": 0.113}, currency="USD",
                                     needs=placement.Needs(generation="V2"))
    by_name = {choice.name: choice for choice in choices}
    assert by_name["Standard_D2ds_v5"].label == "Standard_D2ds_v5: 2 vCPU, 8 GB, about 0.11 USD per build-hour"
    assert "Standard_D1_v2" not in by_name  # Gen1 only
    assert "Standard_D4ds_v5" not in by_name  # restricted


# --- Azure Policy ------------------------------------------------------------------------------

ALLOWED_LOCATIONS = {"if": {"not": {"field": "location", "in": "[parameters('listOfAllowedLocations')]"}},
                     "then": {"effect": "deny"}}
REQUIRE_TAG = {"if": {"field": "[concat('tags[', parameters('tagName'), ']')]", "exists": "false"},
               "then": {"effect": "deny"}}
NOT_ALLOWED_TYPES = {"if": {"field": "type", "in": "[parameters('listOfResourceTypesNotAllowed')]"},
                     "then": {"effect": "deny"}}


@pytest.mark.parametrize(("rule", "parameters", "props", "denied"), [
    (ALLOWED_LOCATIONS, {"listOfAllowedLocations": ["westeurope"]}, {}, True),
    (ALLOWED_LOCATIONS, {"listOfAllowedLocations": ["eastus"]}, {}, False),
    (NOT_ALLOWED_TYPES, {"listOfResourceTypesNotAllowed": ["Microsoft.Network/publicIPAddresses"]}, {}, True),
    (NOT_ALLOWED_TYPES, {"listOfResourceTypesNotAllowed": ["Microsoft.Network/publicIPAddresses"]},
     {"vmProfile": {"vnetConfig": {"subnetId": f"{VNET}/subnets/a"}}}, False),
])
def test_policy_rules_against_the_staging_resources(rule, parameters, props, denied):
    resources = azpolicy.staging_resources(body(**props))
    assert any(azpolicy.denies(rule, parameters, resource) for resource in resources) is denied


def test_an_expression_the_evaluator_does_not_model_is_unknown():
    assert azpolicy.denies(REQUIRE_TAG, {"tagName": "x"}, azpolicy.staging_resources(body())[0]) is None
    rule = {"if": {"field": "tags['cost-center']", "exists": "false"}, "then": {"effect": "deny"}}
    resources = azpolicy.staging_resources(body(managedResourceTags={"cost-center": "1"}))
    assert not any(azpolicy.denies(rule, {}, resource) for resource in resources)
