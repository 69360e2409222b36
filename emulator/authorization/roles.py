"""Built-in role definitions: real names (GUIDs) and permissions of the roles that matter to
Goldsmith and Image Builder (Azure's "Azure built-in roles" reference; permission lists trimmed
to what the emulator's checks touch, never widened).

Image Builder has no built-in role of its own: the documented pattern (aib-reference-2 §2.1) is
two custom roles created at the image resource group, "Azure Image Builder Service Image
Creation Role" (the compute actions in IMAGE_CREATION_ACTIONS) and "Azure Image Builder
Service Networking Role" (NETWORKING_ACTIONS), with that group as the assignable scope. Tests
create them through the role definitions API (PUT with type CustomRole) or grant Contributor.
"""

from __future__ import annotations


def _role(guid: str, name: str, description: str, actions: list[str], not_actions: list[str] | None = None,
          data_actions: list[str] | None = None, not_data_actions: list[str] | None = None) -> dict:
    return {"name": guid, "roleName": name, "description": description, "type": "BuiltInRole",
            "permissions": [{"actions": actions, "notActions": not_actions or [], "dataActions": data_actions or [],
                             "notDataActions": not_data_actions or []}],
            "assignableScopes": ["/"]}


_BLOB = "Microsoft.Storage/storageAccounts/blobServices/containers"

BUILT_IN_ROLES: tuple[dict, ...] = (
    _role("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner",
          "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.", ["*"]),
    _role("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor",
          "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage "
          "assignments in Azure Blueprints, or share image galleries.", ["*"],
          ["Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
           "Microsoft.Authorization/elevateAccess/Action", "Microsoft.Blueprint/blueprintAssignments/write",
           "Microsoft.Blueprint/blueprintAssignments/delete", "Microsoft.Compute/galleries/share/action",
           "Microsoft.Purview/consents/write", "Microsoft.Purview/consents/delete",
           "Microsoft.Resources/deploymentStacks/manageDenySetting/action", "Microsoft.Subscription/cancel/action",
           "Microsoft.Subscription/enable/action"]),
    _role("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader", "View all resources, but does not allow you to make any "
          "changes.", ["*/read"]),
    _role("18d7d88d-d35e-4fb5-a5c3-7773c20a72d9", "User Access Administrator",
          "Lets you manage user access to Azure resources.", ["*/read", "Microsoft.Authorization/*",
                                                               "Microsoft.Support/*"]),
    _role("f1a07417-d97a-45cb-824c-7a7467783830", "Managed Identity Operator", "Read and Assign User Assigned "
          "Identity", ["Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
                       "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
                       "Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*",
                       "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Resources/deployments/*",
                       "Microsoft.Support/*"]),
    _role("4d97b98b-1d4f-4787-a291-c67834d212e7", "Network Contributor", "Lets you manage networks, but not access "
          "to them.", ["Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*", "Microsoft.Network/*",
                       "Microsoft.ResourceHealth/availabilityStatuses/read", "Microsoft.Resources/deployments/*",
                       "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*"]),
    _role("9980e02c-c2be-4d73-94e8-173b1dc7cf3c", "Virtual Machine Contributor", "Create and manage virtual "
          "machines, manage disks, install and run software, reset password of the root user of the virtual machine "
          "using VM extensions, and manage local user accounts using VM extensions. This role does not grant you "
          "management access to the virtual network or storage account the virtual machines are connected to.",
          ["Microsoft.Authorization/*/read", "Microsoft.Compute/availabilitySets/*", "Microsoft.Compute/locations/*",
           "Microsoft.Compute/virtualMachines/*", "Microsoft.Compute/virtualMachineScaleSets/*",
           "Microsoft.Compute/cloudServices/*", "Microsoft.Compute/disks/write", "Microsoft.Compute/disks/read",
           "Microsoft.Compute/disks/delete", "Microsoft.Network/networkInterfaces/*",
           "Microsoft.Network/virtualNetworks/read", "Microsoft.Network/virtualNetworks/subnets/join/action",
           "Microsoft.Resources/deployments/*", "Microsoft.Resources/subscriptions/resourceGroups/read",
           "Microsoft.Storage/storageAccounts/listKeys/action", "Microsoft.Storage/storageAccounts/read",
           "Microsoft.Support/*"]),
    _role("2a2b9908-6ea1-4ae2-8e65-a410df84e7d1", "Storage Blob Data Reader", "Allows for read access to Azure "
          "Storage blob containers and data", [f"{_BLOB}/read",
                                               "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"],
          data_actions=[f"{_BLOB}/blobs/read"]),
    _role("ba92f5b4-2d11-453d-a403-e96b0029c9fe", "Storage Blob Data Contributor", "Allows for read, write and "
          "delete access to Azure Storage blob containers and data", [f"{_BLOB}/delete", f"{_BLOB}/read",
                                                                      f"{_BLOB}/write",
                                                                      "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"],
          data_actions=[f"{_BLOB}/blobs/delete", f"{_BLOB}/blobs/read", f"{_BLOB}/blobs/write",
                        f"{_BLOB}/blobs/move/action", f"{_BLOB}/blobs/add/action"]),
)

# Image Builder's documented custom roles (aib-reference-2 §2.1), for tests and the README.
IMAGE_CREATION_ACTIONS = (
    "Microsoft.Compute/galleries/read", "Microsoft.Compute/galleries/images/read",
    "Microsoft.Compute/galleries/images/versions/read", "Microsoft.Compute/galleries/images/versions/write",
    "Microsoft.Compute/images/write", "Microsoft.Compute/images/read", "Microsoft.Compute/images/delete",
)
NETWORKING_ACTIONS = ("Microsoft.Network/virtualNetworks/read", "Microsoft.Network/virtualNetworks/subnets/join/action")
