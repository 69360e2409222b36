"""Azure Policy, the deny part: policy definitions (a few built-ins with their real names, and
custom ones at a subscription), policy assignments at subscription and resource group scopes
with parameters, and `evaluate`, which refuses a resource the way ARM does
(403 RequestDisallowedByPolicy naming the assignment and definition).

The rule evaluator covers what these definitions use: allOf / anyOf / not; `field` of type,
location, name, tags, tags[x] / tags['x'] / tags.x; operators equals, notEquals, in, notIn,
exists, like, notLike, contains, notContains; `[parameters('p')]` and
`[concat(...)]` expressions; effects from a literal or a parameter. Only `deny` acts; other
effects (audit, modify, deployIfNotExists...) are stored and ignored. Mode "Indexed" skips
resource groups, as Azure does.

Storage (kind: key): policy_definition: sub/name (custom); policy_assignment: assignment id.
"""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

from emulator.authorization.backend import covers, normalize_scope
from emulator.core import ArmError, Response

DEFINITION_TYPE = "Microsoft.Authorization/policyDefinitions"
ASSIGNMENT_TYPE = "Microsoft.Authorization/policyAssignments"
RESOURCE_GROUP_TYPE = "Microsoft.Resources/subscriptions/resourceGroups"


def _builtin(guid: str, name: str, description: str, mode: str, parameters: dict, rule: dict) -> dict:
    return {"id": f"/providers/{DEFINITION_TYPE}/{guid}", "name": guid, "type": DEFINITION_TYPE,
            "properties": {"displayName": name, "policyType": "BuiltIn", "mode": mode, "description": description,
                           "metadata": {"version": "1.0.0", "category": "General"}, "version": "1.0.0",
                           "parameters": parameters, "policyRule": rule}}


def _list_param(name: str, display: str) -> dict:
    return {name: {"type": "Array", "metadata": {"displayName": display, "description": display}}}


BUILT_IN_POLICIES: tuple[dict, ...] = (
    _builtin("e56962a6-4747-49cd-b67b-bf8b01975c4c", "Allowed locations",
             "This policy enables you to restrict the locations your organization can specify when deploying "
             "resources.", "Indexed", _list_param("listOfAllowedLocations", "Allowed locations"),
             {"if": {"allOf": [{"field": "location", "notIn": "[parameters('listOfAllowedLocations')]"},
                               {"field": "location", "notEquals": "global"},
                               {"field": "type", "notEquals": "Microsoft.AzureActiveDirectory/b2cDirectories"}]},
              "then": {"effect": "deny"}}),
    _builtin("e765b5de-1225-4ba3-bd56-1ac6695af988", "Allowed locations for resource groups",
             "This policy enables you to restrict the locations your organization can create resource groups in.",
             "All", _list_param("listOfAllowedLocations", "Allowed locations"),
             {"if": {"allOf": [{"field": "type", "equals": RESOURCE_GROUP_TYPE},
                               {"field": "location", "notIn": "[parameters('listOfAllowedLocations')]"}]},
              "then": {"effect": "deny"}}),
    _builtin("871b6d14-10aa-478d-b590-94f262ecfa99", "Require a tag on resources",
             "Enforces existence of a tag. Does not apply to resource groups.", "Indexed",
             {"tagName": {"type": "String", "metadata": {"displayName": "Tag Name", "description": "Name of the tag"}}},
             {"if": {"field": "[concat('tags[', parameters('tagName'), ']')]", "exists": "false"},
              "then": {"effect": "deny"}}),
    _builtin("96670d01-0a4d-4649-9c89-2d3abc0a5025", "Require a tag on resource groups",
             "Enforces existence of a tag on resource groups.", "All",
             {"tagName": {"type": "String", "metadata": {"displayName": "Tag Name", "description": "Name of the tag"}}},
             {"if": {"allOf": [{"field": "type", "equals": RESOURCE_GROUP_TYPE},
                               {"field": "[concat('tags[', parameters('tagName'), ']')]", "exists": "false"}]},
              "then": {"effect": "deny"}}),
    _builtin("6c112d4e-5bc7-47ae-a041-ea2d9dccd749", "Not allowed resource types",
             "Restrict which resource types can be deployed in your environment.", "All",
             {**_list_param("listOfResourceTypesNotAllowed", "Not allowed resource types"),
              "effect": {"type": "String", "allowedValues": ["Audit", "Deny", "Disabled"], "defaultValue": "Deny",
                         "metadata": {"displayName": "Effect"}}},
             {"if": {"field": "type", "in": "[parameters('listOfResourceTypesNotAllowed')]"},
              "then": {"effect": "[parameters('effect')]"}}),
)
_BUILT_IN = {policy["name"]: policy for policy in BUILT_IN_POLICIES}


