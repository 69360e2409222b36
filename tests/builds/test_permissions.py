"""The permission table (builds/permissions.py): what Image Builder and the portal need where,
the RBAC arithmetic and the fix command. Pure."""

from __future__ import annotations

import pytest

from builds import permissions as perms
from builds.permissions import Assignment, RolePermissions

SUB = "22222222-2222-2222-2222-222222222222"
RG = f"/subscriptions/{SUB}/resourceGroups"
VNET = f"{RG}/net/providers/Microsoft.Network/virtualNetworks/build-vnet"
IDENTITY = f"{RG}/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aib"
GALLERY = f"{RG}/galleries/providers/Microsoft.Compute/galleries/g"


def body(**props):
    return {"location": "eastus", "identity": {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}},
            "properties": {"source": {"type": "PlatformImage"}, "distribute": [], **props}}


def rows(template, **kwargs):
    return {(row.who, row.path, row.scope, row.role) for row in perms.requirements(
        template, subscription=SUB, resource_group="images", **kwargs)}


@pytest.mark.parametrize(("props", "expected"), [
    ({"vmProfile": {"vnetConfig": {"subnetId": f"{VNET}/subnets/build"}}},
     (perms.TEMPLATE_IDENTITY, "properties.vmProfile.vnetConfig.subnetId", VNET, "Network Contributor")),
    ({"vmProfile": {"vnetConfig": {"subnetId": f"{VNET}/subnets/a", "containerInstanceSubnetId": f"{VNET}/subnets/b"}}},
     (perms.TEMPLATE_IDENTITY, "properties.vmProfile.vnetConfig.containerInstanceSubnetId", VNET,
      "Network Contributor")),
    ({"vmProfile": {"userAssignedIdentities": [IDENTITY]}},
     (perms.TEMPLATE_IDENTITY, "properties.vmProfile.userAssignedIdentities[0]", IDENTITY,
      "Managed Identity Operator")),
    ({"stagingResourceGroup": f"{RG}/stage"},
     (perms.TEMPLATE_IDENTITY, "properties.stagingResourceGroup", f"{RG}/stage", "Contributor")),
    ({"distribute": [{"type": "SharedImage", "galleryImageId": f"{GALLERY}/images/d"}]},
     (perms.TEMPLATE_IDENTITY, "properties.distribute[0].galleryImageId", f"{RG}/galleries", "Contributor")),
    ({"distribute": [{"type": "ManagedImage", "imageId": f"{RG}/out/providers/Microsoft.Compute/images/i"}]},
     (perms.TEMPLATE_IDENTITY, "properties.distribute[0].imageId", f"{RG}/out", "Contributor")),
    ({"source": {"type": "ManagedImage", "imageId": f"{RG}/src/providers/Microsoft.Compute/images/base"}},
     (perms.TEMPLATE_IDENTITY, "properties.source.imageId", f"{RG}/src/providers/Microsoft.Compute/images/base",
      "Reader")),
    ({"source": {"type": "SharedImageVersion", "imageVersionId": f"{GALLERY}/images/d/versions/1.0.0"}},
     (perms.TEMPLATE_IDENTITY, "properties.source.imageVersionId", GALLERY, "Reader")),
    ({}, (perms.PORTAL, "location", f"{RG}/images", "Contributor")),
    ({}, (perms.PORTAL, "identity.userAssignedIdentities", IDENTITY, "Managed Identity Operator")),
])
def test_each_setting_needs_its_permission(props, expected):
    assert expected in rows(body(**props))


def test_scripts_in_azure_storage_need_storage_blob_data_reader_on_the_container():
    template = body(customize=[{"type": "Shell", "name": "s",
                                "scriptUri": "https://acct1.blob.core.windows.net/scripts/a.sh"}])
    row = next(row for row in perms.requirements(template, subscription=SUB, resource_group="images") if row.data)
    assert row.role == "Storage Blob Data Reader"
    assert row.scope.endswith("/storageAccounts/acct1/blobServices/default/containers/scripts")
    assert "az storage account show --name acct1" in row.grant_scope


