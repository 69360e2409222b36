"""The Image Builder template schema (api-version 2025-10-01) as data, and its rules. Pure.

One place for the shape rules that the importer, the forms, the wizard, the API and
`checktemplate` share: field names (case-sensitive, unknown ones refused, as Azure does since
2024-02-01), types, required fields, discriminators and the per-type property rules of
../shared/docs/aib-reference.md §2. Every problem carries a stable rule id, the JSON path
of the offending field and a plain-language message that says how to fix it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from portal.text import name_character_problem

NAME_PATTERN = re.compile(r"^[A-Za-z0-9\-_.]{1,64}$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
DURATION_PATTERN = re.compile(r"^(?=\d)(\d+h)?(\d+m)?(\d+s)?$")
RESOURCE_GROUP_ID = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+$", re.IGNORECASE)
ARM_ID = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/[^/]+/.+", re.IGNORECASE)
MANAGED_IMAGE_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/images/[^/]+$", re.IGNORECASE)
GALLERY_IMAGE_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/galleries/[^/]+/images/[^/]+"
    r"(/versions/[^/]+)?$", re.IGNORECASE)
SHARED_IMAGE_VERSION_ID = re.compile(
    r"^(/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/galleries/[^/]+"
    r"|/subscriptions/[^/]+/providers/Microsoft\.Compute/locations/[^/]+/sharedGalleries/[^/]+"
    r"|/subscriptions/[^/]+/providers/Microsoft\.Compute/locations/[^/]+/communityGalleries/[^/]+)"
    r"/images/[^/]+/versions/[^/]+$", re.IGNORECASE)
SUBNET_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/virtualNetworks/[^/]+/subnets/[^/]+$",
    re.IGNORECASE)
IDENTITY_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ManagedIdentity/userAssignedIdentities/[^/]+$",
    re.IGNORECASE)

API_VERSION = "2025-10-01"  # the api-version Goldsmith's templates are written for (compose.API_VERSION)
# The first api-version that accepts each optional setting (aib-reference-2 §3.2).
FIELD_SINCE: dict[tuple[str, ...], str] = {
    ("vmProfile", "vnetConfig", "proxyVmSize"): "2021-10-01",
    ("vmProfile", "userAssignedIdentities"): "2021-10-01",
    ("stagingResourceGroup",): "2022-02-14",
    ("optimize", "vmBoot"): "2022-07-01",
    ("errorHandling",): "2023-07-01",
    ("managedResourceTags",): "2024-02-01",
    ("autoRun",): "2024-02-01",
    ("vmProfile", "vnetConfig", "containerInstanceSubnetId"): "2024-02-01",
    ("optimize", "workload"): "2025-10-01",
    ("additionalDataDisks",): "2025-10-01",
}
MAX_BUILD_TIMEOUT = 960
MAX_TAG_VALUE = 256
MAX_TAG_NAME = 512
MAX_TAGS = 50

CUSTOMIZER_TYPES = ("Shell", "PowerShell", "File", "WindowsRestart", "WindowsUpdate")
VALIDATOR_TYPES = ("Shell", "PowerShell", "File")
DISTRIBUTOR_TYPES = ("ManagedImage", "SharedImage", "VHD")
SOURCE_TYPES = ("PlatformImage", "ManagedImage", "SharedImageVersion")
STORAGE_ACCOUNT_TYPES = ("Standard_LRS", "Standard_ZRS", "Premium_LRS")
# Steps that only make sense on one OS family; File runs on both.
LINUX_ONLY = {"Shell"}
WINDOWS_ONLY = {"PowerShell", "WindowsRestart", "WindowsUpdate"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a template, a step or a choice."""

    rule: str  # stable id, e.g. "schema.unknown-field"
    path: str  # JSON path of the field, e.g. "properties.customize[0].scriptUri"
    message: str  # what is wrong and how to fix it
    severity: str = "error"  # "error" refuses; "warning" is shown but lets the user go on

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "path": self.path, "message": self.message, "severity": self.severity}

    def __str__(self) -> str:
        return f"{self.rule} {self.path or '(template)'}: {self.message}"


# --- The shape, as data ---------------------------------------------------------------------
# A spec is an Obj (named fields, required and read-only sets, optional discriminator) or a
# type name: "str", "int", "bool", "any", ("list", spec), ("map", spec).


@dataclass
class Obj:
    fields: dict[str, Any]
    required: frozenset[str] = frozenset()
    readonly: frozenset[str] = frozenset()
    discriminator: str | None = None
    variants: dict[str, Obj] = field(default_factory=dict)


