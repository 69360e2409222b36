"""Characters a name may not hold, and how pages name them. Knows nothing of builds.

Bidirectional overrides, zero-width and control characters make a name read differently from
what it is (a step called "deploy" that sorts, compares and audits as something else), so every
name field refuses them (rule `name.invisible-character`): department and token names here,
gold images, layers and step names through builds/validators.py and builds/schema.py. Scripts
are not refused; pages show these characters visibly instead (the `reveal` and `highlight`
template filters).
"""

from __future__ import annotations

import re
import unicodedata

from django.core.exceptions import ValidationError

# Bidirectional embeddings, overrides and isolates, zero-width characters and marks, line and
# paragraph separators, the byte-order mark, and C0/C1 control characters.
INVISIBLE_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e"
                                  "\u2060-\u2064\u2066-\u2069\ufeff]")


def character_label(char: str) -> str:
    """U+202E RIGHT-TO-LEFT OVERRIDE: how messages and pages name an invisible character."""
    name = unicodedata.name(char, "") or ("CONTROL CHARACTER" if unicodedata.category(char) == "Cc" else "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def name_character_problem(name: str) -> str:
    """Why `name` is refused for holding invisible, bidirectional or control characters; "" when
    it holds none."""
    found = list(dict.fromkeys(INVISIBLE_CHARACTERS.findall(name)))
    if not found:
        return ""
    listed = ", ".join(character_label(char) for char in found)
    return (f"contains {listed}: names may not hold invisible, bidirectional-override or control characters, "
            "since they make a name read differently from what it is. Retype it.")


def validate_plain_name(value: str) -> None:
    """Django field validator for a name: refuses invisible characters with the rule's code."""
    if isinstance(value, str) and (message := name_character_problem(value)):
        raise ValidationError(f"This name {message}", code="name.invisible-character")