class PolicyDisallowed(ArmError):
    """403 RequestDisallowedByPolicy, with ARM's additionalInfo (PolicyViolation)."""

    def __init__(self, resource_name: str, assignment: dict, definition: dict):
        a_props, d_props = assignment["properties"], definition["properties"]
        identifiers = [{"policyAssignment": {"name": a_props.get("displayName") or assignment["name"],
                                             "id": assignment["id"]},
                        "policyDefinition": {"name": d_props.get("displayName") or definition["name"],
                                             "id": definition["id"]}}]
        super().__init__(403, "RequestDisallowedByPolicy",
                         f"Resource '{resource_name}' was disallowed by policy. Policy identifiers: "
                         f"'{json.dumps(identifiers, separators=(',', ':'))}'.", target=resource_name)
        self.info = {"policyDefinitionId": definition["id"], "policyDefinitionName": definition["name"],
                     "policyDefinitionDisplayName": d_props.get("displayName"), "policyDefinitionEffect": "deny",
                     "policyAssignmentId": assignment["id"], "policyAssignmentName": assignment["name"],
                     "policyAssignmentDisplayName": a_props.get("displayName"),
                     "policyAssignmentScope": a_props["scope"],
                     "policyAssignmentParameters": a_props.get("parameters") or {}, "policyExemptionIds": []}

    def to_response(self) -> Response:
        response = super().to_response()
        response.body["error"]["additionalInfo"] = [{"type": "PolicyViolation", "info": self.info}]
        return response


