"""Request validation for gallery writes (pure: request bodies in, cleaned values or ArmError out).

The rules and wordings Azure Compute Gallery answers with, where known (aib-reference-2 §4 and
the GalleryRP REST spec); wordings marked "emulator's" in emulator/README.md are not confirmed
against Azure.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from emulator.core import ArmError
from emulator.resources import locations

GALLERY_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.]{0,78}[A-Za-z0-9])?$")
GALLERY_NAME_RULE = r"^[^_\W][\w.]{0,79}(?<!\.)$"
IMAGE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9])?$")
IMAGE_NAME_RULE = r"^[^_\W][\w-._]{0,79}(?<![-.])$"
VERSION_NAME = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
INT32_MAX = 2**31 - 1

OS_TYPES = ("Windows", "Linux")
OS_STATES = ("Generalized", "Specialized")
GENERATIONS = ("V1", "V2")
ARCHITECTURES = ("x64", "Arm64")
SECURITY_TYPES = ("Standard", "TrustedLaunch", "TrustedLaunchSupported", "ConfidentialVM", "ConfidentialVMSupported",
                  "TrustedLaunchAndConfidentialVmSupported")
STORAGE_TYPES = ("Standard_LRS", "Standard_ZRS", "Premium_LRS", "PremiumV2_LRS")
REPLICATION_MODES = ("Full", "Shallow")
# From this api-version on, a new definition without SecurityType is Gen2 TrustedLaunchSupported (aib-reference-2 §4.5).
TRUSTED_LAUNCH_DEFAULT_SINCE = "2025-03-03"

# Fields a definition keeps for life (PUT/PATCH changing them: 409 PropertyChangeNotAllowed).
DEFINITION_IMMUTABLE = ("osType", "osState", "hyperVGeneration", "architecture", "identifier", "features",
                        "purchasePlan")
DEFINITION_MUTABLE = ("description", "eula", "privacyStatementUri", "releaseNoteUri", "endOfLifeDate", "recommended",
                      "disallowed", "allowUpdateImage")
VERSION_PUBLISHING_IMMUTABLE = ("storageAccountType", "replicationMode")


def body_object(body: Any, what: str) -> dict:
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", f"The request content for '{what}' must be a JSON object.")
    return body


def properties_of(body: dict, what: str) -> dict:
    props = body.get("properties")
    if props is None:
        return {}
    if not isinstance(props, dict):
        raise ArmError(400, "InvalidRequestContent", f"'{what}.properties' must be a JSON object.")
    return props


def require_location(body: dict) -> str:
    location = body.get("location")
    if not isinstance(location, str) or not location.strip():
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
    return locations.normalize(location)


def check_name(name: str, pattern: re.Pattern[str], rule: str, parameter: str) -> None:
    if not pattern.match(name):
        raise ArmError(400, "InvalidParameter",
                       f"The entity name '{parameter}' is invalid according to its validation rule: {rule}.",
                       target=parameter)


def check_version_name(name: str) -> None:
    found = VERSION_NAME.match(name)
    if not found or any(int(part) > INT32_MAX for part in found.groups()):
        raise ArmError(400, "InvalidParameter",
                       f"The gallery image version name '{name}' is invalid. It must follow the format "
                       "<MajorVersion>.<MinorVersion>.<Patch>, each a 32-bit integer.",
                       target="galleryImageVersionName")


def missing(path: str) -> ArmError:
    return ArmError(400, "InvalidParameter", f"Required parameter '{path}' is missing (null).", target=path)


def one_of(value: Any, allowed: tuple[str, ...], path: str) -> str:
    """Enum values compare case-insensitively, as Compute does, and come back in Azure's casing."""
    for choice in allowed:
        if isinstance(value, str) and value.lower() == choice.lower():
            return choice
    raise ArmError(400, "InvalidParameter",
                   f"The value '{value}' of parameter '{path}' is not valid. Allowed values are "
                   f"{', '.join(allowed)}.", target=path)


def date_time(value: Any, path: str) -> str:
    try:
        dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ArmError(400, "InvalidParameter", f"The value '{value}' of parameter '{path}' is not a valid date.",
                       target=path) from None
    return str(value)


def features_list(value: Any, path: str) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) and item.get("name") for item in value):
        raise ArmError(400, "InvalidParameter", f"The value of parameter '{path}' is invalid.", target=path)
    features = [{"name": str(item["name"]), "value": str(item.get("value") or "")} for item in value]
    for item in features:
        if item["name"].lower() == "securitytype":
            item["name"] = "SecurityType"
            item["value"] = one_of(item["value"], SECURITY_TYPES, f"{path}.SecurityType")
    return features


def security_type(features: list[dict]) -> str:
    return next((item["value"] for item in features if item["name"].lower() == "securitytype"), "Standard")


