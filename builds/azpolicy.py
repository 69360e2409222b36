"""Azure Policy deny rules against the resources a build creates: what can be known before
submitting. Pure: no Django, no I/O.

Image Builder creates a staging resource group (unless one is given), a storage account in
it, and for the build a VM, its NIC, disk, VNet (unless one is given), public IP and NSG; it
tags them with its own tags plus `managedResourceTags`. `staging_resources(body, ...)` lists
them as ARM would see them (`type`, `location`, `name`, `tags`); `denies(rule, parameters,
resource)` evaluates a policy rule's `if` the way Azure does for the aliases that matter
here (type, location, name, tags, tags[x]), with allOf/anyOf/not and the common conditions.
Anything else in a rule (other aliases, `count`, `value` expressions) makes the rule
"unknown" (None), which the caller reports as not checked rather than guessing.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RESOURCE_GROUP_TYPE = "Microsoft.Resources/subscriptions/resourceGroups"
_PARAMETER = re.compile(r"^\[parameters\('([^']+)'\)\]$", re.IGNORECASE)
_CONCAT = re.compile(r"^\[concat\((.*)\)\]$", re.IGNORECASE)
_TAG_FIELD = re.compile(r"^tags(?:\[['\"]?([^\]'\"]+)['\"]?\]|\.(.+))$", re.IGNORECASE)


class Unknown(Exception):
    """The rule uses something this evaluator does not model."""


@dataclass(frozen=True)
class Resource:
    type: str
    location: str
    name: str
    tags: tuple[tuple[str, str], ...] = ()
    what: str = ""  # how to name it in a message

    def tag(self, name: str) -> str | None:
        return next((value for key, value in self.tags if key.lower() == name.lower()), None)


def staging_resources(body: Mapping[str, Any], *, template_name: str = "<template>") -> list[Resource]:
    """The resources Image Builder creates for a build of `body` (before any customizer runs)."""
    props = body.get("properties") if isinstance(body.get("properties"), Mapping) else {}
    location = str(body.get("location") or "").replace(" ", "").lower()
    managed = props.get("managedResourceTags") if isinstance(props.get("managedResourceTags"), Mapping) else {}
    tags = tuple({"createdBy": "AzureVMImageBuilder", "imageTemplateName": template_name, **managed}.items())
    found: list[Resource] = []
    if not props.get("stagingResourceGroup"):
        found.append(Resource(RESOURCE_GROUP_TYPE, location, "IT_<group>_<template>", tags, "the staging resource group"))
    elif "/resourcegroups/" in str(props["stagingResourceGroup"]).lower():
        name = str(props["stagingResourceGroup"]).rstrip("/").rsplit("/", 1)[-1]
        found.append(Resource(RESOURCE_GROUP_TYPE, location, name, tags, "the staging resource group"))
    found.append(Resource("Microsoft.Storage/storageAccounts", location, "<staging storage>", tags,
                          "the staging storage account"))
    vnet = ((props.get("vmProfile") or {}).get("vnetConfig") or {}) if isinstance(props.get("vmProfile"), Mapping) else {}
    found += [Resource("Microsoft.Compute/virtualMachines", location, "<build vm>", tags, "the build VM"),
              Resource("Microsoft.Network/networkInterfaces", location, "<build nic>", tags, "the build VM's NIC"),
              Resource("Microsoft.Compute/disks", location, "<build disk>", tags, "the build VM's OS disk")]
    if not (isinstance(vnet, Mapping) and vnet.get("subnetId")):
        found += [Resource("Microsoft.Network/virtualNetworks", location, "<build vnet>", tags, "the build VNet"),
                  Resource("Microsoft.Network/publicIPAddresses", location, "<build ip>", tags,
                           "the build VM's public IP"),
                  Resource("Microsoft.Network/networkSecurityGroups", location, "<build nsg>", tags,
                           "the build NSG")]
    elif vnet.get("containerInstanceSubnetId"):
        found.append(Resource("Microsoft.ContainerInstance/containerGroups", location, "<isolation aci>", tags,
                              "the isolated build's container instance"))
    else:
        found += [Resource("Microsoft.Compute/virtualMachines", location, "<proxy vm>", tags, "the proxy VM"),
                  Resource("Microsoft.Network/loadBalancers", location, "<proxy lb>", tags,
                           "the proxy load balancer")]
    return found


def denies(rule: Mapping[str, Any], parameters: Mapping[str, Any], resource: Resource, *,
           mode: str = "All") -> bool | None:
    """True when the rule's effect is deny and its `if` matches the resource; False when it does
    not; None when the rule cannot be evaluated here (an unknown alias or expression)."""
    then = rule.get("then") if isinstance(rule.get("then"), Mapping) else {}
    try:
        effect = _value(then.get("effect"), parameters)
        if not isinstance(effect, str) or effect.lower() != "deny":
            return False
        if mode.lower() == "indexed" and resource.type == RESOURCE_GROUP_TYPE:
            return False
        return _matches(rule.get("if") or {}, parameters, resource)
    except Unknown:
        return None


def _matches(condition: Any, parameters: Mapping[str, Any], resource: Resource) -> bool:
    if not isinstance(condition, Mapping):
        raise Unknown("condition")
    if "allOf" in condition:
        return all(_matches(item, parameters, resource) for item in condition["allOf"])
    if "anyOf" in condition:
        return any(_matches(item, parameters, resource) for item in condition["anyOf"])
    if "not" in condition:
        return not _matches(condition["not"], parameters, resource)
    if "field" not in condition:
        raise Unknown("no field")
    actual = _field(str(condition["field"]), resource)
    for operator, expected in condition.items():
        if operator == "field":
            continue
        return _compare(operator, actual, _value(expected, parameters))
    raise Unknown("no operator")


def _field(name: str, resource: Resource) -> str | None:
    lowered = name.lower()
    if lowered == "type":
        return resource.type
    if lowered == "location":
        return resource.location
    if lowered == "name":
        return resource.name
    found = _TAG_FIELD.match(name)
    if found:
        return resource.tag(found.group(1) or found.group(2))
    raise Unknown(f"field {name}")


def _compare(operator: str, actual: str | None, expected: Any) -> bool:
    op = operator.lower()
    text = (actual or "").lower()
    if op == "exists":
        wanted = expected if isinstance(expected, bool) else str(expected).lower() == "true"
        return (actual is not None) == wanted
    if op in ("equals", "notequals"):
        same = actual is not None and text == str(expected).lower()
        return same if op == "equals" else not same
    if op in ("in", "notin"):
        if not isinstance(expected, list):
            raise Unknown("in without a list")
        inside = actual is not None and text in {str(item).lower().replace(" ", "") if _is_location(item) else
                                                 str(item).lower() for item in expected}
        return inside if op == "in" else not inside
    if op in ("like", "notlike"):
        like = actual is not None and fnmatch.fnmatchcase(text, str(expected).lower())
        return like if op == "like" else not like
    if op in ("contains", "notcontains"):
        contains = actual is not None and str(expected).lower() in text
        return contains if op == "contains" else not contains
    raise Unknown(f"operator {operator}")


def _is_location(item: Any) -> bool:
    return isinstance(item, str) and " " in item and item.replace(" ", "").isalnum()


def _value(value: Any, parameters: Mapping[str, Any]) -> Any:
    if isinstance(value, list):
        return [_value(item, parameters) for item in value]
    if not isinstance(value, str) or not value.startswith("["):
        return value
    found = _PARAMETER.match(value)
    if found:
        name = found.group(1)
        if name not in parameters:
            raise Unknown(f"parameter {name}")
        return parameters[name]
    found = _CONCAT.match(value)
    if found:
        parts = []
        for part in re.findall(r"'[^']*'|parameters\('[^']+'\)", found.group(1)):
            parts.append(part.strip("'") if part.startswith("'") else
                         str(_value(f"[{part}]", parameters)))
        return "".join(parts)
    raise Unknown(f"expression {value}")
