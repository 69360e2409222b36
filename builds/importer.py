"""Reading Image Builder templates people already have. Pure.

Accepts a bare template body, a body wrapped as an ARM resource (`type`, `apiVersion`,
`name`, `dependsOn` ... around `location`, `tags`, `identity`, `properties`) or an ARM
deployment template holding exactly one Microsoft.VirtualMachineImages/imageTemplates
resource. Shape errors (unknown or mis-cased keys, wrong types) refuse the import and name
the JSON path; rule problems (a missing identity, say) are kept as notes on the draft.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from builds import schema
from builds.jsonlimits import MAX_JSON_DEPTH, NUL_MESSAGE, TOO_DEEP_MESSAGE, contains_nul, json_depth_ok
from builds.schema import Problem, listed

RESOURCE_TYPE = "microsoft.virtualmachineimages/imagetemplates"
LEGACY_API = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
STRICT_SINCE = "2024-02-01"  # from this api-version on, Azure refuses unknown and mis-cased fields
# Keys of an ARM resource declaration that are not part of the template body.
ARM_WRAPPER_KEYS = ("type", "apiVersion", "name", "dependsOn", "comments", "condition", "scope", "copy")
_CARRIED_PROPERTIES = ("autoRun", "additionalDataDisks")
_WINDOWS_STEPS = {"PowerShell", "WindowsRestart", "WindowsUpdate"}


class ImportError_(ValueError):
    """The input cannot be imported; `problems` name each offending JSON path."""

    def __init__(self, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.problems = problems or []


@dataclass
class ParsedTemplate:
    body: dict  # the bare template body, read-only fields removed
    form: str  # "body", "resource" or "deployment"
    problems: list[Problem] = field(default_factory=list)  # rule problems (not shape errors)
    name: str = ""  # the resource name, when the input carried one


def load(text: str | bytes) -> Any:
    """Parse a JSON document. Raises ImportError_ (never RecursionError or UnicodeDecodeError)
    for bytes that are not UTF-8, text that is not JSON, documents nested deeper than
    MAX_JSON_DEPTH, which are refused before json.loads recurses into them, and strings holding
    U+0000, which no field may hold."""
    if isinstance(text, (bytes, bytearray)):
        text = decode(bytes(text))
    check_depth(text)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ImportError_(f"The file is not valid JSON: {exc}") from exc
    if contains_nul(data):
        raise ImportError_(NUL_MESSAGE)
    return data


def decode(data: bytes) -> str:
    """UTF-8 text (a BOM is allowed); ImportError_ for anything else (UTF-16, binary files)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportError_(f"The file is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x}): save the "
                           "template as UTF-8 JSON.") from exc


