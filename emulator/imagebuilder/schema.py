"""Image Builder request bodies (api-version 2025-10-01): shape, types and the service's rules.

Pure functions, no I/O. `template_for_create` and `update_for_patch` return a cleaned copy of
the body (read-only fields dropped, the defaults the service echoes filled in) or raise
ArmError 400 with the message Image Builder gives:

- unknown or mis-cased fields and wrong JSON types fail the way the service's strict Go
  decoder does since 2024-02-01 ("Unmarshalling entity encountered error: ... unknown field");
- rule violations are "Validation failed: '<path>': ..." with the service's link;
- read-only fields (id, provisioningState, exactVersion, identity principal ids ...) are
  ignored on input, because the SDK strips them anyway and Azure does the same.

Checks that need the catalog (does the source image exist?) happen at provisioning, in the
backend, because Azure reports them as provisioningError rather than as a 400.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from emulator.core.http import ArmError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9\-_.]{1,64}$")
TEMPLATE_REFERENCE = "http://aka.ms/azvmimagebuildertmplref"
GO_TYPE = "*v2025_10_01.ImageTemplate"

_SHA256 = re.compile(r"^([0-9a-f]{64})?$")
_GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_IDENTITY_ID = re.compile(r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.managedidentity/"
                          r"userassignedidentities/[^/]+$", re.IGNORECASE)
_MANAGED_IMAGE_ID = re.compile(r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.compute/"
                               r"images/[^/]+$", re.IGNORECASE)
_GALLERY_IMAGE_ID = re.compile(r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.compute/"
                               r"galleries/[^/]+/images/[^/]+(/versions/[^/]+)?$", re.IGNORECASE)
_GALLERY_VERSION_ID = re.compile(
    r"^(/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.compute/galleries/[^/]+"
    r"|/subscriptions/[^/]+/providers/microsoft\.compute/locations/[^/]+/sharedgalleries/[^/]+)"
    r"/images/[^/]+/versions/[^/]+$", re.IGNORECASE)
_RESOURCE_GROUP_ID = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)$", re.IGNORECASE)
_VERSION_NAME = re.compile(r"^\d+\.\d+\.\d+$")


# ---------------------------------------------------------------------------------------
# Error messages
# ---------------------------------------------------------------------------------------

def missing(where: str, name: str) -> ArmError:
    return ArmError(400, "ValidationFailed",
                    f"Validation failed: '{where}': Missing field '{name}'. Please review {TEMPLATE_REFERENCE} "
                    "for details on fields required in the Image Builder Template.")


def bad_value(where: str, name: str, value: Any) -> ArmError:
    shown = value if isinstance(value, str) else _json_text(value)
    return ArmError(400, "ValidationFailed",
                    f"Validation failed: '{where}': Field '{name}' has a bad value: '{shown}'. Please review "
                    f"{TEMPLATE_REFERENCE} for details on fields requirements in the Image Builder Template.")


def invalid(where: str, sentence: str) -> ArmError:
    return ArmError(400, "ValidationFailed",
                    f"Validation failed: '{where}': {sentence} Please review {TEMPLATE_REFERENCE} "
                    "for details on fields requirements in the Image Builder Template.")


def not_in_version(where: str, name: str, version: str, since: str) -> ArmError:
    """A field newer than the api-version asked for (our wording: the service's is not documented)."""
    return ArmError(400, "ValidationFailed",
                    f"Validation failed: '{where}': Field '{name}' is not supported in api-version '{version}'; it "
                    f"was introduced in api-version '{since}'. Please review {TEMPLATE_REFERENCE} for details on "
                    "fields requirements in the Image Builder Template.")


def _go_path(path: list[str]) -> str:
    fields = [segment for segment in path if not segment.startswith("[")]
    return ": ".join(f"struct field {segment[:1].upper()}{segment[1:]}" for segment in fields)


def unknown_field(path: list[str], name: str, go_type: str = GO_TYPE) -> ArmError:
    where = _go_path(path)
    return ArmError(400, "ValidationFailed",
                    f"Unmarshalling entity encountered error: unmarshalling type {go_type}: "
                    f"{where + ': ' if where else ''}unknown field \"{name}\". There is an issue with the syntax "
                    "with the JSON template you are submitting. Please check the field names and their casing: "
                    f"visit {TEMPLATE_REFERENCE}.")


def wrong_type(path: list[str], value: Any, expected: str, go_type: str = GO_TYPE) -> ArmError:
    got = {bool: "bool", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), "null")
    dotted = ".".join(path).replace(".[", "[")
    return ArmError(400, "ValidationFailed",
                    f"Unmarshalling entity encountered error: unmarshalling type {go_type}: json: cannot unmarshal "
                    f"{got} into Go struct field {dotted} of type {expected}. There is an issue with the syntax "
                    f"with the JSON template you are submitting. Please visit {TEMPLATE_REFERENCE}.")


