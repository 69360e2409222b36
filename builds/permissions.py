"""What Image Builder and the portal must be allowed to do, where, as a table; and the RBAC
arithmetic that says whether role assignments grant it. Pure: no Django, no I/O.

The table (`requirements(body, ...)`) follows ../shared/docs/aib-reference-2.md §2 and is the
one the docs print (docs/validation.md, "Permissions"). Each row names who needs it (the
template's user-assigned identity, or the portal's own principal), the scope, the actions (or
data actions), the template path it comes from, and the built-in role the fix suggests: the
least one that holds every action of the row.

`missing(requirement, assignments, definitions)` answers which actions of a row no assignment
at the scope or above grants, with RBAC's wildcards (`*`, `*/read`, `Microsoft.Network/*`,
case-insensitive) and notActions; `fix_command` is the exact `az role assignment create` line.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from builds.schema import Problem, listed

TEMPLATE_IDENTITY = "template identity"
PORTAL = "portal"

BLOB_READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
IMAGE_ACTIONS = ("Microsoft.Compute/images/write", "Microsoft.Compute/images/read", "Microsoft.Compute/images/delete")
GALLERY_READ = ("Microsoft.Compute/galleries/read", "Microsoft.Compute/galleries/images/read",
                "Microsoft.Compute/galleries/images/versions/read")
GALLERY_WRITE = (*GALLERY_READ, "Microsoft.Compute/galleries/images/versions/write")
SUBNET_ACTIONS = ("Microsoft.Network/virtualNetworks/read", "Microsoft.Network/virtualNetworks/subnets/join/action")
IDENTITY_ASSIGN = ("Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",)
# What Image Builder deploys into a staging group the user brings (Contributor-level writes).
STAGING_ACTIONS = ("Microsoft.Storage/storageAccounts/write", "Microsoft.Compute/virtualMachines/write",
                   "Microsoft.Network/networkInterfaces/write", "Microsoft.Resources/deployments/write")
TEMPLATE_ACTIONS = ("Microsoft.VirtualMachineImages/imageTemplates/write",
                    "Microsoft.VirtualMachineImages/imageTemplates/read",
                    "Microsoft.VirtualMachineImages/imageTemplates/run/action",
                    "Microsoft.VirtualMachineImages/imageTemplates/cancel/action",
                    "Microsoft.VirtualMachineImages/imageTemplates/delete")

_GROUP = re.compile(r"^(/subscriptions/[^/]+/resourceGroups/[^/]+)", re.IGNORECASE)
_GALLERY = re.compile(r"^(/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/galleries/[^/]+)",
                      re.IGNORECASE)
_BLOB_HOST = re.compile(r"^(?P<account>[a-z0-9]{3,24})\.blob\.core\.windows\.net$", re.IGNORECASE)


@dataclass(frozen=True)
class Requirement:
    """One row of the table: `who` must be allowed `actions` (data actions when `data`) at `scope`."""

    who: str  # TEMPLATE_IDENTITY or PORTAL
    what: str  # what it is for, in words ("join the build subnet")
    scope: str  # an ARM scope; for blobs the account's group is unknown, so it reads ".../resourceGroups/*/..."
    actions: tuple[str, ...]
    role: str  # the built-in role the fix grants
    path: str  # the template path it comes from
    data: bool = False
    fix_scope: str = ""  # the --scope of the fix when it differs from `scope` (blobs: looked up with az)
    severity: str = "error"  # "warning": the build runs without it, something else is lost (the log)

    @property
    def grant_scope(self) -> str:
        return self.fix_scope or self.scope


@dataclass(frozen=True)
class Assignment:
    """A role assignment as far as the arithmetic needs it."""

    scope: str
    role_definition_id: str  # full id or bare GUID


@dataclass(frozen=True)
class RolePermissions:
    """A role definition's permissions (the union of its permission blocks)."""

    name: str  # roleName
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()


