from builds import diffing


def test_it_reports_identical_bodies_as_identical():
    result = diffing.diff({"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1})
    assert result.identical
    assert result.unified == ()


def test_it_pairs_changed_lines_and_marks_the_changed_characters():
    result = diffing.diff({"properties": {"vmProfile": {"vmSize": "Standard_D2ds_v5"}}},
                          {"properties": {"vmProfile": {"vmSize": "Standard_D4ds_v5"}}})
    changed = [row for row in result.rows if row.kind == "changed"]
    assert len(changed) == 1
    left = "".join(segment.text for segment in changed[0].left.segments if segment.changed)
    right = "".join(segment.text for segment in changed[0].right.segments if segment.changed)
    assert (left, right) == ("2", "4")
    assert result.added == result.removed == 1


def test_it_shows_added_lines_against_an_empty_cell():
    result = diffing.diff({"tags": {"a": "1"}}, {"tags": {"a": "1", "b": "2"}})
    kinds = [row.kind for row in result.rows]
    assert "added" in kinds or "changed" in kinds
    assert any('"b": "2"' in line.text for line in result.unified if line.kind == "added")


def test_it_folds_long_unchanged_runs():
    old = {f"key{n:02d}": n for n in range(40)}
    new = dict(old, key39="changed")
    result = diffing.diff(old, new, context=3)
    skips = [row for row in result.rows if row.kind == "skip"]
    assert len(skips) == 1
    assert "unchanged lines" in skips[0].left.segments[0].text
    assert result.unified[0].kind == "hunk" and result.unified[0].text.startswith("@@ -")