def _json_text(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


# ---------------------------------------------------------------------------------------
# A small declarative schema: field names, JSON types, read-only fields, discriminators
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Obj:
    fields: dict[str, Any]
    readonly: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Union:
    """A discriminated union on `type` (or another property)."""

    variants: dict[str, Obj]
    key: str = "type"


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class MapOf:
    item: Any


@dataclass(frozen=True)
class Scalar:
    go: str  # the Go type named in decoder errors
    python: tuple = field(default=())


STR = Scalar("string", (str,))
INT = Scalar("int32", (int,))
BOOL = Scalar("bool", (bool,))
ANY_OBJ = Scalar("object", (dict,))

_SCRIPT = {"name": STR, "type": STR, "scriptUri": STR, "sha256Checksum": STR, "inline": ListOf(STR)}
_POWERSHELL = {**_SCRIPT, "runElevated": BOOL, "runAsSystem": BOOL, "validExitCodes": ListOf(INT)}
_FILE = {"name": STR, "type": STR, "sourceUri": STR, "sha256Checksum": STR, "destination": STR}

CUSTOMIZER = Union({
    "Shell": Obj(_SCRIPT),
    "PowerShell": Obj(_POWERSHELL),
    "File": Obj(_FILE),
    "WindowsRestart": Obj({"name": STR, "type": STR, "restartCommand": STR, "restartCheckCommand": STR,
                           "restartTimeout": STR}),
    "WindowsUpdate": Obj({"name": STR, "type": STR, "searchCriteria": STR, "filters": ListOf(STR),
                          "updateLimit": INT}),
})
VALIDATOR = Union({"Shell": Obj(_SCRIPT), "PowerShell": Obj(_POWERSHELL), "File": Obj(_FILE)})
SOURCE = Union({
    "PlatformImage": Obj({"type": STR, "publisher": STR, "offer": STR, "sku": STR, "version": STR,
                          "exactVersion": STR,
                          "planInfo": Obj({"planName": STR, "planProduct": STR, "planPublisher": STR})},
                         frozenset({"exactVersion"})),
    "ManagedImage": Obj({"type": STR, "imageId": STR}),
    "SharedImageVersion": Obj({"type": STR, "imageVersionId": STR, "exactVersion": STR}, frozenset({"exactVersion"})),
})
_DISTRIBUTOR_COMMON = {"type": STR, "runOutputName": STR, "artifactTags": MapOf(STR)}
DISTRIBUTOR = Union({
    "ManagedImage": Obj({**_DISTRIBUTOR_COMMON, "imageId": STR, "location": STR}),
    "SharedImage": Obj({**_DISTRIBUTOR_COMMON, "galleryImageId": STR, "replicationRegions": ListOf(STR),
                        "excludeFromLatest": BOOL, "storageAccountType": STR,
                        "targetRegions": ListOf(Obj({"name": STR, "replicaCount": INT, "storageAccountType": STR})),
                        "versioning": Union({"Latest": Obj({"scheme": STR, "major": INT}),
                                             "Source": Obj({"scheme": STR})}, key="scheme"),
                        "replicationMode": STR}),
    "VHD": Obj({**_DISTRIBUTOR_COMMON, "uri": STR}),
})
VM_PROFILE = Obj({
    "vmSize": STR, "osDiskSizeGB": INT, "userAssignedIdentities": ListOf(STR),
    "vnetConfig": Obj({"subnetId": STR, "containerInstanceSubnetId": STR, "proxyVmSize": STR}),
})
IDENTITY = Obj({"type": STR, "userAssignedIdentities": MapOf(Obj({"principalId": STR, "clientId": STR},
                                                                 frozenset({"principalId", "clientId"})))})
_READONLY_ANY = Scalar("object", (dict, list, str, int, float, bool, type(None)))
PROPERTIES = Obj({
    "source": SOURCE,
    "customize": ListOf(CUSTOMIZER),
    "optimize": Obj({"vmBoot": Obj({"state": STR}),
                     "workload": Obj({"state": STR, "scriptUri": STR, "sha256Checksum": STR})}),
    "validate": Obj({"continueDistributeOnFailure": BOOL, "sourceValidationOnly": BOOL,
                     "inVMValidations": ListOf(VALIDATOR)}),
    "distribute": ListOf(DISTRIBUTOR),
    "errorHandling": Obj({"onCustomizerError": STR, "onValidationError": STR}),
    "provisioningState": _READONLY_ANY,
    "provisioningError": _READONLY_ANY,
    "lastRunStatus": _READONLY_ANY,
    "buildTimeoutInMinutes": INT,
    "vmProfile": VM_PROFILE,
    "additionalDataDisks": ListOf(Obj({"sizeGB": INT})),
    "stagingResourceGroup": STR,
    "exactStagingResourceGroup": _READONLY_ANY,
    "autoRun": Obj({"state": STR}),
    "managedResourceTags": MapOf(STR),
}, frozenset({"provisioningState", "provisioningError", "lastRunStatus", "exactStagingResourceGroup"}))
TEMPLATE = Obj({
    "id": _READONLY_ANY, "name": _READONLY_ANY, "type": _READONLY_ANY, "systemData": _READONLY_ANY,
    "location": STR, "tags": MapOf(STR), "identity": IDENTITY, "properties": PROPERTIES,
}, frozenset({"id", "name", "type", "systemData"}))
UPDATE = Obj({
    "identity": Obj({"type": STR, "userAssignedIdentities": MapOf(_READONLY_ANY)}),
    "tags": MapOf(STR),
    "properties": Obj({"distribute": ListOf(DISTRIBUTOR), "vmProfile": VM_PROFILE}),
})
TRIGGER = Obj({
    "id": _READONLY_ANY, "name": _READONLY_ANY, "type": _READONLY_ANY, "systemData": _READONLY_ANY,
    "properties": Union({"SourceImage": Obj({"kind": STR, "status": _READONLY_ANY, "provisioningState": _READONLY_ANY},
                                            frozenset({"status", "provisioningState"}))}, key="kind"),
}, frozenset({"id", "name", "type", "systemData"}))


# ---------------------------------------------------------------------------------------
# api-versions: what each one added (aib-reference-2 §3.2), as data
# ---------------------------------------------------------------------------------------

API_VERSIONS = ("2020-02-14", "2021-10-01", "2022-02-14", "2022-07-01", "2023-07-01", "2024-02-01", "2025-10-01")
LATEST = API_VERSIONS[-1]
STRICT_FROM = "2024-02-01"  # field names case-sensitive, unknown fields refused (release notes, May 2024)

# Fields each api-version introduced, by path in the body: dots between object fields,
# `[Variant]` for one variant of a discriminated union. Everything else in TEMPLATE and
# UPDATE exists since 2020-02-14. The `imageTemplates/triggers` resource type (2022-07-01)
# is declared with the provider (routes.py), not here.
TEMPLATE_INTRODUCED: dict[str, tuple[str, ...]] = {
    "2021-10-01": ("systemData", "properties.vmProfile.userAssignedIdentities",
                   "properties.vmProfile.vnetConfig.proxyVmSize", "properties.source[PlatformImage].exactVersion"),
    "2022-02-14": ("properties.validate", "properties.stagingResourceGroup", "properties.exactStagingResourceGroup"),
    "2022-07-01": ("properties.optimize", "properties.validate.inVMValidations[File]",
                   "properties.distribute[SharedImage].targetRegions", "properties.distribute[SharedImage].versioning",
                   "properties.distribute[VHD].uri", "properties.source[SharedImageVersion].exactVersion"),
    "2023-07-01": ("properties.errorHandling",),
    "2024-02-01": ("properties.autoRun", "properties.managedResourceTags",
                   "properties.vmProfile.vnetConfig.containerInstanceSubnetId"),
    "2025-10-01": ("properties.optimize.workload", "properties.distribute[SharedImage].replicationMode",
                   "properties.additionalDataDisks"),
}
UPDATE_INTRODUCED: dict[str, tuple[str, ...]] = {
    "2021-10-01": ("properties.vmProfile.userAssignedIdentities", "properties.vmProfile.vnetConfig.proxyVmSize"),
    "2022-07-01": ("properties.distribute[SharedImage].targetRegions", "properties.distribute[SharedImage].versioning",
                   "properties.distribute[VHD].uri"),
    "2023-07-01": ("properties",),  # PATCH may change distribute
    "2024-02-01": ("properties.vmProfile",),  # ... and vmProfile
    "2025-10-01": ("properties.distribute[SharedImage].replicationMode",),
}


def go_type(version: str, name: str = "ImageTemplate") -> str:
    """The Go type the service's decoder names in its errors, e.g. *v2022_07_01.ImageTemplate."""
    return f"*v{version.replace('-', '_')}.{name}"


def _later(table: dict[str, tuple[str, ...]], version: str) -> dict[str, str]:
    """path -> the api-version that introduced it, for every path newer than `version`."""
    return {path: since for since, paths in table.items() if since > version for path in paths}


@dataclass(frozen=True)
class Version:
    """How one api-version reads a body: its Go type, strictness and the fields it lacks."""

    name: str
    go_type: str
    strict: bool
    later: dict[str, str]  # path -> api-version that introduced it (absent from this version)

    @classmethod
    def of(cls, version: str, table: dict[str, tuple[str, ...]], type_name: str) -> Version:
        return cls(version, go_type(version, type_name), version >= STRICT_FROM, _later(table, version))


def _spath(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def conform(value: Any, spec: Any, path: list[str], where: str, go_type: str = GO_TYPE, *,
            version: Version | None = None, spath: str = "") -> Any:
    """Check value against spec; return a copy without read-only fields. Raises ArmError 400.

    With `version`, fields that api-version lacks are refused, and before 2024-02-01 field
    names match case-insensitively and unknown fields are dropped, as the service's lenient
    decoder did."""
    if version is not None:
        go_type = version.go_type
    if value is None:
        return None  # JSON null decodes to the zero value, as in Go
    if isinstance(spec, Scalar):
        ok = isinstance(value, spec.python) and not (spec.python == (int,) and isinstance(value, bool))
        if not ok:
            raise wrong_type(path, value, spec.go, go_type)
        return value
    if isinstance(spec, ListOf):
        if not isinstance(value, list):
            raise wrong_type(path, value, "[]" + getattr(spec.item, "go", "object"), go_type)
        return [conform(item, spec.item, [*path, f"[{i}]"], f"{where}[{i}]", go_type, version=version, spath=spath)
                for i, item in enumerate(value)]
    if isinstance(spec, MapOf):
        if not isinstance(value, dict):
            raise wrong_type(path, value, "map[string]" + getattr(spec.item, "go", "object"), go_type)
        return {key: conform(item, spec.item, [*path, key], f"{where}.{key}", go_type, version=version, spath=spath)
                for key, item in value.items()}
    if isinstance(spec, Union):
        if not isinstance(value, dict):
            raise wrong_type(path, value, "object", go_type)
        key = spec.key
        if version is not None and not version.strict:
            key = next((name for name in value if name.lower() == spec.key.lower()), spec.key)
        kind = value.get(key)
        if kind is None:
            raise missing(where, spec.key)
        variant = spec.variants.get(kind) if isinstance(kind, str) else None
        if version is not None and variant is not None and f"{spath}[{kind}]" in version.later:
            variant = None  # a variant this api-version does not have
        if variant is None:
            parent, _, leaf = where.rpartition(".")
            raise bad_value(parent or where, f"{leaf}.{spec.key}" if parent else spec.key, kind)
        return conform(value, variant, path, where, go_type, version=version, spath=f"{spath}[{kind}]")
    if isinstance(spec, Obj):
        if not isinstance(value, dict):
            raise wrong_type(path, value, "object", go_type)
        cleaned = {}
        for key, item in value.items():
            if key not in spec.fields and version is not None and not version.strict:
                key = next((name for name in spec.fields if name.lower() == key.lower()), key)
            field_path = _spath(spath, key)
            since = version.later.get(field_path) if version is not None else None
            if since is not None and version is not None and not version.strict:
                raise not_in_version(where, key, version.name, since)
            if key not in spec.fields or since is not None:
                if version is not None and not version.strict:
                    continue  # the lenient decoder drops what it does not know
                raise unknown_field(path, key, go_type)
            if key in spec.readonly:
                continue
            checked = conform(item, spec.fields[key], [*path, key], f"{where}.{key}", go_type, version=version,
                              spath=field_path)
            if checked is not None:
                cleaned[key] = checked
        return cleaned
    raise TypeError(f"unknown spec {spec!r}")


def project(value: Any, spec: Any, later: dict[str, str], spath: str = "") -> Any:
    """The stored document as an older api-version shows it: fields that version lacks left out."""
    if not later or not isinstance(value, (dict, list)):
        return value
    if isinstance(spec, ListOf) and isinstance(value, list):
        return [project(item, spec.item, later, spath) for item in value]
    if isinstance(spec, MapOf) and isinstance(value, dict):
        return {key: project(item, spec.item, later, spath) for key, item in value.items()}
    if isinstance(spec, Union) and isinstance(value, dict):
        kind = value.get(spec.key)
        variant = spec.variants.get(kind) if isinstance(kind, str) else None
        return project(value, variant, later, f"{spath}[{kind}]") if variant else value
    if isinstance(spec, Obj) and isinstance(value, dict):
        shown = {}
        for key, item in value.items():
            field_path = _spath(spath, key)
            if field_path in later:
                continue
            shown[key] = project(item, spec.fields[key], later, field_path) if key in spec.fields else item
        return shown
    return value


def render_template(resource: dict, version: str) -> dict:
    """An ImageTemplate (as rendered for the latest api-version) shaped for `version`."""
    if version == LATEST:
        return resource
    return project(resource, TEMPLATE, _later(TEMPLATE_INTRODUCED, version))


# ---------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------

def check_name(name: str, what: str = "imageTemplateName") -> None:
    if not NAME_PATTERN.match(name):
        raise ArmError(400, "ValidationFailed",
                       f"Validation failed: The {what} '{name}' is invalid. It must be 1 to 64 characters long "
                       "and contain only letters, digits, '-', '_' and '.'.")


def _check_script(item: dict, where: str, *, validator: bool = False) -> None:
    has_uri = bool(item.get("scriptUri"))
    has_inline = bool(item.get("inline"))
    if has_uri == has_inline:
        raise invalid(where, "Exactly one of 'scriptUri' or 'inline' must be specified.")
    _check_checksum(item, where)
    if item.get("type") == "PowerShell" and item.get("runAsSystem") and not item.get("runElevated"):
        raise invalid(where, "'runAsSystem' can only be true when 'runElevated' is also true.")


def _check_checksum(item: dict, where: str) -> None:
    checksum = item.get("sha256Checksum")
    if checksum is not None and not _SHA256.match(checksum):
        raise bad_value(where, "sha256Checksum", checksum)


def _check_file(item: dict, where: str) -> None:
    for name in ("sourceUri", "destination"):
        if not item.get(name):
            raise missing(where, name)
    _check_checksum(item, where)


def _check_customizer(item: dict, where: str) -> None:
    kind = item["type"]
    if kind in ("Shell", "PowerShell"):
        _check_script(item, where)
    elif kind == "File":
        _check_file(item, where)
    elif kind == "WindowsRestart":
        timeout = item.get("restartTimeout")
        if timeout and not _GO_DURATION.match(timeout):
            raise bad_value(where, "restartTimeout", timeout)
    elif kind == "WindowsUpdate":
        limit = item.get("updateLimit")
        if limit is not None and limit < 0:
            raise bad_value(where, "updateLimit", limit)


def _check_validator(item: dict, where: str) -> None:
    if item["type"] == "File":
        _check_file(item, where)
    else:
        _check_script(item, where, validator=True)


def _check_source(source: dict, where: str) -> None:
    kind = source["type"]
    if kind == "PlatformImage":
        for name in ("publisher", "offer", "sku", "version"):
            if not source.get(name):
                raise missing(where, name)
        plan = source.get("planInfo")
        if plan is not None:
            for name in ("planName", "planProduct", "planPublisher"):
                if not plan.get(name):
                    raise missing(f"{where}.planInfo", name)
    elif kind == "ManagedImage":
        image_id = source.get("imageId")
        if not image_id:
            raise missing(where, "imageId")
        if not _MANAGED_IMAGE_ID.match(image_id):
            raise bad_value(where, "imageId", image_id)
    elif kind == "SharedImageVersion":
        version_id = source.get("imageVersionId")
        if not version_id:
            raise missing(where, "imageVersionId")
        if not _GALLERY_VERSION_ID.match(version_id):
            raise bad_value(where, "imageVersionId", version_id)


STORAGE_TYPES = ("Standard_LRS", "Standard_ZRS", "Premium_LRS")


def _check_shared_image(item: dict, where: str) -> None:
    gallery_image_id = item.get("galleryImageId")
    if not gallery_image_id:
        raise missing(where, "galleryImageId")
    found = _GALLERY_IMAGE_ID.match(gallery_image_id)
    if not found or (found.group(1) and not _VERSION_NAME.match(gallery_image_id.rsplit("/", 1)[1])):
        raise bad_value(where, "galleryImageId", gallery_image_id)
    if item.get("replicationRegions") and item.get("targetRegions"):
        raise invalid(where, "Only one of 'replicationRegions' or 'targetRegions' can be specified; "
                             "'replicationRegions' is deprecated, use 'targetRegions'.")
    if item.get("storageAccountType") and item.get("targetRegions"):
        raise invalid(where, "'storageAccountType' can only be used with 'replicationRegions'; "
                             "set the storage account type of each entry of 'targetRegions' instead.")
    if item.get("storageAccountType") and item["storageAccountType"] not in STORAGE_TYPES:
        raise bad_value(where, "storageAccountType", item["storageAccountType"])
    for i, region in enumerate(item.get("targetRegions") or []):
        region_where = f"{where}.targetRegions[{i}]"
        if not region.get("name"):
            raise missing(region_where, "name")
        if region.get("replicaCount") is not None and not 1 <= region["replicaCount"] <= 100:
            raise bad_value(region_where, "replicaCount", region["replicaCount"])
        if region.get("storageAccountType") and region["storageAccountType"] not in STORAGE_TYPES:
            raise bad_value(region_where, "storageAccountType", region["storageAccountType"])
    if item.get("replicationMode") and item["replicationMode"] not in ("Full", "Shallow"):
        raise bad_value(where, "replicationMode", item["replicationMode"])
    versioning = item.get("versioning")
    if versioning and versioning.get("scheme") == "Latest":
        major = versioning.get("major")
        if major is not None and major < -1:
            raise bad_value(f"{where}.versioning", "major", major)


def check_distributors(distribute: list[dict], where: str = "ImageTemplate.properties") -> None:
    if not distribute:
        raise missing(where, "distribute")
    seen: set[str] = set()
    for i, item in enumerate(distribute):
        item_where = f"{where}.distribute[{i}]"
        name = item.get("runOutputName")
        if not name:
            raise missing(item_where, "runOutputName")
        if not NAME_PATTERN.match(name):
            raise bad_value(item_where, "runOutputName", name)
        if name.lower() in seen:
            raise invalid(item_where, f"The runOutputName '{name}' is used by more than one distribution target; "
                                      "each target needs its own runOutputName.")
        seen.add(name.lower())
        kind = item["type"]
        if kind == "ManagedImage":
            for field_name in ("imageId", "location"):
                if not item.get(field_name):
                    raise missing(item_where, field_name)
            if not _MANAGED_IMAGE_ID.match(item["imageId"]):
                raise bad_value(item_where, "imageId", item["imageId"])
        elif kind == "SharedImage":
            _check_shared_image(item, item_where)


def check_vm_profile(profile: dict, where: str = "ImageTemplate.properties.vmProfile") -> None:
    size = profile.get("osDiskSizeGB")
    if size is not None and size < 0:
        raise bad_value(where, "osDiskSizeGB", size)
    for i, identity in enumerate(profile.get("userAssignedIdentities") or []):
        if not _IDENTITY_ID.match(identity):
            raise bad_value(where, f"userAssignedIdentities[{i}]", identity)
    vnet = profile.get("vnetConfig") or {}
    if vnet.get("containerInstanceSubnetId"):
        if not vnet.get("subnetId"):
            raise invalid(f"{where}.vnetConfig", "'containerInstanceSubnetId' can only be specified together "
                                                 "with 'subnetId'.")
        if vnet.get("proxyVmSize"):
            raise invalid(f"{where}.vnetConfig", "'proxyVmSize' cannot be specified together with "
                                                 "'containerInstanceSubnetId'.")
        if vnet["containerInstanceSubnetId"].lower() == vnet["subnetId"].lower():
            raise invalid(f"{where}.vnetConfig", "'containerInstanceSubnetId' must be a different subnet from "
                                                 "'subnetId'.")


def _check_state(parent: dict | None, where: str, values: tuple[str, ...], name: str = "state") -> None:
    if parent and parent.get(name) is not None and parent[name] not in values:
        raise bad_value(where, name, parent[name])


def check_identity(identity: dict | None, where: str = "ImageTemplate") -> None:
    """The template identity must be exactly one user-assigned identity (create and after a PATCH)."""
    if not identity:
        raise missing(where, "identity")
    kind = identity.get("type")
    if kind != "UserAssigned":
        raise bad_value(f"{where}.identity", "type", kind or "")
    identities = identity.get("userAssignedIdentities") or {}
    if len(identities) != 1:
        raise invalid(f"{where}.identity", "Exactly one user assigned identity must be specified for the image "
                                           f"template; found {len(identities)}.")
    for key in identities:
        if not _IDENTITY_ID.match(key):
            raise bad_value(f"{where}.identity", "userAssignedIdentities", key)


def template_for_create(body: Any, *, subscription: str, version: str = LATEST) -> dict:
    """Validate a PUT body; return it cleaned, with the defaults Azure echoes filled in."""
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized: "
                                                     "the body must be a JSON object.")
    cleaned = conform(body, TEMPLATE, [], "ImageTemplate",
                      version=Version.of(version, TEMPLATE_INTRODUCED, "ImageTemplate"))
    if not cleaned.get("location"):
        raise missing("ImageTemplate", "location")
    check_identity(cleaned.get("identity"))
    props = cleaned.get("properties")
    if not props:
        raise missing("ImageTemplate", "properties")
    where = "ImageTemplate.properties"
    if not props.get("source"):
        raise missing(where, "source")
    _check_source(props["source"], f"{where}.source")
    for i, item in enumerate(props.get("customize") or []):
        _check_customizer(item, f"{where}.customize[{i}]")
    validate = props.get("validate") or {}
    for i, item in enumerate(validate.get("inVMValidations") or []):
        _check_validator(item, f"{where}.validate.inVMValidations[{i}]")
    check_distributors(props.get("distribute") or [], where)
    timeout = props.get("buildTimeoutInMinutes")
    if timeout is not None and not 0 <= timeout <= 960:
        raise bad_value(where, "buildTimeoutInMinutes", timeout)
    optimize = props.get("optimize") or {}
    _check_state(optimize.get("vmBoot"), f"{where}.optimize.vmBoot", ("Enabled", "Disabled"))
    _check_state(optimize.get("workload"), f"{where}.optimize.workload", ("Enabled", "Disabled"))
    if optimize.get("workload"):
        _check_checksum(optimize["workload"], f"{where}.optimize.workload")
    _check_state(props.get("autoRun"), f"{where}.autoRun", ("Enabled", "Disabled"))
    handling = props.get("errorHandling")
    _check_state(handling, f"{where}.errorHandling", ("cleanup", "abort"), "onCustomizerError")
    _check_state(handling, f"{where}.errorHandling", ("cleanup", "abort"), "onValidationError")
    if props.get("vmProfile"):
        check_vm_profile(props["vmProfile"])
    for i, disk in enumerate(props.get("additionalDataDisks") or []):
        if disk.get("sizeGB") is not None and disk["sizeGB"] < 0:
            raise bad_value(f"{where}.additionalDataDisks[{i}]", "sizeGB", disk["sizeGB"])
    staging = props.get("stagingResourceGroup")
    if staging:
        found = _RESOURCE_GROUP_ID.match(staging)
        if not found or found.group("sub").lower() != subscription.lower():
            raise bad_value(where, "stagingResourceGroup", staging)
    _fill_echoed_defaults(props)
    return cleaned


def _fill_echoed_defaults(props: dict) -> None:
    """Azure echoes PowerShell's runElevated/runAsSystem as explicit false (EX/CreateImageTemplateWindows)."""
    scripts = list(props.get("customize") or []) + list((props.get("validate") or {}).get("inVMValidations") or [])
    for item in scripts:
        if item.get("type") == "PowerShell":
            item.setdefault("runAsSystem", False)
            item.setdefault("runElevated", False)


def update_for_patch(body: Any, current: dict, version: str = LATEST) -> dict:
    """Validate a PATCH body against the stored template; return the new resource document.

    Only tags, identity, properties.distribute (which must keep every existing runOutputName)
    and properties.vmProfile change; everything else raises the decoder's unknown-field error.
    """
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized: "
                                                     "the body must be a JSON object.")
    patch = conform(body, UPDATE, [], "ImageTemplateUpdateParameters",
                    version=Version.of(version, UPDATE_INTRODUCED, "ImageTemplateUpdateParameters"))
    updated = copy.deepcopy(current)
    if "tags" in patch:
        updated["tags"] = patch["tags"]
    if "identity" in patch:
        updated["identity"] = _patched_identity(current.get("identity") or {}, patch["identity"])
    props = patch.get("properties") or {}
    if "distribute" in props:
        check_distributors(props["distribute"], "ImageTemplateUpdateParameters.properties")
        wanted = {item["runOutputName"].lower() for item in props["distribute"]}
        for item in current["properties"].get("distribute") or []:
            if item["runOutputName"].lower() not in wanted:
                raise ArmError(400, "ValidationFailed",
                               f"Validation failed: Distribute target with Runoutput name {item['runOutputName']} not "
                               "found in the update request. Deleting a distribution target is not allowed.")
        updated["properties"]["distribute"] = props["distribute"]
    if "vmProfile" in props:
        check_vm_profile(props["vmProfile"], "ImageTemplateUpdateParameters.properties.vmProfile")
        updated["properties"]["vmProfile"] = props["vmProfile"]
    return updated


