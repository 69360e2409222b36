"""Reads shared by views, commands and the API (no writes here)."""

from __future__ import annotations

import re

from builds.models import Build, GoldImageVersion, LayerVersion

LAYER_REF = re.compile(r"^(?P<department>[\w-]+)/(?P<layer>[\w-]+)@(?P<version>[\w.\-]+)$")


class NotFound(LookupError):
    """Nothing matches the reference; the message says what was looked for."""


def gold_version_get(slug: str, version: str) -> GoldImageVersion:
    found = (GoldImageVersion.objects.select_related("gold_image")
             .filter(gold_image__slug=slug, version=version).first())
    if found is None:
        raise NotFound(f"No gold image version {slug}@{version}.")
    return found


def layer_version_get(ref: str) -> LayerVersion:
    """A layer version from a DEPT/LAYER@VERSION reference."""
    match = LAYER_REF.match(ref.strip())
    if not match:
        raise NotFound(f"'{ref}' is not a layer reference: use DEPARTMENT/LAYER@VERSION, e.g. web/nginx@1.0.0.")
    found = (LayerVersion.objects.select_related("layer__department", "layer__gold_image")
             .filter(layer__department__slug=match["department"], layer__slug=match["layer"],
                     version=match["version"]).first())
    if found is None:
        raise NotFound(f"No layer version {ref}.")
    return found


class Ambiguous(LookupError):
    """Several rows match a shortened reference; the message says how many."""


# The pages show a build's first 8 hex digits; 4 is the shortest prefix worth looking up.
BUILD_PREFIX_MIN = 4
_HEX = re.compile(r"^[0-9a-f]+$")


def build_get(build_id: str) -> Build:
    """A build by its id or any unique prefix of it of at least BUILD_PREFIX_MIN hex digits
    (hyphens optional, any case). Raises NotFound, or Ambiguous when several builds match."""
    digits = build_id.strip().lower().replace("-", "")
    if not (BUILD_PREFIX_MIN <= len(digits) <= 32 and _HEX.match(digits)):
        short = _HEX.match(digits) and len(digits) < BUILD_PREFIX_MIN
        raise NotFound(f"No build {build_id}." + (f" Give at least {BUILD_PREFIX_MIN} characters of its id."
                                                  if short else ""))
    builds = Build.objects.select_related("gold_version__gold_image", "requested_by", "department")
    # Hyphens where a UUID has them: PostgreSQL compares the hyphenated text, SQLite the bare
    # hex digits (Django strips the hyphens there), so this prefix matches on both.
    prefix = "-".join(digits[start:end] for start, end in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))
                      if digits[start:end])
    matches = builds.filter(uuid=prefix) if len(digits) == 32 else builds.filter(uuid__startswith=prefix)
    found = list(matches[:2])
    if not found:
        raise NotFound(f"No build {build_id}.")
    if len(found) > 1:
        raise Ambiguous(f"ambiguous: {matches.count()} builds start with {build_id.strip()}; give more of the id.")
    return found[0]


def build_summary(build: Build) -> dict:
    """A build as plain data (showbuild --json, the API)."""
    return {
        "id": str(build.uuid),
        "state": build.state,
        "sub_state": build.sub_state,
        "gold_version": str(build.gold_version),
        "layers": [str(bl.layer_version) for bl in
                   build.build_layers.select_related("layer_version__layer__department")],
        "department": build.department.slug if build.department_id else None,
        "requested_by": build.requested_by.get_username(),
        "created_at": build.created_at.isoformat(),
        "started_at": build.started_at.isoformat() if build.started_at else None,
        "finished_at": build.finished_at.isoformat() if build.finished_at else None,
        "subscription_id": build.subscription_id,
        "resource_group": build.resource_group,
        "location": build.location,
        "template_name": build.template_name,
        "template_sha256": build.template_sha256,
        "error_code": build.error_code,
        "error_message": build.error_message,
        "log_uri": build.log_uri,
        "staging_resource_group": build.staging_resource_group,
        "source_exact_version": build.source_exact_version,
        "outputs": [{"name": o.run_output_name, "type": o.distributor_type, "artifact_id": o.artifact_id,
                     "artifact_uri": o.artifact_uri, "provisioning_state": o.provisioning_state}
                    for o in build.outputs.all()],
        "events": [{"at": e.at.isoformat(), "from_state": e.from_state, "to_state": e.to_state,
                    "from_sub_state": e.from_sub_state, "to_sub_state": e.to_sub_state, "detail": e.detail}
                   for e in build.events.all()],
    }