def check_depth(text: str, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise ImportError_ when arrays and objects nest deeper than `limit` (jsonlimits' scan,
    the one the API's parser uses too: brackets inside strings do not count, nothing recurses)."""
    if not json_depth_ok(text, limit):
        raise ImportError_(TOO_DEEP_MESSAGE if limit == MAX_JSON_DEPTH else
                           f"The JSON is nested more than {limit} levels deep.")


def parse(data: Any) -> ParsedTemplate:
    """Find the template body in any accepted form and check its shape."""
    if not isinstance(data, dict):
        raise ImportError_("A template must be a JSON object.")
    form = "body"
    prefix = ""
    name = ""
    if isinstance(data.get("resources"), list) and ("$schema" in data or "contentVersion" in data):
        form = "deployment"
        found = [(index, res) for index, res in enumerate(data["resources"])
                 if isinstance(res, dict) and str(res.get("type", "")).lower() == RESOURCE_TYPE]
        if len(found) != 1:
            raise ImportError_(f"An ARM deployment template must contain exactly one {RESOURCE_TYPE} resource; "
                               f"this one has {len(found)}.")
        index, data = found[0]
        prefix = f"resources[{index}]"
    api_version = ""
    if any(key in data for key in ARM_WRAPPER_KEYS):
        form = "resource" if form == "body" else form
        name = data.get("name") if isinstance(data.get("name"), str) else ""
        api_version = data.get("apiVersion") if isinstance(data.get("apiVersion"), str) else ""
        data = {key: value for key, value in data.items() if key not in ARM_WRAPPER_KEYS}
    props = data.get("properties")
    if isinstance(props, dict) and "kind" in props and "source" not in props:
        raise ImportError_(f"This is an Image Builder trigger (kind {props['kind']}), not a template: "
                           "import the template it belongs to.")

    legacy_notes: list[Problem] = []
    if LEGACY_API.match(api_version) and api_version < STRICT_SINCE:
        # Before 2024-02-01 Azure matched names case-insensitively and ignored unknown fields,
        # so a template written for such a version meant exactly its known fields.
        data = _legacy_clean(data, schema.TEMPLATE, "", api_version, legacy_notes)
    problems = schema.check_shape(data, schema.TEMPLATE)
    shape_errors = [p for p in problems if not _tolerated(p)]
    if shape_errors:
        shape_errors = [Problem(p.rule, schema.join(prefix, p.path) if prefix else p.path, p.message)
                        for p in shape_errors]
        raise ImportError_("The template does not match the Image Builder schema (api-version 2025-10-01).",
                           shape_errors)
    body = schema.strip_readonly(data)
    return ParsedTemplate(body=body, form=form, problems=legacy_notes + schema.check_template(body), name=name)


def _legacy_clean(value: Any, spec: Any, path: str, api_version: str, notes: list[Problem]) -> Any:
    """Fix the case of known names and drop unknown ones, noting each, as old API versions did."""
    if isinstance(spec, schema.Obj) and isinstance(value, dict):
        if spec.discriminator:
            kind = value.get(spec.discriminator)
            variant = next((v for k, v in spec.variants.items() if isinstance(kind, str) and k.lower() == kind.lower()),
                           None)
            if variant is None:
                return value
            value = {**value, spec.discriminator: next(k for k in spec.variants if k.lower() == kind.lower())}
            spec = variant
        known = {name.lower(): name for name in spec.fields}
        out = {}
        for key, item in value.items():
            where = schema.join(path, key)
            proper = key if key in spec.fields else known.get(key.lower())
            if proper is None:
                notes.append(Problem("import.legacy-field-dropped", where,
                                     f"'{key}' is not an Image Builder field; api-version {api_version} ignored it, "
                                     "so the import dropped it. Check whether a known field was meant.", "warning"))
                continue
            if proper != key:
                notes.append(Problem("import.legacy-field-renamed", where,
                                     f"'{key}' was read as '{proper}' (names are case-sensitive since 2024-02-01).",
                                     "warning"))
            out[proper] = _legacy_clean(item, spec.fields[proper], schema.join(path, proper), api_version, notes)
        return out
    if isinstance(spec, tuple) and isinstance(value, (list, dict)):
        if spec[0] == "list" and isinstance(value, list):
            return [_legacy_clean(item, spec[1], schema.join(path, i), api_version, notes) for i, item in enumerate(value)]
        if spec[0] == "map" and isinstance(value, dict):
            return {k: _legacy_clean(v, spec[1], schema.join(path, k), api_version, notes) for k, v in value.items()}
    return value


def _tolerated(problem: Problem) -> bool:
    # A missing identity or location does not stop an import: the draft says what is missing.
    return problem.rule == "schema.missing-field" and problem.path in ("identity", "location")


def version_fields(body: dict) -> dict[str, Any]:
    """GoldImageVersion field values for a (parsed) template body."""
    props = body.get("properties", {})
    validate = dict(props.get("validate") or {})
    validators = validate.pop("inVMValidations", [])
    identities = (body.get("identity") or {}).get("userAssignedIdentities") or {}
    fields: dict[str, Any] = {
        "location": body.get("location", ""),
        "tags": body.get("tags") or {},
        "identity": next(iter(identities), ""),
        "source": props.get("source") or {},
        "customize_before": props.get("customize") or [],
        "customize_after": [],
        "validators_before": validators,
        "validators_after": [],
        "validate_options": validate,
        "distribute": props.get("distribute") or [],
        "vm_profile": props.get("vmProfile") or {},
        "build_timeout_minutes": props.get("buildTimeoutInMinutes"),
        "error_handling": props.get("errorHandling") or {},
        "optimize": props.get("optimize") or {},
        "staging_resource_group": props.get("stagingResourceGroup") or "",
        "managed_resource_tags": props.get("managedResourceTags") or {},
        "extra_properties": {key: props[key] for key in _CARRIED_PROPERTIES if key in props},
    }
    fields["hyper_v_generation"] = guess_generation(fields["source"])
    return fields


def guess_os_type(body: dict) -> str:
    """Windows when the steps or the source say so; Linux otherwise."""
    props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    validate = props.get("validate") if isinstance(props.get("validate"), dict) else {}
    steps = listed(props.get("customize")) + listed(validate.get("inVMValidations"))
    if any(isinstance(step, dict) and step.get("type") in _WINDOWS_STEPS for step in steps):
        return "Windows"
    source = props.get("source") if isinstance(props.get("source"), dict) else {}
    if "windows" in str(source.get("publisher", "")).lower() or "win" in str(source.get("offer", "")).lower():
        return "Windows"
    return "Linux"


def guess_generation(source: dict) -> str:
    """A first guess from the SKU name; the wizard's catalog look-up settles it."""
    sku = str(source.get("sku", "")).lower()
    if "gen1" in sku:
        return "V1"
    if any(marker in sku for marker in ("gen2", "-g2", "win11", "azure-edition", "-cvm", "24h2", "23h2")):
        return "V2"
    return "V1" if source.get("type") == "PlatformImage" else "V2"
