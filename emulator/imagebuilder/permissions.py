"""What Image Builder's template identity must be allowed to do (aib-reference-2 §2), as
(scope, action) pairs for app.services["authorization"].has_permission, and the failure texts.

Checked only when enforcement is on for the template's subscription (control API), at the
moment Azure uses the identity:
- template submission: scripts and files from Azure Storage (Storage Blob Data Reader: AIB
  reads them with the identity when the template is submitted) -> provisioning fails;
- run start, Building: a managed image or gallery source (read), an existing VNet (read, subnet
  join, also for containerInstanceSubnetId), build-VM identities (assign), a user-supplied
  staging group (Contributor-level writes; a group AIB creates gets Contributor from AIB);
- each distributor: managed image write/read/delete, gallery read and version write.
Pure: no I/O; the backend asks the authorization service.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

BLOB_READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
# A Contributor-level sample of what AIB deploys into a user-supplied staging group.
STAGING_ACTIONS = ("Microsoft.Storage/storageAccounts/write", "Microsoft.Compute/virtualMachines/write",
                   "Microsoft.Network/networkInterfaces/write", "Microsoft.Resources/deployments/write")
_BLOB_HOST = re.compile(r"^(?P<account>[a-z0-9]{3,24})\.blob\.core\.windows\.net$", re.IGNORECASE)


def template_identity(resource: dict) -> tuple[str, dict] | None:
    """(identity id, {"principalId", "clientId"}) of the template's user-assigned identity."""
    identities = (resource.get("identity") or {}).get("userAssignedIdentities") or {}
    for key, value in identities.items():
        return key, value or {}
    return None


def blob_scope(uri: str, subscription: str) -> str | None:
    """The scope of a blob URL: its container under the storage account. The emulator does not
    know which group holds the account, so the group segment is `*` (any group's grant counts)."""
    parts = urlsplit(uri)
    found = _BLOB_HOST.match(parts.hostname or "")
    if not found:
        return None
    container = (parts.path.strip("/").split("/") or [""])[0]
    return (f"/subscriptions/{subscription}/resourceGroups/*/providers/Microsoft.Storage/storageAccounts/"
            f"{found.group('account')}/blobServices/default/containers/{container}")


def script_uris(props: dict) -> list[str]:
    """scriptUri / sourceUri of customizers and in-VM validators, in template order."""
    items = [*(props.get("customize") or []), *((props.get("validate") or {}).get("inVMValidations") or [])]
    return [uri for item in items for uri in (item.get("scriptUri"), item.get("sourceUri")) if uri]


def build_checks(props: dict, source_id: str | None, staging: dict) -> list[tuple[str, str]]:
    """(scope, action) the Building phase needs."""
    checks: list[tuple[str, str]] = []
    source = props["source"]
    if source["type"] == "ManagedImage":
        checks.append((source["imageId"], "Microsoft.Compute/images/read"))
    elif source["type"] == "SharedImageVersion":
        version = source_id or source["imageVersionId"]
        definition = version.split("/versions/")[0]
        checks += [(definition.split("/images/")[0], "Microsoft.Compute/galleries/read"),
                   (definition, "Microsoft.Compute/galleries/images/read"),
                   (version, "Microsoft.Compute/galleries/images/versions/read")]
    profile = props.get("vmProfile") or {}
    vnet = profile.get("vnetConfig") or {}
    for subnet in (vnet.get("subnetId"), vnet.get("containerInstanceSubnetId")):
        if subnet:
            checks += [(subnet.split("/subnets/")[0], "Microsoft.Network/virtualNetworks/read"),
                       (subnet, "Microsoft.Network/virtualNetworks/subnets/join/action")]
    for identity in profile.get("userAssignedIdentities") or []:
        checks.append((identity, "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"))
    if staging["userSupplied"]:
        checks += [(staging["id"], action) for action in STAGING_ACTIONS]
    return checks


def distributor_checks(item: dict) -> list[tuple[str, str]]:
    if item["type"] == "ManagedImage":
        return [(item["imageId"], f"Microsoft.Compute/images/{verb}") for verb in ("write", "read", "delete")]
    if item["type"] == "SharedImage":
        target = item["galleryImageId"]
        definition = target.split("/versions/")[0]
        return [(definition.split("/images/")[0], "Microsoft.Compute/galleries/read"),
                (definition, "Microsoft.Compute/galleries/images/read"),
                (target, "Microsoft.Compute/galleries/images/versions/read"),
                (target, "Microsoft.Compute/galleries/images/versions/write")]
    return []


def authorization_failed(client_id: str, principal_id: str, action: str, scope: str) -> str:
    return (f"The client '{client_id}' with object id '{principal_id}' does not have authorization to perform action "
            f"'{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh "
            "your credentials.")


def build_failure(template: str, client_id: str, principal_id: str, action: str, scope: str) -> dict:
    """The Building failure: the run's operation error and lastRunStatus.message."""
    return {"code": "AuthorizationFailed",
            "message": f"Authorization failed for template '{template}': StatusCode=403 -- Original Error: "
                       f"Code=\"AuthorizationFailed\" Message=\"{authorization_failed(client_id, principal_id, action, scope)}\""}


def distributor_failure(item: dict, location: str, client_id: str, principal_id: str, action: str, scope: str) -> str:
    """One distributor's error (it becomes "[Distribute i] <this>" in the run's message)."""
    original = (f"StatusCode=403 -- Original Error: Code=\"AuthorizationFailed\" "
                f"Message=\"{authorization_failed(client_id, principal_id, action, scope)}\"")
    if item["type"] == "ManagedImage":
        return (f"Error publishing VHD to managed image:{item['imageId']}, Location:{item.get('location') or location}. "
                f"Error: compute.ImagesClient#CreateOrUpdate: Failure sending request: {original}")
    return (f"Error publishing MDI to Azure Compute Gallery: compute.GalleryImageVersionsClient#CreateOrUpdate: "
            f"Failure sending request: {original}")


def not_authorized_to_access(uri: str, troubleshooting: str) -> str:
    return (f"Not authorized to access the resource: {uri}. Please check the user assigned identity has the correct "
            f"permissions. For more troubleshooting steps go to {troubleshooting}.")