def new_definition_properties(props: dict, api_version: str) -> dict:
    """A new definition's properties: required fields, enums and the api-version's defaults."""
    base = "galleryImage.properties"
    for name in ("osType", "osState", "identifier"):
        if props.get(name) in (None, ""):
            raise missing(f"{base}.{name}")
    identifier = props["identifier"]
    if not isinstance(identifier, dict):
        raise ArmError(400, "InvalidParameter", f"The value of parameter '{base}.identifier' is invalid.",
                       target=f"{base}.identifier")
    for name in ("publisher", "offer", "sku"):
        if not identifier.get(name):
            raise missing(f"{base}.identifier.{name}")
    features = features_list(props.get("features"), f"{base}.features")
    given_generation = props.get("hyperVGeneration")
    new_defaults = api_version >= TRUSTED_LAUNCH_DEFAULT_SINCE
    generation = (one_of(given_generation, GENERATIONS, f"{base}.hyperVGeneration") if given_generation
                  else ("V2" if new_defaults else "V1"))
    if new_defaults and generation == "V2" and not any(item["name"] == "SecurityType" for item in features):
        features.append({"name": "SecurityType", "value": "TrustedLaunchSupported"})
    kind = security_type(features)
    if kind != "Standard" and generation != "V2":
        raise ArmError(400, "InvalidParameter",
                       f"The security type '{kind}' requires hyperVGeneration 'V2'; this definition is "
                       f"'{generation}'.", target=f"{base}.hyperVGeneration")
    cleaned: dict[str, Any] = {
        "osType": one_of(props["osType"], OS_TYPES, f"{base}.osType"),
        "osState": one_of(props["osState"], OS_STATES, f"{base}.osState"),
        "hyperVGeneration": generation,
        "architecture": one_of(props.get("architecture") or "x64", ARCHITECTURES, f"{base}.architecture"),
        "identifier": {name: str(identifier[name]) for name in ("publisher", "offer", "sku")},
        "features": features,
    }
    if props.get("purchasePlan"):
        cleaned["purchasePlan"] = dict(props["purchasePlan"])
    cleaned.update(mutable_definition_properties(props))
    return cleaned


def mutable_definition_properties(props: dict) -> dict:
    base = "galleryImage.properties"
    cleaned = {name: props[name] for name in DEFINITION_MUTABLE if props.get(name) is not None}
    if "endOfLifeDate" in cleaned:
        cleaned["endOfLifeDate"] = date_time(cleaned["endOfLifeDate"], f"{base}.endOfLifeDate")
    return cleaned


def definition_changes(current: dict, props: dict) -> None:
    """409 PropertyChangeNotAllowed when a PUT or PATCH gives an immutable field a new value
    (fields left out keep their value)."""
    base = "galleryImage.properties"
    for name in DEFINITION_IMMUTABLE:
        if props.get(name) is None:
            continue
        given, now = props[name], current.get(name)
        if name == "features":
            given = {item["name"].lower(): item["value"].lower() for item in features_list(given, f"{base}.features")}
            now = {item["name"].lower(): str(item["value"]).lower() for item in now or []}
        elif isinstance(given, dict):
            given = {key: str(value).lower() for key, value in given.items() if value is not None}
            now = {key: str(value).lower() for key, value in (now or {}).items() if value is not None}
        else:
            given, now = str(given).lower(), str(now or "").lower()
        if given != now:
            raise property_change(f"{base}.{name}")


def property_change(path: str) -> ArmError:
    return ArmError(409, "PropertyChangeNotAllowed", f"Changing property '{path}' is not allowed.", target=path)


def target_regions(publishing: dict, location: str) -> list[dict]:
    """publishingProfile.targetRegions, cleaned (display names, replica counts 1-100); the version's
    region alone when none are given."""
    base = "galleryImageVersion.properties.publishingProfile"
    default_count = replica_count(publishing.get("replicaCount", 1), f"{base}.replicaCount")
    default_type = one_of(publishing.get("storageAccountType") or "Standard_LRS", STORAGE_TYPES,
                          f"{base}.storageAccountType")
    given = publishing.get("targetRegions") or [{"name": location}]
    if not isinstance(given, list):
        raise ArmError(400, "InvalidParameter", f"The value of parameter '{base}.targetRegions' is invalid.",
                       target=f"{base}.targetRegions")
    regions: list[dict] = []
    for index, item in enumerate(given):
        path = f"{base}.targetRegions[{index}]"
        if not isinstance(item, dict) or not item.get("name"):
            raise missing(f"{path}.name")
        if locations.region(item["name"]) is None:
            raise ArmError(400, "InvalidParameter", f"The region '{item['name']}' is not a valid Azure region.",
                           target=f"{path}.name")
        region = {
            "name": locations.display_name(item["name"]),
            "regionalReplicaCount": replica_count(item.get("regionalReplicaCount", default_count),
                                                  f"{path}.regionalReplicaCount"),
            "storageAccountType": one_of(item.get("storageAccountType") or default_type, STORAGE_TYPES,
                                         f"{path}.storageAccountType"),
        }
        if item.get("excludeFromLatest") is not None:
            region["excludeFromLatest"] = bool(item["excludeFromLatest"])
        if any(locations.normalize(other["name"]) == locations.normalize(region["name"]) for other in regions):
            raise ArmError(400, "InvalidParameter", f"The region '{region['name']}' is listed more than once.",
                           target=f"{path}.name")
        regions.append(region)
    return regions


def replica_count(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise ArmError(400, "InvalidParameter",
                       f"The value '{value}' of parameter '{path}' is out of range. The value must be between 1 and 100.",
                       target=path)
    return value
