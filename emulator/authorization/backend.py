"""Microsoft.Authorization, RBAC: role definitions (built-in and custom), role assignments at
subscription, resource group and resource scopes, and `has_permission`, the check Image Builder
runs for its template identity when enforcement is on for a subscription.

Scopes are ARM ids ("/subscriptions/s", ".../resourceGroups/rg", ".../providers/NS/type/name");
an assignment at a scope applies to it and everything below it, as ARM inherits them.
Enforcement is off unless switched on per subscription through the control API, so code that
never grants roles keeps working.

Storage (kind: key): authz_assignment: name (GUID); authz_roledef: name (GUID, custom roles);
authz_enforce: subscription.
"""

from __future__ import annotations

import fnmatch
import re
import uuid
from typing import Any

from emulator.authorization.roles import BUILT_IN_ROLES
from emulator.core import ArmError
from emulator.core.clock import iso

PROVIDER = "Microsoft.Authorization"
ASSIGNMENT_TYPE = f"{PROVIDER}/roleAssignments"
DEFINITION_TYPE = f"{PROVIDER}/roleDefinitions"
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_SUB = re.compile(r"^/subscriptions/([^/]+)", re.IGNORECASE)
_PRINCIPAL_FILTER = re.compile(r"^(?:assignedTo\('([^']*)'\)|principalId\s+eq\s+'([^']*)')$", re.IGNORECASE)
_BY_ID = {role["name"]: role for role in BUILT_IN_ROLES}
ASSIGNMENT_NAMESPACE = uuid.UUID("0b7c2f7e-5d4a-4c35-9f0e-6a1b2c3d4e5f")


def normalize_scope(scope: str | None) -> str:
    """'/subscriptions/s/' -> '/subscriptions/s'; '' and '/' -> '/' (the root)."""
    cleaned = "/" + "/".join(part for part in (scope or "").split("/") if part)
    return cleaned


def covers(outer: str, inner: str) -> bool:
    """True when an assignment at `outer` applies at `inner` (same scope or below it). A `*`
    segment in `inner` matches any segment (a storage account whose group is unknown)."""
    outer_parts = [p.lower() for p in normalize_scope(outer).split("/") if p]
    inner_parts = [p.lower() for p in normalize_scope(inner).split("/") if p]
    if len(outer_parts) > len(inner_parts):
        return False
    return all(i == "*" or o == i for o, i in zip(outer_parts, inner_parts, strict=False))


def subscription_of(scope: str) -> str | None:
    found = _SUB.match(normalize_scope(scope))
    return found.group(1) if found else None


def action_matches(pattern: str, action: str) -> bool:
    """RBAC wildcards: `*` matches any characters, slashes included; case-insensitive."""
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def definition_id(guid: str, subscription: str | None) -> str:
    prefix = f"/subscriptions/{subscription}" if subscription else ""
    return f"{prefix}/providers/{DEFINITION_TYPE}/{guid}"


def authorization_failed(client_id: str, principal_id: str, action: str, scope: str) -> str:
    """ARM's AuthorizationFailed text (the same words the control API's denials use)."""
    return (f"The client '{client_id}' with object id '{principal_id}' does not have authorization to perform action "
            f"'{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh "
            "your credentials.")


