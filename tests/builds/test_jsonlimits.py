"""builds.jsonlimits.json_depth_ok: the nesting depth of raw JSON text, measured without parsing."""

from __future__ import annotations

import json
import time

import pytest

from builds import jsonlimits
from builds.jsonlimits import MAX_JSON_DEPTH, json_depth_ok


def deep(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


@pytest.mark.parametrize("kind", [str, bytes])
def test_it_allows_max_json_depth_and_refuses_one_more(kind):
    def raw(text):
        return text if kind is str else text.encode()

    assert json_depth_ok(raw(deep(MAX_JSON_DEPTH)))
    assert not json_depth_ok(raw(deep(MAX_JSON_DEPTH + 1)))
    assert not json_depth_ok(raw('{"a":' * 1000))  # unbalanced: refused before the parser sees it


def test_it_counts_objects_and_arrays_alike():
    text = json.dumps({"a": [{"b": [{"c": 1}]}]})

    assert json_depth_ok(text, 5)
    assert not json_depth_ok(text, 4)


def test_brackets_in_strings_and_after_escaped_quotes_do_not_count():
    assert json_depth_ok(json.dumps({"a": "[" * 1000, "b": "{" * 1000}), 1)
    assert json_depth_ok(r'{"a": "\"[[[[", "b": [1]}', 2)
    assert not json_depth_ok(r'{"a": "\\", "b": [[1]]}', 2)  # an escaped backslash ends the string


def test_sibling_containers_do_not_add_up():
    assert json_depth_ok("[" + ",".join(["[]"] * 5000) + "]", 2)


@pytest.mark.parametrize("text", ['"' + '\\"' * 250_000, "[]" * 250_000, "\x00\xff" * 250_000, '"' * 500_000])
def test_it_is_linear_on_hostile_input(text):
    started = time.monotonic()

    json_depth_ok(text)
    json_depth_ok(text.encode("utf-8", "surrogatepass"))

    assert time.monotonic() - started < 2


@pytest.mark.parametrize(("document", "found"), [
    ({"a": "x\x00y"}, True), ({"k\x00": 1}, True), ([[["deep\x00"]]], True),
    ({"a": "x", "b": [1, 2, {"c": "\\u0000 as text"}]}, False), ("plain", False),
])
def test_contains_nul_finds_u0000_in_any_string_key_or_value(document, found):
    assert jsonlimits.contains_nul(document) is found
