"""What the source watch compares (pure: no Django, no I/O; builds/sourcewatch.py does the reading).

A gold version's source is watched when it follows "latest": a Marketplace image
(`PlatformImage` with `version: latest`) or a gallery image (`SharedImageVersion` whose
`imageVersionId` ends in `/versions/latest`). Image Builder resolves "latest" when a build
runs and reports it as `exactVersion` (a version string, or a gallery version id); the watch
compares that with the versions listed now.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

_GALLERY_LATEST = re.compile(r"^(/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/galleries/"
                             r"[^/]+/images/[^/]+)/versions/latest/?$", re.IGNORECASE)


@dataclass(frozen=True)
class WatchedSource:
    """A source that follows "latest". `kind` is "marketplace" or "gallery"; for the gallery,
    `definition_id` names the image definition and the other parts are its gallery and name."""

    kind: str
    location: str = ""
    publisher: str = ""
    offer: str = ""
    sku: str = ""
    definition_id: str = ""

    @property
    def key(self) -> tuple[str, ...]:
        """The same for every gold image on this source (one listing serves them all)."""
        if self.kind == "gallery":
            return (self.kind, self.definition_id.lower())
        return (self.kind, self.location, self.publisher.lower(), self.offer.lower(), self.sku.lower())

    @property
    def label(self) -> str:
        if self.kind == "gallery":
            return self.definition_id
        return f"{self.publisher}:{self.offer}:{self.sku}"


def watched_source(source: Any, location: str) -> WatchedSource | None:
    """The watched source of an Image Builder source object, or None when it is pinned (or not
    a Marketplace or gallery image). `location` is the build region (normalized)."""
    if not isinstance(source, dict):
        return None
    if source.get("type") == "PlatformImage" and str(source.get("version", "")).lower() == "latest":
        parts = [str(source.get(name) or "") for name in ("publisher", "offer", "sku")]
        return WatchedSource("marketplace", location, *parts) if all(parts) else None
    if source.get("type") == "SharedImageVersion":
        found = _GALLERY_LATEST.match(str(source.get("imageVersionId") or ""))
        return WatchedSource("gallery", definition_id=found.group(1)) if found else None
    return None


def version_name(exact_version: str) -> str:
    """The version part of Image Builder's exactVersion ("…/versions/1.2.3" -> "1.2.3")."""
    return exact_version.rstrip("/").rsplit("/", 1)[-1] if exact_version else ""


def version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in name.split("."))


class Listed(Protocol):
    name: str
    deprecation_state: str
    deprecation_time: str


@dataclass(frozen=True)
class Finding:
    newer: str = ""  # the newest listed version above the one in use, "" when none
    deprecation_state: str = ""  # of the version in use: "ScheduledForDeprecation", "Deprecated" or ""
    deprecation_time: str = ""


def compare(in_use: str, listed: Sequence[Listed]) -> Finding:
    """What the watch reports for a gold image whose newest build resolved `in_use` (a version
    name), given the source's listed versions. A version in use that is no longer listed on a
    listing that is not empty was deprecated (Azure stops listing deprecated versions)."""
    if not in_use:
        return Finding()
    newest = max(listed, key=lambda item: version_key(item.name), default=None)
    newer = newest.name if newest is not None and version_key(newest.name) > version_key(in_use) else ""
    current = next((item for item in listed if item.name == in_use), None)
    if current is None:
        return Finding(newer=newer, deprecation_state="Deprecated" if listed else "")
    state = current.deprecation_state if current.deprecation_state != "Active" else ""
    return Finding(newer=newer, deprecation_state=state, deprecation_time=current.deprecation_time if state else "")
