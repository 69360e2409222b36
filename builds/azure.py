"""The one place Goldsmith talks to Azure (and the only module that imports azure.*).

Callers get domain functions that take and return plain data; SDK models and exceptions
never leave this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from azure.mgmt.imagebuilder import models as ib_models
from azure.mgmt.imagebuilder._utils.model_base import Model, SdkJSONEncoder


@dataclass(frozen=True)
class SdkRoundTrip:
    """How azure-mgmt-imagebuilder reads a template body."""

    unknown_paths: tuple[str, ...]  # keys the SDK's ImageTemplate model does not know
    serialized: dict  # what the SDK would send (read-only fields excluded)


def template_sdk_roundtrip(body: dict) -> SdkRoundTrip:
    """Load body into ImageTemplate and serialise it back the way begin_create_or_update does."""
    model = ib_models.ImageTemplate(body)
    unknown: list[str] = []
    _unknown_keys(model, "", unknown)
    serialized = json.loads(json.dumps(model, cls=SdkJSONEncoder, exclude_readonly=True))
    return SdkRoundTrip(tuple(unknown), serialized)


def _unknown_keys(value: Any, path: str, out: list[str]) -> None:
    if isinstance(value, Model):
        fields = {field._rest_name: name for name, field in value._attr_to_rest_field.items()}
        for key in value:
            where = f"{path}.{key}" if path else key
            if key not in fields:
                out.append(where)
            else:
                _unknown_keys(getattr(value, fields[key]), where, out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _unknown_keys(item, f"{path}[{index}]", out)
    elif isinstance(value, dict):
        for key, item in value.items():
            _unknown_keys(item, f"{path}.{key}", out)