def test_a_staging_group_image_builder_creates_needs_nothing():
    # Of the template identity (Image Builder grants it Contributor there); the portal still
    # needs to read the log in it (see the Storage Blob Data Reader test below).
    assert not any(row.path == "properties.stagingResourceGroup" and row.who == perms.TEMPLATE_IDENTITY
                   for row in perms.requirements(
        body(stagingResourceGroup=f"{RG}/goldsmith-staging-x"), subscription=SUB, resource_group="images",
        staging_exists=False))


CONTRIBUTOR = RolePermissions("Contributor", actions=("*",), not_actions=("Microsoft.Authorization/*/Write",))
READER = RolePermissions("Reader", actions=("*/read",))
NETWORK = RolePermissions("Network Contributor", actions=("Microsoft.Network/*",))
BLOB_READER = RolePermissions("Storage Blob Data Reader", data_actions=(perms.BLOB_READ,))
DEFINITIONS = {"c": CONTRIBUTOR, "r": READER, "n": NETWORK, "b": BLOB_READER}
SUBNET = perms.Requirement(perms.TEMPLATE_IDENTITY, "join", VNET, perms.SUBNET_ACTIONS, "Network Contributor", "p")


@pytest.mark.parametrize(("assignments", "lacking"), [
    ([], perms.SUBNET_ACTIONS),
    ([Assignment(f"/subscriptions/{SUB}", "/providers/Microsoft.Authorization/roleDefinitions/c")], ()),
    ([Assignment(f"{RG}/net", "n")], ()),  # inherited from the group
    ([Assignment(VNET, "r")], ("Microsoft.Network/virtualNetworks/subnets/join/action",)),
    ([Assignment(f"{VNET}/subnets/other", "n")], perms.SUBNET_ACTIONS),  # below the scope: no use
    ([Assignment(f"{RG}/elsewhere", "c")], perms.SUBNET_ACTIONS),
    ([Assignment("/", "c")], ()),  # the root
    ([Assignment(VNET, "unknown-role")], perms.SUBNET_ACTIONS),
])
def test_assignments_grant_what_their_roles_allow_at_and_below_their_scope(assignments, lacking):
    assert perms.missing(SUBNET, assignments, DEFINITIONS) == lacking


def test_not_actions_take_away_what_actions_give():
    write_roles = perms.Requirement(perms.PORTAL, "x", f"{RG}/a", ("Microsoft.Authorization/roleAssignments/write",),
                                    "Owner", "p")
    assert perms.missing(write_roles, [Assignment(f"{RG}/a", "c")], DEFINITIONS) == write_roles.actions


def test_data_actions_come_only_from_data_roles():
    blob = perms.Requirement(perms.TEMPLATE_IDENTITY, "read", f"/subscriptions/{SUB}/resourceGroups/*/providers/"
                             "Microsoft.Storage/storageAccounts/a/blobServices/default/containers/c", (perms.BLOB_READ,),
                             "Storage Blob Data Reader", "p", data=True)
    assert perms.missing(blob, [Assignment(f"/subscriptions/{SUB}", "c")], DEFINITIONS) == (perms.BLOB_READ,)
    assert perms.missing(blob, [Assignment(f"{RG}/storage", "b")], DEFINITIONS) == ()


def test_the_fix_is_the_exact_az_command():
    problem = perms.problem(SUBNET, "pid-1", perms.SUBNET_ACTIONS)
    assert problem.rule == "permission.missing"
    assert problem.message.endswith(f'az role assignment create --assignee pid-1 --role "Network Contributor" '
                                    f"--scope {VNET}")


@pytest.mark.parametrize(("props", "scope"), [
    ({}, f"/subscriptions/{SUB}"),  # Image Builder names the group at run time: only the subscription covers it
    ({"stagingResourceGroup": f"{RG}/stage"}, f"{RG}/stage"),
])
def test_the_portal_needs_storage_blob_data_reader_where_the_build_log_is_written(props, scope):
    [row] = [row for row in perms.requirements(body(**props), subscription=SUB, resource_group="images")
             if row.who == perms.PORTAL and row.data]
    assert (row.scope, row.role, row.actions, row.severity) == (scope, "Storage Blob Data Reader",
                                                                (perms.BLOB_READ,), "warning")
    assert perms.problem(row, "p", row.actions).severity == "warning"
