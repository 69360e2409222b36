"""The source watch: is a newer source image listed than the one each gold image's newest build
resolved, and is the one in use scheduled for deprecation? (docs/architecture.md, "The source watch")

`run()` is the periodic job's body (builds/cron.py, every SOURCE_WATCH_HOURS). It watches the
newest published version of every gold image whose source follows "latest" (builds/sources.py),
lists each distinct source once (builds/azure.py, cached), stores what it saw in SourceWatch and
announces each finding once: `source.available` for a newer version, `source.deprecation_scheduled`
for a version in use that the catalog schedules for deprecation (one event per source and
finding, naming every gold image on it). When the policy's `on_new_source` is `build`, a newly
announced version also gets a gold-only build of the watched gold version (services.build_request,
one `build.request` audit event, by "source-watch"); Image Builder resolves "latest" to it.
Running it again with nothing new announces and builds nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from builds import azure, preflight, services, sources
from builds.models import Build, GoldImage, GoldImageVersion, SourceWatch
from notify import events

log = logging.getLogger(__name__)
ACTOR = "source-watch"
# Builds looked at per gold image to find the newest one that resolved the watched source.
_BUILDS_LOOKED_AT = 20


@dataclass(frozen=True)
class Target:
    gold_image: GoldImage
    gold_version: GoldImageVersion
    source: sources.WatchedSource
    in_use: str  # the version name the newest build resolved, "" when never built


def targets() -> list[Target]:
    """Every gold image whose newest published version follows "latest" on a watched source."""
    found = []
    published = (GoldImageVersion.objects.filter(status=GoldImageVersion.Status.PUBLISHED)
                 .select_related("gold_image").order_by("gold_image__slug", "-major", "-minor", "-patch"))
    seen: set[int] = set()
    for gold_version in published:
        if gold_version.gold_image_id in seen:
            continue
        seen.add(gold_version.gold_image_id)
        location = azure.normalize_location(gold_version.location or settings.AZURE_LOCATION)
        source = sources.watched_source(gold_version.source, location)
        if source is None:
            continue
        found.append(Target(gold_version.gold_image, gold_version, source, _in_use(gold_version.gold_image, source)))
    return found


def _in_use(gold_image: GoldImage, source: sources.WatchedSource) -> str:
    builds = (Build.objects.filter(gold_version__gold_image=gold_image).exclude(source_exact_version="")
              .select_related("gold_version").order_by("-created_at")[:_BUILDS_LOOKED_AT])
    for build in builds:
        location = azure.normalize_location(build.location)
        watched = sources.watched_source(build.gold_version.source, location)
        if watched is not None and watched.key == source.key:
            return sources.version_name(build.source_exact_version)
    return ""


def _listing(source: sources.WatchedSource) -> tuple[azure.SourceVersion, ...]:
    if source.kind == "gallery":
        return azure.gallery_source_versions(source.definition_id)
    return azure.marketplace_source_versions(source.location, source.publisher, source.offer, source.sku)


def run() -> dict:
    """Check every watched gold image; returns counts (sources listed, gold images, findings
    announced, builds requested). Idempotent: a finding already announced is not announced again."""
    watched = targets()
    listings: dict[tuple, tuple[azure.SourceVersion, ...] | azure.AzureError] = {}
    for target in watched:
        if target.source.key not in listings:
            try:
                listings[target.source.key] = _listing(target.source)
            except azure.AzureError as exc:
                log.warning("source watch: could not list %s: %s", target.source.label, exc)
                listings[target.source.key] = exc
    counts = {"sources": len(listings), "gold_images": len(watched), "available": 0, "deprecations": 0, "builds": 0}
    with transaction.atomic():
        announce_available: dict[tuple, list[Target]] = defaultdict(list)
        announce_deprecation: dict[tuple, list[Target]] = defaultdict(list)
        rows: dict[int, SourceWatch] = {}
        auto_build = preflight.policy_rules().on_new_source == "build"
        for target in watched:
            row, _ = SourceWatch.objects.select_for_update().get_or_create(
                gold_image=target.gold_image, defaults={"gold_version": target.gold_version,
                                                        "source": target.source.label})
            rows[target.gold_image.pk] = row
            row.gold_version, row.source, row.in_use = target.gold_version, target.source.label, target.in_use
            row.checked_at = timezone.now()
            listed = listings[target.source.key]
            if isinstance(listed, azure.AzureError):
                row.error = f"The source could not be listed: {listed}"
                row.save()
                continue
            finding = sources.compare(target.in_use, listed)
            row.error, row.newer = "", finding.newer
            row.deprecation_state, row.deprecation_time = finding.deprecation_state, finding.deprecation_time
            if finding.newer and finding.newer != row.announced_newer:
                row.announced_newer = finding.newer
                announce_available[(target.source.key, finding.newer)].append(target)
                if auto_build:
                    _build(row, target)
                    counts["builds"] += not row.error
            if finding.deprecation_state == "ScheduledForDeprecation" and row.announced_deprecation != target.in_use:
                row.announced_deprecation = target.in_use
                announce_deprecation[(target.source.key, target.in_use, finding.deprecation_time)].append(target)
            row.save()
        for (_, version), group in announce_available.items():
            _emit("source.available", group, version, "")
        for (_, version, when), group in announce_deprecation.items():
            _emit("source.deprecation_scheduled", group, version, when)
        counts["available"], counts["deprecations"] = len(announce_available), len(announce_deprecation)
    return counts


def _build(row: SourceWatch, target: Target) -> None:
    try:
        row.build = services.build_request(actor=ACTOR, gold_version=target.gold_version)
    except services.ServiceError as exc:
        row.build = None  # an earlier finding's build is not this one's
        row.error = f"The automatic build was refused: {exc}"


def _emit(type_: str, group: list[Target], version: str, when: str) -> None:
    source = group[0].source
    gallery = source.kind == "gallery"
    object_id = f"{source.label}@{version}"
    data = {"id": object_id,
            "publisher": source.definition_id.split("/galleries/")[-1].split("/")[0] if gallery else source.publisher,
            "offer": source.definition_id.rsplit("/", 1)[-1] if gallery else source.offer,
            "sku": "" if gallery else source.sku, "version": version, "deprecation_date": when or None,
            "gold_images": sorted(target.gold_image.slug for target in group)}
    link = f"/gold/{group[0].gold_image.slug}/" if len(group) == 1 else "/"
    events.emit(type_, object_type="source", object_id=object_id, data=data, link=link)