class Authorization:
    """app.services["authorization"]."""

    def __init__(self, app):
        self.app = app

    @property
    def store(self):
        return self.app.store

    def _now(self) -> str:
        return iso(self.app.clock.now())

    # -- enforcement ------------------------------------------------------------------------
    def enforced(self, subscription: str) -> bool:
        record = self.store.get("authz_enforce", subscription)
        return bool(record and record["enabled"])

    def set_enforced(self, subscription: str, enabled: bool) -> dict:
        record = {"subscription": subscription, "enabled": bool(enabled)}
        self.store.put("authz_enforce", subscription, record)
        return record

    def enforcement(self) -> list[dict]:
        return self.store.list("authz_enforce")

    # -- role definitions -------------------------------------------------------------------
    def _custom_roles(self) -> list[dict]:
        return self.store.list("authz_roledef")

    def _role_record(self, guid: str) -> dict | None:
        return _BY_ID.get(guid.lower()) or self.store.get("authz_roledef", guid)

    def render_role(self, record: dict, scope: str) -> dict:
        """RoleDefinition JSON; built-ins answer an id under the scope's subscription, custom roles
        under the subscription of their first assignable scope."""
        if record["type"] == "BuiltInRole":
            subscription = subscription_of(scope)
        else:
            subscription = subscription_of(record["assignableScopes"][0])
        props = {key: record[key] for key in ("roleName", "type", "description", "permissions", "assignableScopes")}
        props.update(createdOn=record.get("createdOn"), updatedOn=record.get("updatedOn"),
                     createdBy=record.get("createdBy"), updatedBy=record.get("updatedBy"))
        return {"id": definition_id(record["name"], subscription), "name": record["name"], "type": DEFINITION_TYPE,
                "properties": props}

    def find_role(self, role: str) -> dict | None:
        """A role record by GUID, role definition id or role name (case-insensitive)."""
        key = role.rstrip("/").rsplit("/", 1)[-1]
        if _GUID.match(key):
            return self._role_record(key)
        for record in (*BUILT_IN_ROLES, *self._custom_roles()):
            if record["roleName"].lower() == role.lower():
                return record
        return None

    def role_definitions(self, scope: str, role_filter: str | None) -> list[dict]:
        """Built-ins and the custom roles assignable at, above or below the scope; `$filter`
        roleName eq 'X' or type eq 'BuiltInRole' | 'CustomRole'."""
        scope = normalize_scope(scope)
        records = [*BUILT_IN_ROLES, *(record for record in self._custom_roles() if any(
            covers(assignable, scope) or covers(scope, assignable) for assignable in record["assignableScopes"]))]
        if role_filter:
            found = re.fullmatch(r"\s*(roleName|type)\s+eq\s+'([^']*)'\s*", role_filter, re.IGNORECASE)
            if not found:
                raise ArmError(400, "InvalidFilter", f"The filter '{role_filter}' is not supported.")
            field = "roleName" if found.group(1).lower() == "rolename" else "type"
            records = [record for record in records if record[field].lower() == found.group(2).lower()]
        return [self.render_role(record, scope) for record in records]

    def role_definition(self, scope: str, guid: str) -> dict:
        record = self._role_record(guid)
        if record is None:
            raise ArmError(404, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{guid}' does not "
                                                              "exist.")
        return self.render_role(record, scope)

    def put_role_definition(self, scope: str, guid: str, body: dict | None, who: str) -> tuple[dict, bool]:
        """Create or update a custom role; returns (definition, created)."""
        if not _GUID.match(guid):
            raise ArmError(400, "InvalidRoleDefinitionId", f"The role definition ID '{guid}' is not valid. The role "
                                                           "definition ID must be a GUID.")
        if guid.lower() in _BY_ID:
            raise ArmError(403, "RoleDefinitionUpdateNotPermitted", "Built-in role definitions cannot be changed.")
        props = (body or {}).get("properties") or {}
        scopes = [normalize_scope(item) for item in props.get("assignableScopes") or []]
        if not props.get("roleName") or not scopes or not props.get("permissions"):
            raise ArmError(400, "InvalidRoleDefinition", "A custom role needs roleName, permissions and at least one "
                                                         "assignableScope.")
        taken = next((record for record in (*BUILT_IN_ROLES, *self._custom_roles())
                      if record["roleName"].lower() == props["roleName"].lower() and record["name"] != guid.lower()),
                     None)
        if taken:
            raise ArmError(409, "RoleDefinitionWithSameNameExists",
                           f"A custom role with the same name '{props['roleName']}' already exists in this directory.")
        existing = self.store.get("authz_roledef", guid)
        now = self._now()
        record = {"name": guid.lower(), "roleName": props["roleName"], "type": "CustomRole",
                  "description": props.get("description") or "",
                  "permissions": [{"actions": list(p.get("actions") or []), "notActions": list(p.get("notActions") or []),
                                   "dataActions": list(p.get("dataActions") or []),
                                   "notDataActions": list(p.get("notDataActions") or [])}
                                  for p in props["permissions"]],
                  "assignableScopes": scopes, "createdOn": (existing or {}).get("createdOn") or now, "updatedOn": now,
                  "createdBy": (existing or {}).get("createdBy") or who, "updatedBy": who}
        self.store.put("authz_roledef", guid, record)
        return self.render_role(record, scope), existing is None

    def delete_role_definition(self, scope: str, guid: str) -> dict | None:
        record = self.store.get("authz_roledef", guid)
        if record is None:
            return None
        if any(a["properties"]["roleDefinitionId"].lower().endswith(guid.lower()) for a in self._assignments()):
            raise ArmError(409, "RoleDefinitionHasAssignments", "There are existing role assignments referencing role "
                                                                f"(code: RoleDefinitionHasAssignments) '{guid}'.")
        self.store.delete("authz_roledef", guid)
        return self.render_role(record, scope)

    # -- role assignments -------------------------------------------------------------------
    def _assignments(self) -> list[dict]:
        return self.store.list("authz_assignment")

    def put_assignment(self, scope: str, name: str, body: dict | None, who: str) -> tuple[dict, bool]:
        """Create a role assignment; returns (assignment, created). ARM refuses updates."""
        scope = normalize_scope(scope)
        if not _GUID.match(name):
            raise ArmError(400, "InvalidRoleAssignmentId", f"The role assignment ID '{name}' is not valid. The role "
                                                           "assignment ID must be a GUID.")
        props = (body or {}).get("properties") or {}
        principal, role_id = props.get("principalId"), props.get("roleDefinitionId")
        if not principal or not role_id:
            raise ArmError(400, "InvalidRoleAssignmentRequest", "A role assignment needs properties.principalId and "
                                                                "properties.roleDefinitionId.")
        record = self._role_record(role_id.rstrip("/").rsplit("/", 1)[-1])
        if record is None:
            raise ArmError(400, "RoleDefinitionDoesNotExist", f"The specified role definition with ID "
                                                              f"'{role_id.rsplit('/', 1)[-1]}' does not exist.")
        if not any(covers(assignable, scope) for assignable in record["assignableScopes"]):
            raise ArmError(403, "AuthorizationFailed", f"The role definition '{record['name']}' is not assignable at "
                                                        f"scope '{scope}': it is not within its assignableScopes.")
        existing = self.store.get("authz_assignment", name)
        same = [a for a in self._assignments() if a["properties"]["principalId"].lower() == principal.lower()
                and a["properties"]["scope"].lower() == scope.lower()
                and a["properties"]["roleDefinitionId"].lower().endswith(record["name"])]
        if existing:
            if existing in same:
                return existing, False
            raise ArmError(409, "RoleAssignmentUpdateNotPermitted", "Tenant ID, application ID, principal ID, and "
                                                                    "scope are not allowed to be updated.")
        if same:
            raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
        now = self._now()
        assignment = {
            "id": f"{scope if scope != '/' else ''}/providers/{ASSIGNMENT_TYPE}/{name}",
            "name": name, "type": ASSIGNMENT_TYPE,
            "properties": {"roleDefinitionId": definition_id(record["name"], subscription_of(scope)),
                           "principalId": principal, "principalType": props.get("principalType") or "ServicePrincipal",
                           "scope": scope, "condition": props.get("condition"),
                           "conditionVersion": props.get("conditionVersion"), "description": props.get("description"),
                           "createdOn": now, "updatedOn": now, "createdBy": who, "updatedBy": who,
                           "delegatedManagedIdentityResourceId": None},
        }
        self.store.put("authz_assignment", name, assignment)
        return assignment, True

    def get_assignment(self, scope: str, name: str) -> dict:
        found = self.store.get("authz_assignment", name)
        if found is None or found["properties"]["scope"].lower() != normalize_scope(scope).lower():
            raise ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")
        return found

    def delete_assignment(self, scope: str, name: str) -> dict | None:
        found = self.store.get("authz_assignment", name)
        if found is None or found["properties"]["scope"].lower() != normalize_scope(scope).lower():
            return None
        self.store.delete("authz_assignment", name)
        return found

    def list_assignments(self, scope: str, assignment_filter: str | None) -> list[dict]:
        """Assignments that touch the scope: at, above and below it; `$filter=atScope()` keeps
        those at or above it; `assignedTo('id')` / `principalId eq 'id'` keep one principal's."""
        scope = normalize_scope(scope)
        at_scope, principal = False, None
        for term in re.split(r"\s+and\s+", (assignment_filter or "").strip(), flags=re.IGNORECASE):
            if not term:
                continue
            if term.replace(" ", "").lower() == "atscope()":
                at_scope = True
                continue
            found = _PRINCIPAL_FILTER.match(term.strip())
            if not found:
                raise ArmError(400, "UnsupportedQuery", f"The filter '{assignment_filter}' is not supported. Supported "
                                                        "filters are atScope(), assignedTo('{principalId}') and "
                                                        "principalId eq '{principalId}'.")
            principal = (found.group(1) or found.group(2)).lower()
        result = []
        for assignment in self._assignments():
            props = assignment["properties"]
            if principal and props["principalId"].lower() != principal:
                continue
            above = covers(props["scope"], scope)
            if above or (not at_scope and covers(scope, props["scope"])):
                result.append(assignment)
        return result

    def grant(self, principal_id: str, role: str, scope: str, principal_type: str | None = None) -> tuple[dict, bool]:
        """The control API's grant: a role (name, GUID or id) to a principal at a scope; idempotent.
        The assignment's name derives from the three, so granting twice finds the same one."""
        record = self.find_role(role)
        if record is None:
            raise ArmError(400, "RoleDefinitionDoesNotExist", f"The specified role definition '{role}' does not exist.")
        scope = normalize_scope(scope)
        name = str(uuid.uuid5(ASSIGNMENT_NAMESPACE, f"{principal_id.lower()}|{record['name']}|{scope.lower()}"))
        for assignment in self.list_assignments(scope, f"principalId eq '{principal_id}'"):
            props = assignment["properties"]
            if props["scope"].lower() == scope.lower() and props["roleDefinitionId"].lower().endswith(record["name"]):
                return assignment, False
        body = {"properties": {"principalId": principal_id, "roleDefinitionId": record["name"],
                               "principalType": principal_type or "ServicePrincipal"}}
        return self.put_assignment(scope, name, body, "emulator-control")

    def revoke(self, principal_id: str, role: str | None, scope: str | None) -> list[dict]:
        """Remove a principal's assignments exactly at `scope` (every scope when None), of `role`
        (every role when None); returns what was removed."""
        record = self.find_role(role) if role else None
        if role and record is None:
            raise ArmError(400, "RoleDefinitionDoesNotExist", f"The specified role definition '{role}' does not exist.")
        removed = []
        for assignment in self._assignments():
            props = assignment["properties"]
            if props["principalId"].lower() != principal_id.lower():
                continue
            if scope is not None and props["scope"].lower() != normalize_scope(scope).lower():
                continue
            if record and not props["roleDefinitionId"].lower().endswith(record["name"]):
                continue
            self.store.delete("authz_assignment", assignment["name"])
            removed.append(assignment)
        return removed

    def drop_resource_group(self, subscription: str, resource_group: str) -> None:
        """Assignments at a deleted group (or below it) go with it, as in ARM."""
        group = f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
        for assignment in self._assignments():
            if covers(group, assignment["properties"]["scope"]):
                self.store.delete("authz_assignment", assignment["name"])

    # -- the check --------------------------------------------------------------------------
    def has_permission(self, principal_id: str, scope: str, action: str, *, data_action: bool = False) -> bool:
        """True when one of the principal's assignments at the scope or above grants the action:
        a role permission whose actions (dataActions) match it and whose notActions
        (notDataActions) do not. Wildcards as RBAC has them (`*`, `*/read`, `Microsoft.Network/*`)."""
        for assignment in self._assignments():
            props = assignment["properties"]
            if props["principalId"].lower() != principal_id.lower() or not covers(props["scope"], scope):
                continue
            record = self._role_record(props["roleDefinitionId"].rsplit("/", 1)[-1])
            for permission in (record or {}).get("permissions", []):
                allowed = permission["dataActions" if data_action else "actions"]
                denied = permission["notDataActions" if data_action else "notActions"]
                if any(action_matches(p, action) for p in allowed) and not any(
                        action_matches(p, action) for p in denied):
                    return True
        return False

    def missing(self, principal_id: str, checks: list[tuple[str, str]]) -> tuple[str, str] | None:
        """The first (scope, action) of `checks` the principal may not do, or None."""
        for scope, action in checks:
            data = action.endswith("/blobs/read")
            if not self.has_permission(principal_id, scope, action, data_action=data):
                return scope, action
        return None


def who_of(claims: dict[str, Any] | None) -> str:
    claims = claims or {}
    return claims.get("oid") or claims.get("appid") or claims.get("azp") or "unknown"