def requirements(body: Mapping[str, Any], *, subscription: str, resource_group: str,
                 staging_exists: bool | None = None) -> list[Requirement]:
    """Every permission the build of `body` needs (aib-reference-2 §2), in template order.

    `resource_group` is where the template itself goes (the portal writes it there).
    `staging_exists`: whether a named staging group exists already (None: unknown, treated as
    existing). A group that Image Builder creates (the property empty, or a name that does not
    exist yet, such as a Goldsmith-named group) needs nothing: Image Builder gives the template
    identity Contributor on it (§2.2).
    """
    props = body.get("properties") if isinstance(body.get("properties"), Mapping) else {}
    rows: list[Requirement] = []
    identity = template_identity(body)
    group = f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
    rows.append(Requirement(PORTAL, "create, run, cancel and delete image templates", group, TEMPLATE_ACTIONS,
                            "Contributor", "location"))
    if identity:
        rows.append(Requirement(PORTAL, "assign the template identity to the template", identity, IDENTITY_ASSIGN,
                                "Managed Identity Operator", "identity.userAssignedIdentities"))
    source = props.get("source") if isinstance(props.get("source"), Mapping) else {}
    if source.get("type") == "ManagedImage" and _str(source.get("imageId")):
        rows.append(Requirement(TEMPLATE_IDENTITY, "read the source managed image", source["imageId"],
                                ("Microsoft.Compute/images/read",), "Reader", "properties.source.imageId"))
    if source.get("type") == "SharedImageVersion" and _GALLERY.match(_str(source.get("imageVersionId"))):
        gallery = _gallery_of(source["imageVersionId"])
        rows.append(Requirement(TEMPLATE_IDENTITY, "read the source gallery image version", gallery, GALLERY_READ,
                                "Reader", "properties.source.imageVersionId"))
    uris = _script_uris(props)
    for path, uri in uris:
        scope = blob_scope(uri, subscription)
        if scope:
            account, container = scope[1], scope[2]
            rows.append(Requirement(
                TEMPLATE_IDENTITY, f"read scripts and files from the storage container '{container}'", scope[0],
                (BLOB_READ,), "Storage Blob Data Reader", path, data=True,
                fix_scope=f"$(az storage account show --name {account} --query id --output tsv)"
                          f"/blobServices/default/containers/{container}"))
    profile = props.get("vmProfile") if isinstance(props.get("vmProfile"), Mapping) else {}
    vnet = profile.get("vnetConfig") if isinstance(profile.get("vnetConfig"), Mapping) else {}
    for key in ("subnetId", "containerInstanceSubnetId"):
        subnet = _str(vnet.get(key))
        if "/subnets/" in subnet.lower():
            network = subnet[:subnet.lower().index("/subnets/")]
            rows.append(Requirement(TEMPLATE_IDENTITY, "join the build subnet" if key == "subnetId" else
                                    "join the container instance subnet", network, SUBNET_ACTIONS,
                                    "Network Contributor", f"properties.vmProfile.vnetConfig.{key}"))
    for index, item in enumerate(listed(profile.get("userAssignedIdentities"))):
        if _str(item):
            rows.append(Requirement(TEMPLATE_IDENTITY, "attach this identity to the build VM", item, IDENTITY_ASSIGN,
                                    "Managed Identity Operator",
                                    f"properties.vmProfile.userAssignedIdentities[{index}]"))
    staging = _str(props.get("stagingResourceGroup"))
    # The portal reads the build log from the staging group's storage account (buildlogs). A group
    # Image Builder creates has a name no one knows before the run (IT_<group>_<template>_<guid>),
    # so the role must then come from the subscription. Without it the build still runs, but its
    # log can be neither shown nor kept: a warning, not a refusal.
    rows.append(Requirement(PORTAL, "read the build log in the staging resource group's storage",
                            staging or f"/subscriptions/{subscription}", (BLOB_READ,), "Storage Blob Data Reader",
                            "properties.stagingResourceGroup", data=True, severity="warning"))
    if staging and staging_exists is not False:
        rows.append(Requirement(TEMPLATE_IDENTITY, "deploy the build VM into the staging resource group", staging,
                                STAGING_ACTIONS, "Contributor", "properties.stagingResourceGroup"))
    for index, target in enumerate(listed(props.get("distribute"))):
        if not isinstance(target, Mapping):
            continue
        where = f"properties.distribute[{index}]"
        if target.get("type") == "ManagedImage" and _GROUP.match(_str(target.get("imageId"))):
            rows.append(Requirement(TEMPLATE_IDENTITY, "write the managed image", _GROUP.match(target["imageId"])[1],
                                    IMAGE_ACTIONS, "Contributor", f"{where}.imageId"))
        if target.get("type") == "SharedImage" and _GROUP.match(_str(target.get("galleryImageId"))):
            rows.append(Requirement(TEMPLATE_IDENTITY, "publish the gallery image version",
                                    _GROUP.match(target["galleryImageId"])[1], GALLERY_WRITE, "Contributor",
                                    f"{where}.galleryImageId"))
    return rows


def template_identity(body: Mapping[str, Any]) -> str:
    identity = body.get("identity") if isinstance(body.get("identity"), Mapping) else {}
    names = identity.get("userAssignedIdentities")
    return next(iter(names), "") if isinstance(names, Mapping) and names else ""