def _obj(fields: dict[str, Any], required: Iterable[str] = (), readonly: Iterable[str] = ()) -> Obj:
    return Obj(fields, frozenset(required), frozenset(readonly))


def _union(key: str, variants: dict[str, Obj]) -> Obj:
    return Obj({key: "str"}, frozenset({key}), discriminator=key, variants=variants)


_SCRIPT = {"name": "str", "type": "str", "scriptUri": "str", "sha256Checksum": "str", "inline": ("list", "str")}
_POWERSHELL = {**_SCRIPT, "runElevated": "bool", "runAsSystem": "bool", "validExitCodes": ("list", "int")}
_FILE = {"name": "str", "type": "str", "sourceUri": "str", "sha256Checksum": "str", "destination": "str"}

CUSTOMIZER = _union("type", {
    "Shell": _obj(_SCRIPT),
    "PowerShell": _obj(_POWERSHELL),
    "File": _obj(_FILE),
    "WindowsRestart": _obj({"name": "str", "type": "str", "restartCommand": "str", "restartCheckCommand": "str",
                            "restartTimeout": "str"}),
    "WindowsUpdate": _obj({"name": "str", "type": "str", "searchCriteria": "str", "filters": ("list", "str"),
                           "updateLimit": "int"}),
})
VALIDATOR = _union("type", {
    "Shell": _obj(_SCRIPT),
    "PowerShell": _obj(_POWERSHELL),
    "File": _obj(_FILE),
})
TARGET_REGION = _obj({"name": "str", "replicaCount": "int", "storageAccountType": "str"}, required=["name"])
VERSIONING = _union("scheme", {
    "Latest": _obj({"scheme": "str", "major": "int"}),
    "Source": _obj({"scheme": "str"}),
})
_DIST_COMMON = {"type": "str", "runOutputName": "str", "artifactTags": ("map", "str")}
DISTRIBUTOR = _union("type", {
    "ManagedImage": _obj({**_DIST_COMMON, "imageId": "str", "location": "str"},
                         required=["runOutputName", "imageId", "location"]),
    "SharedImage": _obj({**_DIST_COMMON, "galleryImageId": "str", "replicationRegions": ("list", "str"),
                         "excludeFromLatest": "bool", "storageAccountType": "str",
                         "targetRegions": ("list", TARGET_REGION), "versioning": VERSIONING,
                         "replicationMode": "str"}, required=["runOutputName", "galleryImageId"]),
    "VHD": _obj({**_DIST_COMMON, "uri": "str"}, required=["runOutputName"]),
})
SOURCE = _union("type", {
    "PlatformImage": _obj({"type": "str", "publisher": "str", "offer": "str", "sku": "str", "version": "str",
                           "exactVersion": "str",
                           "planInfo": _obj({"planName": "str", "planProduct": "str", "planPublisher": "str"},
                                            required=["planName", "planProduct", "planPublisher"])},
                          required=["publisher", "offer", "sku", "version"], readonly=["exactVersion"]),
    "ManagedImage": _obj({"type": "str", "imageId": "str"}, required=["imageId"]),
    "SharedImageVersion": _obj({"type": "str", "imageVersionId": "str", "exactVersion": "str"},
                               required=["imageVersionId"], readonly=["exactVersion"]),
})
VNET_CONFIG = _obj({"subnetId": "str", "containerInstanceSubnetId": "str", "proxyVmSize": "str"})
VM_PROFILE = _obj({"vmSize": "str", "osDiskSizeGB": "int", "userAssignedIdentities": ("list", "str"),
                   "vnetConfig": VNET_CONFIG})
STATE = _obj({"state": "str"})
PROPERTIES = _obj(
    {
        "source": SOURCE,
        "customize": ("list", CUSTOMIZER),
        "optimize": _obj({"vmBoot": STATE,
                          "workload": _obj({"state": "str", "scriptUri": "str", "sha256Checksum": "str"})}),
        "validate": _obj({"continueDistributeOnFailure": "bool", "sourceValidationOnly": "bool",
                          "inVMValidations": ("list", VALIDATOR)}),
        "distribute": ("list", DISTRIBUTOR),
        "errorHandling": _obj({"onCustomizerError": "str", "onValidationError": "str"}),
        "provisioningState": "str",
        "provisioningError": "any",
        "lastRunStatus": "any",
        "buildTimeoutInMinutes": "int",
        "vmProfile": VM_PROFILE,
        "additionalDataDisks": ("list", _obj({"sizeGB": "int"})),
        "stagingResourceGroup": "str",
        "exactStagingResourceGroup": "str",
        "autoRun": STATE,
        "managedResourceTags": ("map", "str"),
    },
    required=["source", "distribute"],
    readonly=["provisioningState", "provisioningError", "lastRunStatus", "exactStagingResourceGroup"],
)
IDENTITY = _obj({"type": "str", "userAssignedIdentities": ("map", "any")})
TEMPLATE = _obj(
    {"id": "str", "name": "str", "type": "str", "systemData": "any", "location": "str", "tags": ("map", "str"),
     "identity": IDENTITY, "properties": PROPERTIES},
    required=["location", "identity", "properties"],
    readonly=["id", "name", "type", "systemData"],
)