class Policy:
    """app.services["policy"]."""

    def __init__(self, app):
        self.app = app

    @property
    def store(self):
        return self.app.store

    # -- definitions ------------------------------------------------------------------------
    def built_in(self, name: str) -> dict:
        found = _BUILT_IN.get(name.lower())
        if found is None:
            raise _definition_not_found(name)
        return found

    def definitions(self, subscription: str | None) -> list[dict]:
        custom = self.store.list("policy_definition", f"{subscription}/") if subscription else []
        return [*BUILT_IN_POLICIES, *custom]

    def definition(self, subscription: str, name: str) -> dict:
        found = self.store.get("policy_definition", f"{subscription}/{name}")
        if found is None:
            raise _definition_not_found(name)
        return found

    def put_definition(self, subscription: str, name: str, body: dict | None) -> tuple[dict, bool]:
        props = dict((body or {}).get("properties") or {})
        rule = props.get("policyRule")
        if not isinstance(rule, dict) or "if" not in rule or "then" not in rule:
            raise ArmError(400, "InvalidPolicyRule", "Failed to parse policy rule: the rule needs 'if' and 'then'.")
        props.setdefault("policyType", "Custom")
        props.setdefault("mode", "All")
        props.setdefault("parameters", {})
        props["policyType"] = "Custom"
        existing = self.store.get("policy_definition", f"{subscription}/{name}")
        definition = {"id": f"/subscriptions/{subscription}/providers/{DEFINITION_TYPE}/{name}", "name": name,
                      "type": DEFINITION_TYPE, "properties": props}
        self.store.put("policy_definition", f"{subscription}/{name}", definition)
        return definition, existing is None

    def delete_definition(self, subscription: str, name: str) -> bool:
        return self.store.delete("policy_definition", f"{subscription}/{name}")

    def definition_by_id(self, definition_id: str) -> dict | None:
        parts = [p for p in definition_id.split("/") if p]
        name = parts[-1] if parts else ""
        if parts and parts[0].lower() == "subscriptions":
            return self.store.get("policy_definition", f"{parts[1]}/{name}")
        return _BUILT_IN.get(name.lower())

    def resolve_definition(self, reference: str, subscription: str | None) -> dict | None:
        """A definition by id, name or display name (built-ins and the subscription's)."""
        if "/" in reference:
            return self.definition_by_id(reference)
        for definition in self.definitions(subscription):
            if reference.lower() in (definition["name"].lower(),
                                     (definition["properties"].get("displayName") or "").lower()):
                return definition
        return None

    # -- assignments ------------------------------------------------------------------------
    def put_assignment(self, scope: str, name: str, body: dict | None) -> tuple[dict, bool]:
        scope = normalize_scope(scope)
        props = dict((body or {}).get("properties") or {})
        definition_id = props.get("policyDefinitionId") or ""
        definition = self.definition_by_id(definition_id)
        if definition is None:
            raise ArmError(404, "PolicyDefinitionNotFound", f"The policy definition '{definition_id.rsplit('/', 1)[-1]}' "
                                                            "could not be found.")
        declared = definition["properties"].get("parameters") or {}
        given = props.get("parameters") or {}
        missing = [key for key, spec in declared.items() if key not in given and "defaultValue" not in spec]
        if missing:
            raise ArmError(400, "MissingPolicyParameter", f"The policy assignment '{name}' is missing the parameter(s) "
                                                          f"'{', '.join(missing)}' defined in the policy definition "
                                                          f"'{definition['name']}'.")
        assignment_id = f"{scope if scope != '/' else ''}/providers/{ASSIGNMENT_TYPE}/{name}"
        existing = self.store.get("policy_assignment", assignment_id)
        assignment = {"id": assignment_id, "name": name, "type": ASSIGNMENT_TYPE,
                      "properties": {"displayName": props.get("displayName") or name,
                                     "policyDefinitionId": definition["id"], "scope": scope,
                                     "notScopes": [normalize_scope(s) for s in props.get("notScopes") or []],
                                     "parameters": given, "description": props.get("description"),
                                     "metadata": props.get("metadata") or {},
                                     "enforcementMode": props.get("enforcementMode") or "Default",
                                     "nonComplianceMessages": props.get("nonComplianceMessages") or []}}
        self.store.put("policy_assignment", assignment_id, assignment)
        return assignment, existing is None

    def assignment(self, scope: str, name: str) -> dict:
        scope = normalize_scope(scope)
        found = self.store.get("policy_assignment", f"{scope if scope != '/' else ''}/providers/{ASSIGNMENT_TYPE}/{name}")
        if found is None:
            raise ArmError(404, "PolicyAssignmentNotFound", f"The policy assignment '{name}' is not found.")
        return found

    def delete_assignment(self, scope: str, name: str) -> dict | None:
        scope = normalize_scope(scope)
        key = f"{scope if scope != '/' else ''}/providers/{ASSIGNMENT_TYPE}/{name}"
        found = self.store.get("policy_assignment", key)
        if found is not None:
            self.store.delete("policy_assignment", key)
        return found

    def assignments(self, scope: str, assignment_filter: str | None = None) -> list[dict]:
        """Assignments that apply to the scope (at or above it) and, unless `$filter=atScope()`,
        those below it too, as ARM lists them."""
        scope = normalize_scope(scope)
        at_scope = (assignment_filter or "").replace(" ", "").lower() == "atscope()"
        if assignment_filter and not at_scope:
            raise ArmError(400, "InvalidFilterInQueryString", f"The filter '{assignment_filter}' is not supported by "
                                                              "the emulator; use atScope().")
        return [a for a in self.store.list("policy_assignment")
                if covers(a["properties"]["scope"], scope) or (not at_scope and covers(scope, a["properties"]["scope"]))]

    def clear_assignments(self) -> None:
        for assignment in self.store.list("policy_assignment"):
            self.store.delete("policy_assignment", assignment["id"])

    # -- evaluation -------------------------------------------------------------------------
    def check(self, resource: dict) -> None:
        """Raise PolicyDisallowed when a deny assignment applies to the resource
        {id, name, type, location, tags}; resource groups are ids of groups."""
        for assignment in self.store.list("policy_assignment"):
            props = assignment["properties"]
            if props.get("enforcementMode") == "DoNotEnforce" or not covers(props["scope"], resource["id"]):
                continue
            if any(covers(excluded, resource["id"]) for excluded in props.get("notScopes") or []):
                continue
            definition = self.definition_by_id(props["policyDefinitionId"])
            if definition is None:
                continue
            d_props = definition["properties"]
            if (d_props.get("mode") or "All").lower() == "indexed" and resource["type"].lower() == \
                    RESOURCE_GROUP_TYPE.lower():
                continue
            params = {key: spec.get("defaultValue") for key, spec in (d_props.get("parameters") or {}).items()}
            params.update({key: (value or {}).get("value") for key, value in (props.get("parameters") or {}).items()})
            rule = d_props["policyRule"]
            effect = str(_expression(rule["then"].get("effect"), params) or "").lower()
            if effect == "deny" and _condition(rule["if"], resource, params):
                raise PolicyDisallowed(resource["name"], assignment, definition)

    def problem(self, resource: dict) -> PolicyDisallowed | None:
        """check() as a value: the refusal, or None."""
        try:
            self.check(resource)
        except PolicyDisallowed as refusal:
            return refusal
        return None