def blob_scope(uri: str, subscription: str) -> tuple[str, str, str] | None:
    """(scope, account, container) of a blob URL in Azure Storage, or None for any other URL.
    The account's resource group is not in the URL, so the scope's group segment is `*`."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    found = _BLOB_HOST.match(parts.hostname or "")
    if not found:
        return None
    container = (parts.path.strip("/").split("/") or [""])[0]
    account = found.group("account").lower()
    scope = (f"/subscriptions/{subscription}/resourceGroups/*/providers/Microsoft.Storage/storageAccounts/{account}"
             f"/blobServices/default/containers/{container}")
    return scope, account, container


# --- RBAC arithmetic ---------------------------------------------------------------------------


def normalize_scope(scope: str) -> str:
    return "/" + "/".join(part for part in (scope or "").split("/") if part)


def covers(outer: str, inner: str) -> bool:
    """True when an assignment at `outer` applies at `inner` (the same scope or below it). A `*`
    segment of `inner` matches any segment (a storage account whose group is unknown)."""
    outer_parts = [part.lower() for part in normalize_scope(outer).split("/") if part]
    inner_parts = [part.lower() for part in normalize_scope(inner).split("/") if part]
    if len(outer_parts) > len(inner_parts):
        return False
    return all(i == "*" or o == i for o, i in zip(outer_parts, inner_parts, strict=False))


def action_matches(pattern: str, action: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def role_key(role_definition_id: str) -> str:
    """The GUID at the end of a role definition id (ids differ by the scope they are read at)."""
    return role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


def allowed(action: str, scope: str, assignments: Iterable[Assignment],
            definitions: Mapping[str, RolePermissions], *, data: bool = False) -> bool:
    for assignment in assignments:
        if not covers(assignment.scope, scope):
            continue
        role = definitions.get(role_key(assignment.role_definition_id))
        if role is None:
            continue
        grants = role.data_actions if data else role.actions
        denies = role.not_data_actions if data else role.not_actions
        if any(action_matches(p, action) for p in grants) and not any(action_matches(p, action) for p in denies):
            return True
    return False


def missing(requirement: Requirement, assignments: Sequence[Assignment],
            definitions: Mapping[str, RolePermissions]) -> tuple[str, ...]:
    """The actions of the row that no assignment at its scope or above grants."""
    return tuple(action for action in requirement.actions
                 if not allowed(action, requirement.scope, assignments, definitions, data=requirement.data))


def fix_command(principal_id: str, role: str, scope: str) -> str:
    return f'az role assignment create --assignee {principal_id} --role "{role}" --scope {scope}'


def problem(requirement: Requirement, principal_id: str, lacking: Sequence[str]) -> Problem:
    """`permission.missing` for one row: who lacks what where, the role and the command that fixes it."""
    who = "The template identity" if requirement.who == TEMPLATE_IDENTITY else "The portal's principal"
    kind = "data actions" if requirement.data else "actions"
    return Problem("permission.missing", requirement.path,
                   f"{who} ({principal_id}) may not {requirement.what}: it lacks the {kind} {', '.join(lacking)} on "
                   f"{requirement.scope}. Grant it the {requirement.role} role there: "
                   f"{fix_command(principal_id, requirement.role, requirement.grant_scope)}", requirement.severity)


def describe() -> list[tuple[str, str, str, str, str]]:
    """The table for the docs: (who, when, scope, actions, role)."""
    return [
        (PORTAL, "always", "the template's resource group", ", ".join(TEMPLATE_ACTIONS), "Contributor"),
        (PORTAL, "always", "the template identity", ", ".join(IDENTITY_ASSIGN), "Managed Identity Operator"),
        (PORTAL, "always (a warning: reads the build log)", "the stagingResourceGroup, else the subscription",
         BLOB_READ + " (data)", "Storage Blob Data Reader"),
        (TEMPLATE_IDENTITY, "managed image source", "the image", "Microsoft.Compute/images/read", "Reader"),
        (TEMPLATE_IDENTITY, "gallery source", "the gallery", ", ".join(GALLERY_READ), "Reader"),
        (TEMPLATE_IDENTITY, "scripts or files on *.blob.core.windows.net", "the container", BLOB_READ + " (data)",
         "Storage Blob Data Reader"),
        (TEMPLATE_IDENTITY, "vnetConfig subnetId / containerInstanceSubnetId", "the virtual network",
         ", ".join(SUBNET_ACTIONS), "Network Contributor"),
        (TEMPLATE_IDENTITY, "vmProfile.userAssignedIdentities", "each identity", ", ".join(IDENTITY_ASSIGN),
         "Managed Identity Operator"),
        (TEMPLATE_IDENTITY, "an existing stagingResourceGroup", "the group", ", ".join(STAGING_ACTIONS), "Contributor"),
        (TEMPLATE_IDENTITY, "ManagedImage target", "the image's resource group", ", ".join(IMAGE_ACTIONS),
         "Contributor"),
        (TEMPLATE_IDENTITY, "SharedImage target", "the gallery's resource group", ", ".join(GALLERY_WRITE),
         "Contributor"),
    ]


def _gallery_of(resource_id: str) -> str:
    found = _GALLERY.match(resource_id)
    return found.group(1) if found else resource_id


def _script_uris(props: Mapping[str, Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for index, step in enumerate(listed(props.get("customize"))):
        if isinstance(step, Mapping):
            found += [(f"properties.customize[{index}].{key}", step[key]) for key in ("scriptUri", "sourceUri")
                      if _str(step.get(key))]
    validate = props.get("validate") if isinstance(props.get("validate"), Mapping) else {}
    for index, step in enumerate(listed(validate.get("inVMValidations"))):
        if isinstance(step, Mapping):
            found += [(f"properties.validate.inVMValidations[{index}].{key}", step[key])
                      for key in ("scriptUri", "sourceUri") if _str(step.get(key))]
    return found


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