_REQUIRED_HINTS = {
    "identity": "Image Builder needs a user-assigned managed identity for the template: give exactly one in "
                "identity.userAssignedIdentities.",
    "location": "'location' is required: the Azure region where the template is created and the build runs.",
    "distribute": "Add at least one distribution target (managed image, gallery or VHD).",
}

_TYPE_NAMES = {"str": "a string", "int": "an integer", "bool": "true or false", "list": "a list", "map": "an object"}


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "any":
        return True
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    raise ValueError(kind)


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def check_shape(value: Any, spec: Any, path: str = "", *, allow_readonly: bool = True) -> list[Problem]:
    """Structural problems: unknown or mis-cased fields, wrong types, missing required fields.

    Read-only fields are accepted (Azure ignores them on input) unless allow_readonly is False.
    """
    problems: list[Problem] = []
    _shape(value, spec, path, problems, allow_readonly)
    return problems


def _shape(value: Any, spec: Any, path: str, out: list[Problem], allow_readonly: bool) -> None:
    if isinstance(spec, Obj):
        if not isinstance(value, dict):
            out.append(Problem("schema.type", path, "must be an object."))
            return
        if spec.discriminator:
            key = spec.discriminator
            kind = value.get(key)
            if kind is None:
                out.append(Problem("schema.missing-field", join(path, key),
                                   f"'{key}' is required; use one of {', '.join(spec.variants)}."))
                return
            variant = spec.variants.get(kind) if isinstance(kind, str) else None
            if variant is None:
                hint = _suggest(str(kind), spec.variants)
                out.append(Problem("schema.bad-value", join(path, key),
                                   f"'{kind}' is not a valid {key}; use one of {', '.join(spec.variants)}.{hint}"))
                return
            spec = variant
        for key, item in value.items():
            sub = spec.fields.get(key)
            where = join(path, key)
            if sub is None:
                hint = _suggest(key, spec.fields)
                out.append(Problem("schema.unknown-field", where,
                                   f"'{key}' is not a field here (names are case-sensitive).{hint}"))
                continue
            if key in spec.readonly and not allow_readonly:
                out.append(Problem("schema.read-only", where, f"'{key}' is set by Azure and cannot be given."))
                continue
            if item is None and key not in spec.required:
                continue
            _shape(item, sub, where, out, allow_readonly)
        for key in sorted(spec.required - set(value)):
            out.append(Problem("schema.missing-field", join(path, key), _REQUIRED_HINTS.get(key, f"'{key}' is required.")))
        return
    if isinstance(spec, tuple):
        container, inner = spec
        if container == "list":
            if not isinstance(value, list):
                out.append(Problem("schema.type", path, "must be a list."))
                return
            for index, item in enumerate(value):
                _shape(item, inner, join(path, index), out, allow_readonly)
        else:
            if not isinstance(value, dict):
                out.append(Problem("schema.type", path, "must be an object of names to values."))
                return
            for key, item in value.items():
                _shape(item, inner, join(path, key), out, allow_readonly)
        return
    if not _type_ok(value, spec):
        out.append(Problem("schema.type", path, f"must be {_TYPE_NAMES[spec]}, not {type(value).__name__}."))


