"""Reads shared by views, commands and the API (no writes here)."""

from __future__ import annotations

import re

from builds.models import GoldImageVersion, LayerVersion

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
