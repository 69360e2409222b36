"""Field rules every way into the catalog applies: the models (and so the admin), the forms,
the services (and so the commands and the API). One rule, one message, one rule id.

- slugs (`catalog.slug`): 1-50 lower-case letters, digits and hyphens, starting and ending with
  a letter or digit, so every slug reverses into every URL and fits a template name;
- names (`name.invisible-character`): no bidirectional, zero-width or control characters
  (portal/text.py, shared with department and token names), so a name reads as what it is;
- versions (`version.format`): MAJOR.MINOR.PATCH (builds/versions.py).
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

from builds import schema
from builds.versions import Version, VersionError
from portal.text import validate_plain_name

SLUG_MAX = 50
SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$")
SLUG_MESSAGE = ("Use 1-50 lower-case letters, digits and hyphens, starting and ending with a letter or digit "
                "(for example ubuntu-2204-base).")


def slug_problem(value: str) -> str:
    """Why `value` is not a slug; "" when it is one."""
    if isinstance(value, str) and SLUG_PATTERN.match(value):
        return ""
    return f"'{value}' is not a valid short name. {SLUG_MESSAGE}"


def name_problem(value: str) -> str:
    return schema.name_character_problem(value) if isinstance(value, str) else ""


def version_problem(value: str) -> str:
    try:
        parsed = Version.parse(value)
    except VersionError as exc:
        return str(exc)
    if str(parsed) != value:  # " 1.0.0" or "01.0.0" would not match its own URL
        return f"'{value}' is not a version as written: use {parsed}."
    return ""


def validate_slug(value: str) -> None:
    if message := slug_problem(value):
        raise ValidationError(message, code="catalog.slug")


validate_name = validate_plain_name


def validate_version(value: str) -> None:
    if message := version_problem(value):
        raise ValidationError(message, code="version.format")