def _patched_identity(current: dict, change: dict) -> dict:
    """type None removes every identity; a null value removes one; {} adds one."""
    where = "ImageTemplateUpdateParameters.identity"
    kind = change.get("type", current.get("type"))
    if kind == "None":
        return {"type": "None"}
    if kind != "UserAssigned":
        raise bad_value(where, "type", kind or "")
    identities = dict(current.get("userAssignedIdentities") or {}) if current.get("type") == "UserAssigned" else {}
    for key, value in (change.get("userAssignedIdentities") or {}).items():
        existing = next((k for k in identities if k.lower() == key.lower()), None)
        if value is None:
            if existing:
                identities.pop(existing)
            continue
        if not _IDENTITY_ID.match(key):
            raise bad_value(where, "userAssignedIdentities", key)
        if existing is None:
            identities[key] = {}
    if len(identities) > 1:
        raise invalid(where, f"Exactly one user assigned identity must be specified for the image template; "
                             f"found {len(identities)}.")
    if not identities:
        return {"type": "None"}
    return {"type": "UserAssigned", "userAssignedIdentities": identities}


def trigger_for_create(body: Any, version: str = LATEST) -> dict:
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized: "
                                                     "the body must be a JSON object.")
    cleaned = conform(body, TRIGGER, [], "Trigger", go_type(version, "Trigger"))
    if not cleaned.get("properties"):
        raise missing("Trigger", "properties")
    return cleaned
