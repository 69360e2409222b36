"""Semantic versions and version ranges for gold image and layer versions. Pure.

A layer version names the gold versions it accepts as a range, in the npm-like syntax people
already know: comparators (`>=1.2.0`, `<2.0.0`, `=1.2.3`), caret (`^1.2` = >=1.2.0 <2.0.0),
tilde (`~1.2.3` = >=1.2.3 <1.3.0), wildcards (`1.x`, `1.2.*`, `*`), joined by spaces or commas
(all must hold) and `||` (either side may hold).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import total_ordering

VERSION_PATTERN = re.compile(r"^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$")
_PARTIAL = re.compile(r"^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?$")
_COMPARATOR = re.compile(r"^(>=|<=|>|<|=|\^|~)?\s*(.+)$")


class VersionError(ValueError):
    """A version or range that cannot be parsed; the message says what is expected."""


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Version:
        found = VERSION_PATTERN.match(text.strip()) if isinstance(text, str) else None
        if not found:
            raise VersionError(f"'{text}' is not a version: use MAJOR.MINOR.PATCH, e.g. 1.2.0.")
        return cls(*(int(part) for part in found.groups()))

    def __lt__(self, other: Version) -> bool:
        return self.key < other.key

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def bump(self, part: str) -> Version:
        if part == "major":
            return Version(self.major + 1, 0, 0)
        if part == "minor":
            return Version(self.major, self.minor + 1, 0)
        return Version(self.major, self.minor, self.patch + 1)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def is_version(text: str) -> bool:
    return isinstance(text, str) and bool(VERSION_PATTERN.match(text.strip()))


def newest(texts: Iterable[str]) -> Version | None:
    """The highest of `texts` that parse as versions, or None."""
    return max((Version.parse(text) for text in texts if is_version(text)), default=None)


def newest_above(version: Version | str, existing: Iterable[str]) -> Version | None:
    """The newest of `existing` when it is above `version` (so a new `version` would not be the
    newest), else None."""
    version = Version.parse(version) if isinstance(version, str) else version
    highest = newest(existing)
    return highest if highest is not None and highest > version else None


def major_range(version: Version) -> str:
    """The range of every version with the same major number: ^1 = >=1.0.0 <2.0.0."""
    return f"^{version.major}"


@dataclass(frozen=True)
class _Bound:
    op: str  # one of >=, >, <=, <, =
    version: Version

    def allows(self, version: Version) -> bool:
        if self.op == ">=":
            return version >= self.version
        if self.op == ">":
            return version > self.version
        if self.op == "<=":
            return version <= self.version
        if self.op == "<":
            return version < self.version
        return version == self.version


@dataclass(frozen=True)
class VersionRange:
    text: str
    alternatives: tuple[tuple[_Bound, ...], ...]

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        if not isinstance(text, str) or not text.strip():
            raise VersionError("Give a version range, e.g. ^1.0 or >=1.2.0 <2.0.0 (or * for any version).")
        alternatives = []
        for part in text.split("||"):
            bounds: list[_Bound] = []
            for token in _tokens(part):
                bounds.extend(_expand(token))
            if not part.strip():
                raise VersionError(f"'{text}' has an empty alternative around '||'.")
            alternatives.append(tuple(bounds))
        return cls(text.strip(), tuple(alternatives))

    def allows(self, version: Version | str) -> bool:
        if isinstance(version, str):
            version = Version.parse(version)
        return any(all(bound.allows(version) for bound in bounds) for bounds in self.alternatives)

    def __str__(self) -> str:
        return self.text


def _tokens(part: str) -> list[str]:
    # "> = 1.2" is not valid, but ">= 1.2" (space after the operator) is common: glue it back.
    raw = [token for token in re.split(r"[\s,]+", part.strip()) if token]
    tokens: list[str] = []
    for token in raw:
        if tokens and tokens[-1] in (">=", "<=", ">", "<", "=", "^", "~"):
            tokens[-1] += token
        else:
            tokens.append(token)
    return tokens


def _expand(token: str) -> list[_Bound]:
    found = _COMPARATOR.match(token)
    if not found:
        raise VersionError(f"'{token}' is not a version comparator.")
    op, rest = found.group(1) or "", found.group(2)
    partial = _PARTIAL.match(rest)
    if not partial:
        raise VersionError(f"'{token}' is not a version or range; use forms like 1.2.0, ^1.2, ~1.2.3, >=1.0.0, 1.x.")
    parts = [None if p is None or p in "xX*" else int(p) for p in partial.groups()]
    major, minor, patch = parts
    if major is None:
        if op in ("<", ">"):
            raise VersionError(f"'{token}' matches nothing.")
        return [_Bound(">=", Version(0, 0, 0))]
    low = Version(major, minor or 0, patch or 0)
    if op == "^":
        if major > 0 or minor is None:
            high = Version(major + 1, 0, 0)
        elif minor > 0 or patch is None:
            high = Version(0, minor + 1, 0)
        else:
            high = Version(0, 0, patch + 1)
        return [_Bound(">=", low), _Bound("<", high)]
    if op == "~":
        high = Version(major + 1, 0, 0) if minor is None else Version(major, minor + 1, 0)
        return [_Bound(">=", low), _Bound("<", high)]
    if minor is None or patch is None:  # a partial version stands for a whole range
        high = Version(major + 1, 0, 0) if minor is None else Version(major, minor + 1, 0)
        if op in ("", "="):
            return [_Bound(">=", low), _Bound("<", high)]
        if op == ">":
            return [_Bound(">=", high)]
        if op == "<=":
            return [_Bound("<", high)]
        return [_Bound(op, low)]
    return [_Bound(op or "=", low)]
