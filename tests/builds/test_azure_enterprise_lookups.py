"""The preflight look-ups in builds/azure.py against the emulator, and their cache: regions,
Image Builder's regions, VM sizes, role assignments and definitions, identities, policy."""

from __future__ import annotations

from builds import azure, permissions
from tests.support.emulator import SUBSCRIPTION_ID
from tests.support.workers import create_identity, grant, identity_id

SUB = f"/subscriptions/{SUBSCRIPTION_ID}"


def arm_reads(emulator, since: int, operation: str) -> int:
    return len(emulator.requests(since, operation=operation))


def test_it_lists_the_subscriptions_regions(azure_emulator):
    regions = {item.name: item for item in azure.locations()}
    assert regions["eastus"].display_name == "East US"
    assert "westeurope" in regions
    assert "mars-north" not in regions


def test_it_knows_where_image_builder_is_offered(azure_emulator):
    offered = azure.provider_locations("Microsoft.VirtualMachineImages", "imageTemplates")
    assert "eastus" in offered


def test_it_reads_vm_sizes_with_their_capabilities(azure_emulator):
    skus = {sku.name: sku for sku in azure.vm_skus("eastus")}
    assert skus["Standard_D1_v2"].hyper_v_generations == ("V1",)
    assert skus["Standard_D2ds_v5"].vcpus == 2
    assert skus["Standard_D2ds_v5"].memory_gb == 8
    assert skus["Standard_D2ps_v5"].architecture == "Arm64"
    assert skus["Standard_M8ms"].trusted_launch is False
    assert skus["Standard_DC2as_v5"].confidential
    assert not skus["Standard_D2ds_v5"].confidential


def test_a_size_restricted_in_the_region_is_flagged(azure_emulator):
    skus = {sku.name: sku for sku in azure.vm_skus("westus2")}
    assert skus["Standard_D4ds_v5"].restricted
    assert not {sku.name: sku for sku in azure.vm_skus("eastus")}["Standard_D4ds_v5"].restricted


def test_it_reads_an_identity_and_none_when_absent(azure_emulator):
    found = azure.identity(identity_id("goldsmith-aib"))
    assert found.principal_id
    assert found.subscription == SUBSCRIPTION_ID
    assert azure.identity(identity_id("nobody")) is None


def test_effective_permissions_include_inherited_scopes(azure_emulator):
    principal = create_identity(azure_emulator, "reader-only")
    group = f"{SUB}/resourceGroups/goldsmith-galleries"
    grant(azure_emulator, principal, "Reader", group)
    assignments = azure.role_assignments(principal)
    definitions = azure.role_definitions()
    gallery = f"{group}/providers/Microsoft.Compute/galleries/goldsmith_gallery"
    assert permissions.allowed("Microsoft.Compute/galleries/read", gallery, assignments, definitions)
    assert not permissions.allowed("Microsoft.Compute/galleries/images/versions/write", gallery, assignments,
                                   definitions)


def test_each_kind_is_read_once_per_subscription_while_cached(azure_emulator):
    since = azure_emulator.last_seq()
    for _ in range(3):
        azure.locations()
        azure.vm_skus("eastus")
        azure.role_definitions()
        azure.role_assignments("00000000-0000-4000-9000-000000000001")
        azure.identity(identity_id("goldsmith-aib"))
        azure.policy_denies(SUB)
    assert arm_reads(azure_emulator, since, "Subscriptions_ListLocations") == 1
    assert arm_reads(azure_emulator, since, "ResourceSkus_List") == 1
    assert arm_reads(azure_emulator, since, "RoleDefinitions_List") == 1
    assert arm_reads(azure_emulator, since, "RoleAssignments_ListForScope") == 1
    assert arm_reads(azure_emulator, since, "UserAssignedIdentities_Get") == 1
    assert arm_reads(azure_emulator, since, "PolicyAssignments_List") == 1


def test_a_fresh_read_sees_a_grant_made_after_the_cache_filled(azure_emulator):
    principal = create_identity(azure_emulator, "late-grant")
    assert azure.role_assignments(principal) == ()
    grant(azure_emulator, principal, "Reader", SUB)
    assert azure.role_assignments(principal) == ()  # cached
    assert len(azure.role_assignments(principal, fresh=True)) == 1


def test_it_reads_deny_policy_assignments_that_apply_to_a_scope(azure_emulator):
    azure_emulator.control("POST", "policy/assignments", {
        "scope": SUB, "definition": "Allowed locations", "parameters": {"listOfAllowedLocations": ["westeurope"]},
        "name": "eu-only"}, expect=201)
    found = azure.policy_denies(f"{SUB}/resourceGroups/goldsmith-staging")
    assert [item.assignment_name for item in found] == ["eu-only"]
    assert found[0].parameters["listOfAllowedLocations"] == ["westeurope"]


def test_a_resource_group_reports_whether_it_is_empty(azure_emulator):
    assert azure.resource_group(SUBSCRIPTION_ID, "goldsmith-staging").resource_count == 0
    assert azure.resource_group(SUBSCRIPTION_ID, "goldsmith-galleries").resource_count == 1
    assert azure.resource_group(SUBSCRIPTION_ID, "no-such-group") is None