def _suggest(key: str, known: Iterable[str]) -> str:
    names = list(known)
    lowered = {name.lower(): name for name in names}
    if key.lower() in lowered:
        return f" Did you mean '{lowered[key.lower()]}'?"
    close = difflib.get_close_matches(key, names, n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def strip_readonly(value: Any, spec: Any = TEMPLATE) -> Any:
    """A copy without the fields Azure fills in (exactVersion, provisioningState, ...)."""
    if isinstance(spec, Obj) and isinstance(value, dict):
        if spec.discriminator:
            variant = spec.variants.get(value.get(spec.discriminator))
            if variant is None:
                return dict(value)
            spec = variant
        out = {}
        for key, item in value.items():
            if key in spec.readonly:
                continue
            out[key] = strip_readonly(item, spec.fields[key]) if key in spec.fields else item
        if spec is IDENTITY and isinstance(out.get("userAssignedIdentities"), dict):
            out["userAssignedIdentities"] = {k: {} for k in out["userAssignedIdentities"]}
        return out
    if isinstance(spec, tuple) and spec[0] == "list" and isinstance(value, list):
        return [strip_readonly(item, spec[1]) for item in value]
    return value


# --- Rules beyond the shape ----------------------------------------------------------------


def check_template(body: Any) -> list[Problem]:
    """Every schema rule for a whole template body (the PUT body Azure would receive)."""
    problems = check_shape(body, TEMPLATE)
    if not isinstance(body, dict):
        return problems
    problems += check_tags(body.get("tags"), "tags")
    if isinstance(body.get("location"), str) and not body["location"].strip():
        problems.append(Problem("schema.empty", "location", _REQUIRED_HINTS["location"]))
    problems += check_identity(body.get("identity"), "identity")
    props = body.get("properties")
    if isinstance(props, dict):
        problems += check_properties(props, "properties")
        problems += check_api_version(props)
    return dedupe(problems)


def check_api_version(props: dict, api_version: str = API_VERSION, path: str = "properties") -> list[Problem]:
    """`schema.api-version`: a setting the api-version does not accept yet (Azure refuses
    unknown fields from 2024-02-01 on, and ignores them before)."""
    problems: list[Problem] = []
    for keys, since in FIELD_SINCE.items():
        value: Any = props
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value not in (None, "", [], {}) and api_version < since:
            problems.append(Problem("schema.api-version", ".".join((path, *keys)),
                                    f"'{keys[-1]}' needs api-version {since} or later; this template uses "
                                    f"{api_version}."))
    return problems


def check_properties(props: dict, path: str) -> list[Problem]:
    problems: list[Problem] = []
    source = props.get("source")
    if isinstance(source, dict):
        problems += check_source(source, join(path, "source"))
    for index, step in enumerate(listed(props.get("customize"))):
        problems += check_customizer(step, join(join(path, "customize"), index))
    validate = props.get("validate")
    if isinstance(validate, dict):
        for index, step in enumerate(listed(validate.get("inVMValidations"))):
            problems += check_validator(step, join(join(join(path, "validate"), "inVMValidations"), index))
    distribute = props.get("distribute")
    if isinstance(distribute, list):
        if not distribute:
            problems.append(Problem("schema.distribute-empty", join(path, "distribute"),
                                    "Add at least one distribution target (managed image, gallery or VHD)."))
        problems += check_distributors(distribute, join(path, "distribute"))
    timeout = props.get("buildTimeoutInMinutes")
    if isinstance(timeout, int) and not isinstance(timeout, bool) and not 0 <= timeout <= MAX_BUILD_TIMEOUT:
        problems.append(Problem("schema.build-timeout", join(path, "buildTimeoutInMinutes"),
                                f"must be between 0 and {MAX_BUILD_TIMEOUT} minutes (0 means the default of 240)."))
    elif isinstance(timeout, int) and 1 <= timeout <= 5:
        problems.append(Problem("schema.build-timeout-short", join(path, "buildTimeoutInMinutes"),
                                "Builds shorter than 6 minutes fail at build time; use 0 (the default of 240) "
                                "or at least 6.", "warning"))
    vm_profile = props.get("vmProfile")
    if isinstance(vm_profile, dict):
        problems += check_vm_profile(vm_profile, join(path, "vmProfile"))
    problems += _check_states(props, path)
    staging = props.get("stagingResourceGroup")
    if isinstance(staging, str) and staging and not RESOURCE_GROUP_ID.match(staging):
        problems.append(Problem("schema.staging-resource-group", join(path, "stagingResourceGroup"),
                                "must be a resource group id: /subscriptions/<id>/resourceGroups/<name>."))
    problems += check_tags(props.get("managedResourceTags"), join(path, "managedResourceTags"))
    for index, disk in enumerate(listed(props.get("additionalDataDisks"))):
        size = disk.get("sizeGB") if isinstance(disk, dict) else None
        if isinstance(disk, dict) and "sizeGB" not in disk:
            problems.append(Problem("schema.missing-field", join(join(join(path, "additionalDataDisks"), index),
                                                                 "sizeGB"), "'sizeGB' is required for a data disk."))
        if isinstance(size, int) and size < 0:
            problems.append(Problem("schema.negative", join(join(join(path, "additionalDataDisks"), index), "sizeGB"),
                                    "must be zero or more."))
    return problems


def _check_states(props: dict, path: str) -> list[Problem]:
    problems: list[Problem] = []
    checks = [
        (("errorHandling", "onCustomizerError"), ("cleanup", "abort")),
        (("errorHandling", "onValidationError"), ("cleanup", "abort")),
        (("optimize", "vmBoot", "state"), ("Enabled", "Disabled")),
        (("optimize", "workload", "state"), ("Enabled", "Disabled")),
        (("autoRun", "state"), ("Enabled", "Disabled")),
    ]
    for keys, allowed in checks:
        value: Any = props
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and value not in allowed:
            where = path
            for key in keys:
                where = join(where, key)
            problems.append(Problem("schema.bad-value", where, f"'{value}' is not allowed; use {' or '.join(allowed)}."))
    workload = (props.get("optimize") or {}).get("workload") if isinstance(props.get("optimize"), dict) else None
    if isinstance(workload, dict):
        problems += _check_checksum(workload, join(join(join(path, "optimize"), "workload"), "sha256Checksum"))
    return problems


def check_identity(identity: Any, path: str) -> list[Problem]:
    """Identity rules; a missing identity is reported by the shape check (schema.missing-field)."""
    if not isinstance(identity, dict):
        return []
    problems: list[Problem] = []
    kind = identity.get("type")
    ids = identity.get("userAssignedIdentities")
    if kind != "UserAssigned":
        problems.append(Problem("schema.identity-type", join(path, "type"),
                                "must be 'UserAssigned': Image Builder runs as a user-assigned identity."))
    if not isinstance(ids, dict) or len(ids) != 1:
        problems.append(Problem("schema.identity-count", join(path, "userAssignedIdentities"),
                                "give exactly one user-assigned identity (Image Builder supports one)."))
    else:
        identity_id = next(iter(ids))
        if not IDENTITY_ID.match(identity_id) and not is_placeholder(identity_id):
            problems.append(Problem("schema.identity-id", join(path, "userAssignedIdentities"),
                                    "must be the ARM id of a user-assigned identity: /subscriptions/<id>/resourceGroups/"
                                    "<rg>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>."))
    return problems


def check_source(source: dict, path: str) -> list[Problem]:
    problems: list[Problem] = []
    kind = source.get("type")
    if kind == "PlatformImage":
        for key in ("publisher", "offer", "sku", "version"):
            if source.get(key) == "":
                problems.append(Problem("schema.empty", join(path, key), f"'{key}' cannot be empty."))
    elif kind == "ManagedImage":
        image_id = source.get("imageId")
        if isinstance(image_id, str) and not MANAGED_IMAGE_ID.match(image_id) and not is_placeholder(image_id):
            problems.append(Problem("schema.managed-image-id", join(path, "imageId"),
                                    "must be a managed image id: /subscriptions/<id>/resourceGroups/<rg>/providers/"
                                    "Microsoft.Compute/images/<name>."))
    elif kind == "SharedImageVersion":
        version_id = source.get("imageVersionId")
        if isinstance(version_id, str) and not SHARED_IMAGE_VERSION_ID.match(version_id) \
                and not is_placeholder(version_id):
            problems.append(Problem("schema.gallery-version-id", join(path, "imageVersionId"),
                                    "must be a gallery image version id ending in /images/<definition>/versions/"
                                    "<version or latest>."))
    return problems


def check_customizer(step: Any, path: str, *, os_type: str | None = None) -> list[Problem]:
    """Shape and property rules for one customizer (§2.4)."""
    problems = check_shape(step, CUSTOMIZER, path)
    if not isinstance(step, dict):
        return problems
    problems += _check_step(step, path)
    kind = step.get("type")
    if kind == "WindowsRestart":
        timeout = step.get("restartTimeout")
        if isinstance(timeout, str) and timeout and not DURATION_PATTERN.match(timeout):
            problems.append(Problem("schema.restart-timeout", join(path, "restartTimeout"),
                                    "must be a duration such as 5m, 10m, 90s or 2h."))
    if kind == "WindowsUpdate":
        limit = step.get("updateLimit")
        if isinstance(limit, int) and limit < 0:
            problems.append(Problem("schema.negative", join(path, "updateLimit"), "must be zero or more (0 = 1000)."))
    if os_type and isinstance(kind, str) and kind in (LINUX_ONLY if os_type == "Windows" else WINDOWS_ONLY):
        problems.append(Problem("schema.os-mismatch", join(path, "type"),
                                f"A {kind} step cannot run on a {os_type} image."))
    return problems


def check_validator(step: Any, path: str, *, os_type: str | None = None) -> list[Problem]:
    """Shape and property rules for one in-VM validator (§2.5)."""
    problems = check_shape(step, VALIDATOR, path)
    if not isinstance(step, dict):
        return problems
    problems += _check_step(step, path)
    kind = step.get("type")
    if os_type and isinstance(kind, str) and kind in (LINUX_ONLY if os_type == "Windows" else WINDOWS_ONLY):
        problems.append(Problem("schema.os-mismatch", join(path, "type"),
                                f"A {kind} validator cannot run on a {os_type} image."))
    return problems


def _check_step(step: dict, path: str) -> list[Problem]:
    problems: list[Problem] = []
    kind = step.get("type")
    if kind in ("Shell", "PowerShell"):
        has_uri = bool(step.get("scriptUri"))
        has_inline = bool(step.get("inline"))
        if has_uri == has_inline:
            problems.append(Problem("schema.script-source", join(path, "scriptUri" if has_uri else "inline"),
                                    "Give either a script URL (scriptUri) or inline commands, not both and not neither."))
        if not has_uri and step.get("sha256Checksum"):
            problems.append(Problem("schema.checksum-without-uri", join(path, "sha256Checksum"),
                                    "A checksum only applies to a script downloaded from scriptUri."))
        if isinstance(step.get("inline"), list) and any(not line.strip() for line in step["inline"]
                                                         if isinstance(line, str)):
            problems.append(Problem("schema.empty-line", join(path, "inline"), "Remove empty inline commands."))
    if kind == "PowerShell" and step.get("runAsSystem") and not step.get("runElevated"):
        problems.append(Problem("schema.run-as-system", join(path, "runAsSystem"),
                                "runAsSystem only works with runElevated: turn on 'run elevated' too."))
    if kind == "File":
        for key in ("sourceUri", "destination"):
            if not step.get(key):
                problems.append(Problem("schema.missing-field", join(path, key), f"'{key}' is required for a File step."))
    if "sha256Checksum" in step:
        problems += _check_checksum(step, join(path, "sha256Checksum"))
    for key in ("scriptUri", "sourceUri"):
        uri = step.get(key)
        if isinstance(uri, str) and uri and not uri.lower().startswith(("https://", "http://")) \
                and not is_placeholder(uri):
            problems.append(Problem("schema.uri", join(path, key), "must be an http(s) URL."))
    if isinstance(step.get("name"), str) and len(step["name"]) > 256:
        problems.append(Problem("schema.too-long", join(path, "name"), "must be at most 256 characters."))
    if isinstance(step.get("name"), str) and (message := name_character_problem(step["name"])):
        problems.append(Problem("name.invisible-character", join(path, "name"), message))
    return problems


def _check_checksum(holder: dict, path: str) -> list[Problem]:
    value = holder.get("sha256Checksum")
    if isinstance(value, str) and value and not SHA256_PATTERN.match(value):
        hint = " (use lower-case letters)" if SHA256_PATTERN.match(value.lower()) else ""
        return [Problem("schema.sha256", path, f"must be a SHA-256 hex digest of 64 characters{hint}.")]
    return []


def check_distributors(distribute: list, path: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for index, target in enumerate(distribute):
        where = join(path, index)
        problems += check_distributor(target, where)
        name = target.get("runOutputName") if isinstance(target, dict) else None
        if isinstance(name, str):
            if name in seen:
                problems.append(Problem("schema.run-output-unique", join(where, "runOutputName"),
                                        f"'{name}' is already used by distribute[{seen[name]}]; "
                                        "each target needs its own run output name."))
            seen.setdefault(name, index)
    return problems


def check_distributor(target: Any, path: str) -> list[Problem]:
    """Shape and property rules for one distribution target (§2.6)."""
    problems = check_shape(target, DISTRIBUTOR, path)
    if not isinstance(target, dict):
        return problems
    name = target.get("runOutputName")
    if isinstance(name, str) and not NAME_PATTERN.match(name) and not is_placeholder(name):
        problems.append(Problem("schema.run-output-name", join(path, "runOutputName"),
                                "use 1-64 letters, digits, '-', '_' or '.'."))
    problems += check_tags(target.get("artifactTags"), join(path, "artifactTags"))
    kind = target.get("type")
    if kind == "ManagedImage":
        image_id = target.get("imageId")
        if isinstance(image_id, str) and not MANAGED_IMAGE_ID.match(image_id) and not is_placeholder(image_id):
            problems.append(Problem("schema.managed-image-id", join(path, "imageId"),
                                    "must be a managed image id: /subscriptions/<id>/resourceGroups/<rg>/providers/"
                                    "Microsoft.Compute/images/<name>."))
    if kind == "SharedImage":
        problems += _check_shared_image(target, path)
    return problems


def _check_shared_image(target: dict, path: str) -> list[Problem]:
    problems: list[Problem] = []
    gallery_id = target.get("galleryImageId")
    if isinstance(gallery_id, str) and not GALLERY_IMAGE_ID.match(gallery_id) and not is_placeholder(gallery_id):
        problems.append(Problem("schema.gallery-image-id", join(path, "galleryImageId"),
                                "must be a gallery image definition id (…/galleries/<g>/images/<definition>), "
                                "optionally ending in /versions/<x.y.z>."))
    if target.get("replicationRegions") and target.get("targetRegions"):
        problems.append(Problem("schema.regions-exclusive", join(path, "targetRegions"),
                                "Use targetRegions or the deprecated replicationRegions, not both."))
    if target.get("storageAccountType") and not target.get("replicationRegions"):
        problems.append(Problem("schema.storage-account-type", join(path, "storageAccountType"),
                                "storageAccountType only goes with replicationRegions; set it per region in "
                                "targetRegions instead."))
    for key, value in (("storageAccountType", target.get("storageAccountType")),):
        if isinstance(value, str) and value and value not in STORAGE_ACCOUNT_TYPES:
            problems.append(Problem("schema.bad-value", join(path, key),
                                    f"'{value}' is not allowed; use one of {', '.join(STORAGE_ACCOUNT_TYPES)}."))
    names: set[str] = set()
    for index, region in enumerate(listed(target.get("targetRegions"))):
        where = join(join(path, "targetRegions"), index)
        if not isinstance(region, dict):
            continue
        count = region.get("replicaCount")
        if isinstance(count, int) and count < 1:
            problems.append(Problem("schema.replica-count", join(where, "replicaCount"), "must be at least 1."))
        kind = region.get("storageAccountType")
        if isinstance(kind, str) and kind not in STORAGE_ACCOUNT_TYPES:
            problems.append(Problem("schema.bad-value", join(where, "storageAccountType"),
                                    f"'{kind}' is not allowed; use one of {', '.join(STORAGE_ACCOUNT_TYPES)}."))
        name = region.get("name")
        if isinstance(name, str):
            if name.lower() in names:
                problems.append(Problem("schema.region-duplicate", join(where, "name"), f"'{name}' is listed twice."))
            names.add(name.lower())
    versioning = target.get("versioning")
    if isinstance(versioning, dict) and versioning.get("scheme") == "Latest":
        major = versioning.get("major")
        if isinstance(major, int) and major < -1:
            problems.append(Problem("schema.versioning-major", join(join(path, "versioning"), "major"),
                                    "must be -1 (any major version) or a major version number."))
    if isinstance(versioning, dict) and isinstance(gallery_id, str) and "/versions/" in gallery_id.lower():
        problems.append(Problem("schema.versioning-explicit", join(path, "versioning"),
                                "A galleryImageId with an explicit version cannot also have a versioning scheme."))
    mode = target.get("replicationMode")
    if isinstance(mode, str) and mode not in ("Full", "Shallow"):
        problems.append(Problem("schema.bad-value", join(path, "replicationMode"),
                                f"'{mode}' is not allowed; use Full or Shallow."))
    return problems


def check_vm_profile(profile: dict, path: str) -> list[Problem]:
    problems: list[Problem] = []
    size = profile.get("osDiskSizeGB")
    if isinstance(size, int) and not isinstance(size, bool) and size < 0:
        problems.append(Problem("schema.negative", join(path, "osDiskSizeGB"), "must be zero (the source's size) or more."))
    for index, identity in enumerate(listed(profile.get("userAssignedIdentities"))):
        if isinstance(identity, str) and not IDENTITY_ID.match(identity) and not is_placeholder(identity):
            problems.append(Problem("schema.identity-id", join(join(path, "userAssignedIdentities"), index),
                                    "must be the ARM id of a user-assigned identity."))
    vnet = profile.get("vnetConfig")
    if isinstance(vnet, dict):
        where = join(path, "vnetConfig")
        subnet = vnet.get("subnetId")
        aci = vnet.get("containerInstanceSubnetId")
        if aci and not subnet:
            problems.append(Problem("schema.aci-needs-subnet", join(where, "containerInstanceSubnetId"),
                                    "An isolated-build (container instance) subnet needs the build VM subnet "
                                    "(subnetId) too."))
        if aci and vnet.get("proxyVmSize"):
            problems.append(Problem("schema.aci-proxy", join(where, "proxyVmSize"),
                                    "proxyVmSize cannot be set with containerInstanceSubnetId; leave it empty."))
        if aci and subnet and aci == subnet:
            problems.append(Problem("schema.aci-same-subnet", join(where, "containerInstanceSubnetId"),
                                    "must be a different subnet from subnetId (in the same virtual network)."))
        elif isinstance(aci, str) and isinstance(subnet, str) and "/subnets/" in aci.lower() \
                and "/subnets/" in subnet.lower() and aci.lower().split("/subnets/")[0] != \
                subnet.lower().split("/subnets/")[0]:
            problems.append(Problem("schema.aci-same-vnet", join(where, "containerInstanceSubnetId"),
                                    "must be a subnet of the same virtual network as subnetId."))
        for key in ("subnetId", "containerInstanceSubnetId"):
            value = vnet.get(key)
            if isinstance(value, str) and value and not SUBNET_ID.match(value) and not is_placeholder(value):
                problems.append(Problem("schema.subnet-id", join(where, key),
                                        "must be a subnet id: …/providers/Microsoft.Network/virtualNetworks/<vnet>/"
                                        "subnets/<subnet>."))
    return problems


def check_tags(tags: Any, path: str) -> list[Problem]:
    if not isinstance(tags, dict):
        return []
    problems: list[Problem] = []
    if len(tags) > MAX_TAGS:
        problems.append(Problem("schema.tag-count", path, f"Azure allows at most {MAX_TAGS} tags."))
    for key, value in tags.items():
        if len(key) > MAX_TAG_NAME:
            problems.append(Problem("schema.tag-name", join(path, key), f"Tag names are at most {MAX_TAG_NAME} characters."))
        if isinstance(value, str) and len(value) > MAX_TAG_VALUE:
            problems.append(Problem("schema.tag-value", join(path, key),
                                    f"Tag values are at most {MAX_TAG_VALUE} characters."))
    return problems


def listed(value: Any) -> list:
    """The value when it is a list, else an empty one: template JSON is read as it came."""
    return value if isinstance(value, list) else []


# Free text where "<", "{" or "[" mean nothing special: scripts, names, descriptions, tags.
_FREE_TEXT = frozenset({"inline", "name", "description", "destination", "tags", "artifactTags",
                        "managedResourceTags", "restartCommand", "restartCheckCommand", "searchCriteria", "filters"})


def placeholders(value: Any, path: str = "") -> list[Problem]:
    """Placeholders a sample left (<region1>, {subscription-id}, [parameters('x')]) where Azure
    reads a value. The rules above let them pass, so a sample can be checked and imported; a
    build cannot go to Azure with one, so build requests refuse them."""
    problems: list[Problem] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = join(path, key)
            if key == "userAssignedIdentities" and isinstance(item, dict):
                problems += [_placeholder_problem(where, name) for name in item if is_placeholder(name)]
            if key not in _FREE_TEXT:
                problems += placeholders(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problems += placeholders(item, join(path, index))
    elif isinstance(value, str) and is_placeholder(value):
        problems.append(_placeholder_problem(path, value))
    return problems


def _placeholder_problem(path: str, value: str) -> Problem:
    return Problem("build.placeholder", path, f"'{value[:80]}' is a placeholder left from a sample; put the real "
                                              "value here before building.")


def is_placeholder(value: str) -> bool:
    """Template samples carry placeholders such as <region1> or {subscription-id}; they are not typos."""
    return "<" in value or "{" in value or value.startswith("[")


def dedupe(problems: Iterable[Problem]) -> list[Problem]:
    """The problems in order, each (rule, path, message) once."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for problem in problems:
        key = (problem.rule, problem.path, problem.message)
        if key not in seen:
            seen.add(key)
            out.append(problem)
    return out


def errors(problems: Iterable[Problem]) -> list[Problem]:
    return [problem for problem in problems if problem.severity == "error"]