def _definition_not_found(name: str) -> ArmError:
    return ArmError(404, "PolicyDefinitionNotFound", f"The policy definition '{name}' could not be found.")


def _expression(value: Any, params: dict) -> Any:
    """Evaluate "[parameters('x')]" and "[concat(...)]"; other values are literals."""
    if not isinstance(value, str) or not (value.startswith("[") and value.endswith("]")) or value.startswith("[["):
        return value
    return _call(value[1:-1].strip(), params)


def _call(text: str, params: dict) -> Any:
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("''", "'")
    found = re.fullmatch(r"(\w+)\((.*)\)", text, re.DOTALL)
    if not found:
        raise ArmError(400, "InvalidPolicyRule", f"Unsupported policy language expression '{text}'.")
    function, args = found.group(1).lower(), [_call(arg, params) for arg in _split_args(found.group(2))]
    if function == "parameters":
        return params.get(args[0])
    if function == "concat":
        return "".join(str(arg) for arg in args)
    raise ArmError(400, "InvalidPolicyRule", f"Unsupported policy language function '{function}'.")


def _split_args(text: str) -> list[str]:
    args, depth, quoted, current = [], 0, False, ""
    for char in text:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            args.append(current.strip())
            current = ""
            continue
        current += char
    if current.strip():
        args.append(current.strip())
    return args


_TAG_FIELD = re.compile(r"^tags(?:\[\s*'?([^'\]]+)'?\s*\]|\.(.+))$", re.IGNORECASE)


def _field(name: str, resource: dict) -> Any:
    lowered = name.lower()
    if lowered in ("type", "location", "name"):
        return resource.get(lowered)
    tags = resource.get("tags") or {}
    if lowered == "tags":
        return tags
    found = _TAG_FIELD.match(name)
    if found:
        wanted = (found.group(1) or found.group(2)).lower()
        return next((value for key, value in tags.items() if key.lower() == wanted), None)
    return None


def _condition(condition: dict, resource: dict, params: dict) -> bool:
    if "allOf" in condition:
        return all(_condition(item, resource, params) for item in condition["allOf"])
    if "anyOf" in condition:
        return any(_condition(item, resource, params) for item in condition["anyOf"])
    if "not" in condition:
        return not _condition(condition["not"], resource, params)
    value = _field(str(_expression(condition.get("field"), params)), resource)
    text = str(value).lower() if value is not None else None
    for operator, operand in condition.items():
        if operator == "field":
            continue
        operand = _expression(operand, params)
        op = operator.lower()
        if op == "exists":
            return (value is not None) == (str(operand).lower() == "true")
        if op in ("in", "notin"):
            inside = text is not None and text in [str(item).lower() for item in operand or []]
            return inside if op == "in" else not inside
        if op in ("equals", "notequals"):
            same = text == str(operand).lower()
            return same if op == "equals" else not same
        if op in ("like", "notlike"):
            like = text is not None and fnmatch.fnmatchcase(text, str(operand).lower())
            return like if op == "like" else not like
        if op in ("contains", "notcontains"):
            has = text is not None and str(operand).lower() in text
            return has if op == "contains" else not has
        raise ArmError(400, "InvalidPolicyRule", f"Unsupported policy condition operator '{operator}'.")
    return False
