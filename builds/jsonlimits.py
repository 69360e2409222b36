"""How deeply nested JSON Goldsmith reads. Pure.

Python's json module recurses once per nesting level, so a 2 KB body of a thousand `[` raises
RecursionError instead of a parse error, and everything that walks a parsed document (the
schema check, redaction, serializers) recurses the same way. Templates and API bodies are a
handful of levels deep; MAX_JSON_DEPTH leaves ample room above that while staying far below
the interpreter's recursion limit, so every reader checks the raw text with json_depth_ok()
before json.loads sees it.
"""

from __future__ import annotations

import re

MAX_JSON_DEPTH = 64
TOO_DEEP_MESSAGE = f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep."

# A string (to its closing quote, or to the end when it has none) or one bracket. Strings are
# consumed whole so that brackets inside them do not count; the possessive loop and the optional
# closing quote keep the scan linear even for an unterminated string full of escaped quotes.
_TOKEN_STR = re.compile(r'"(?:[^"\\]|\\.)*+"?|[\[\]{}]', re.DOTALL)
_TOKEN_BYTES = re.compile(rb'"(?:[^"\\]|\\.)*+"?|[\[\]{}]', re.DOTALL)
_BRACKETS_STR = (("[", "{"), ("]", "}"))
_BRACKETS_BYTES = ((b"[", b"{"), (b"]", b"}"))


def json_depth_ok(raw: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text nests arrays and objects at most `limit` levels deep.

    Counts brackets outside strings without parsing, so it is safe on any input, valid JSON or
    not (malformed text is left for the parser to refuse). Linear in the length of `raw`.
    """
    if isinstance(raw, str):
        pattern, (openers, closers) = _TOKEN_STR, _BRACKETS_STR
    else:
        pattern, (openers, closers) = _TOKEN_BYTES, _BRACKETS_BYTES
    if raw.count(openers[0]) + raw.count(openers[1]) <= limit:
        return True  # the common case: too few brackets to nest that deep, whatever the strings hold
    depth = 0
    for match in pattern.finditer(raw):
        token = match.group()
        if token in openers:
            depth += 1
            if depth > limit:
                return False
        elif token in closers:
            depth = max(depth - 1, 0)
    return True


NUL_MESSAGE = "The JSON holds a NUL character (\\u0000): no field may, and PostgreSQL cannot store one."


def contains_nul(value: object) -> bool:
    """Whether any string of a parsed JSON document (keys included) holds U+0000. Walks with a
    stack, not recursion; call it on documents json_depth_ok() admitted."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
