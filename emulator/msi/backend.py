"""User-assigned identities (Microsoft.ManagedIdentity/userAssignedIdentities).

An identity's principalId and clientId derive from its resource id (uuid5), so the same id
always gets the same principal: the Image Builder template that names an identity, the identity
created here and a role assignment granted to its principal agree even when they are made in
any order, and a reset or restart changes nothing.

Storage (kind: key): msi_identity: sub/rg/name (ARM JSON).
"""

from __future__ import annotations

import re
import uuid

from emulator.core import ArmError
from emulator.resources.backend import DEFAULT_TENANT, normalize_location

IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
# Shared with Image Builder's identity block (it predates this package and keeps its ids).
IDENTITY_NAMESPACE = uuid.UUID("8f5b2a3e-6c1d-4e0f-9a7b-3c2d1e0f4a5b")
_ID = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
                 r"Microsoft\.ManagedIdentity/userAssignedIdentities/(?P<name>[^/]+)/?$", re.IGNORECASE)
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$")


def identity_ids(resource_id: str) -> dict[str, str]:
    """{"principalId", "clientId"} of a user-assigned identity, derived from its id."""
    key = resource_id.lower().rstrip("/")
    return {"principalId": str(uuid.uuid5(IDENTITY_NAMESPACE, "principal:" + key)),
            "clientId": str(uuid.uuid5(IDENTITY_NAMESPACE, "client:" + key))}


def identity_id(subscription: str, resource_group: str, name: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/{IDENTITY_TYPE}/{name}"


def parse_identity_id(resource_id: str) -> dict[str, str] | None:
    found = _ID.match(resource_id or "")
    return found.groupdict() if found else None


def not_found(name: str, resource_group: str) -> ArmError:
    return ArmError(404, "ResourceNotFound",
                    f"The Resource '{IDENTITY_TYPE}/{name}' under resource group '{resource_group}' was not found. "
                    "For more details please go to https://aka.ms/ARMResourceNotFoundFix")


class ManagedIdentities:
    """app.services["msi"]."""

    def __init__(self, app):
        self.app = app

    @property
    def store(self):
        return self.app.store

    def get(self, subscription: str, resource_group: str, name: str) -> dict | None:
        return self.store.get("msi_identity", f"{subscription}/{resource_group}/{name}")

    def by_id(self, resource_id: str) -> dict | None:
        """The identity an ARM id names, or None (also for ids that are not identity ids)."""
        parts = parse_identity_id(resource_id)
        return self.get(parts["sub"], parts["rg"], parts["name"]) if parts else None

    def require(self, subscription: str, resource_group: str, name: str) -> dict:
        self.app.services["resources"].require_resource_group(subscription, resource_group)
        found = self.get(subscription, resource_group, name)
        if found is None:
            raise not_found(name, resource_group)
        return found

    def create_or_update(self, subscription: str, resource_group: str, name: str, body: dict | None) -> tuple[dict, bool]:
        """PUT: (identity, created). Location is required and cannot change; tags are replaced."""
        body = body or {}
        group = self.app.services["resources"].require_resource_group(subscription, resource_group)
        if not _NAME.match(name):
            raise ArmError(400, "InvalidResourceName",
                           f"Resource name {name} is invalid. The name can be 3-128 characters long, must start with "
                           "a letter or number and can contain letters, numbers, hyphens and underscores.")
        if not body.get("location"):
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        location = normalize_location(body["location"])
        existing = self.get(subscription, resource_group, name)
        if existing and existing["location"] != location:
            raise ArmError(409, "InvalidResourceLocation",
                           f"The resource '{name}' already exists in location '{existing['location']}' in resource "
                           f"group '{group['name']}'. A resource with the same name cannot be created in location "
                           f"'{location}'. Please select a new resource name.")
        resource_id = existing["id"] if existing else identity_id(subscription, resource_group, name)
        identity = {"id": resource_id, "name": existing["name"] if existing else name, "type": IDENTITY_TYPE,
                    "location": location, "tags": dict(body.get("tags") or {}),
                    "properties": {"tenantId": DEFAULT_TENANT, **identity_ids(resource_id), "isolationScope": "None"}}
        self.store.put("msi_identity", f"{subscription}/{resource_group}/{name}", identity)
        return identity, existing is None

    def update(self, subscription: str, resource_group: str, name: str, patch: dict | None) -> dict:
        identity = self.require(subscription, resource_group, name)
        if patch and "tags" in patch:
            identity["tags"] = dict(patch["tags"] or {})
        self.store.put("msi_identity", f"{subscription}/{resource_group}/{name}", identity)
        return identity

    def delete(self, subscription: str, resource_group: str, name: str) -> bool:
        self.app.services["resources"].require_resource_group(subscription, resource_group)
        return self.store.delete("msi_identity", f"{subscription}/{resource_group}/{name}")

    def list(self, subscription: str, resource_group: str | None = None) -> list[dict]:
        prefix = f"{subscription}/{resource_group}/" if resource_group else f"{subscription}/"
        return self.store.list("msi_identity", prefix)

    def drop_resource_group(self, subscription: str, resource_group: str) -> None:
        for identity in self.list(subscription, resource_group):
            self.store.delete("msi_identity", f"{subscription}/{resource_group}/{identity['name']}")

    def generic_resources(self, subscription: str, resource_group: str | None) -> list[dict]:
        return [{key: identity[key] for key in ("id", "name", "type", "location", "tags")}
                for identity in self.list(subscription, resource_group)]

    def by_principal(self, principal_id: str) -> dict | None:
        """The identity whose principal this is (for error messages), or None."""
        for identity in self.store.list("msi_identity"):
            if identity["properties"]["principalId"].lower() == principal_id.lower():
                return identity
        return None
