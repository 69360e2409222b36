import pytest

from builds.versions import Version, VersionError, VersionRange, major_range, newest, newest_above


def test_it_orders_versions_numerically():
    assert Version.parse("1.10.0") > Version.parse("1.9.9")
    assert sorted(map(Version.parse, ["2.0.0", "1.0.10", "1.0.2"])) == [
        Version(1, 0, 2), Version(1, 0, 10), Version(2, 0, 0)]


@pytest.mark.parametrize("text", ["1.0", "01.0.0", "v1.0.0", "1.0.0-rc1", "", "a.b.c"])
def test_it_refuses_malformed_versions(text):
    with pytest.raises(VersionError):
        Version.parse(text)


@pytest.mark.parametrize("text, allowed, refused", [
    ("*", ["0.0.1", "9.9.9"], []),
    ("^1.2", ["1.2.0", "1.9.9"], ["1.1.9", "2.0.0"]),
    ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
    ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0"]),
    (">=1.2.0 <2.0.0", ["1.2.0", "1.99.0"], ["2.0.0", "1.1.0"]),
    (">=1.2.0, <1.3", ["1.2.5"], ["1.3.0"]),
    ("1.x", ["1.0.0", "1.5.2"], ["2.0.0", "0.9.0"]),
    ("1.2.x || 2.x", ["1.2.7", "2.3.0"], ["1.3.0", "3.0.0"]),
    ("=1.0.0", ["1.0.0"], ["1.0.1"]),
    ("<= 1.4", ["1.4.9"], ["1.5.0"]),
])
def test_it_matches_ranges(text, allowed, refused):
    version_range = VersionRange.parse(text)
    assert all(version_range.allows(v) for v in allowed)
    assert not any(version_range.allows(v) for v in refused)


@pytest.mark.parametrize("text", ["", "banana", ">=", "1.2.3.4", "|| 1.0"])
def test_it_refuses_malformed_ranges(text):
    with pytest.raises(VersionError):
        VersionRange.parse(text)


@pytest.mark.parametrize("version, existing, above", [
    ("0.9.0", ["1.0.0"], "1.0.0"),
    ("1.0.1", ["1.0.0", "2.0.0"], "2.0.0"),  # a fix to an older line: allowed, worth a word
    ("1.1.0", ["1.0.0", "0.9.0"], None),
    ("1.0.0", [], None),
    ("1.0.0", ["not a version", "0.1.0"], None),
])
def test_it_finds_the_newest_version_above_a_new_one(version, existing, above):
    assert newest_above(version, existing) == (Version.parse(above) if above else None)


def test_a_major_range_accepts_exactly_that_major_version():
    assert newest(["1.2.0", "1.10.0", "0.9.0"]) == Version(1, 10, 0)
    accepted = VersionRange.parse(major_range(Version(1, 10, 0)))
    assert [accepted.allows(v) for v in ("0.9.9", "1.0.0", "1.99.0", "2.0.0")] == [False, True, True, False]
    assert major_range(Version(0, 3, 0)) == "^0" and not VersionRange.parse("^0").allows("1.0.0")
