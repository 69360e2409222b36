"""Reads shared by the pages, the API and the commands (no writes here).

Every list and detail the pages and the API both show is read here once, with its
prefetches, so the two cannot drift: builds (`build_list` with `BuildFilters`), gold images
(`gold_image_list`, `gold_image_detail`), layers (`layer_list`, `layer_detail`) and the
editor's out-of-date layers (`outdated_layers`). Each takes the user and reads through the
access funnel (builds/access.py), so a list never holds what the user may not see. The
audit history's reads are the floor's (portal/audit_history.py: `history_list`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.utils import timezone

from builds import access, compose, preflight
from builds.models import Build, BuildLayer, GoldImage, GoldImageVersion, Layer, LayerVersion, SourceWatch
from builds.versions import VersionError, VersionRange

LAYER_REF = re.compile(r"^(?P<department>[\w-]+)/(?P<layer>[\w-]+)@(?P<version>[\w.\-]+)$")


class NotFound(LookupError):
    """Nothing matches the reference; the message says what was looked for."""


def gold_version_get(slug: str, version: str) -> GoldImageVersion:
    found = (GoldImageVersion.objects.select_related("gold_image")
             .filter(gold_image__slug=slug, version=version).first())
    if found is None:
        raise NotFound(f"No gold image version {slug}@{version}.")
    return found


def layer_version_get(ref: str) -> LayerVersion:
    """A layer version from a DEPT/LAYER@VERSION reference."""
    match = LAYER_REF.match(ref.strip())
    if not match:
        raise NotFound(f"'{ref}' is not a layer reference: use DEPARTMENT/LAYER@VERSION, e.g. web/nginx@1.0.0.")
    found = (LayerVersion.objects.select_related("layer__department", "layer__gold_image")
             .filter(layer__department__slug=match["department"], layer__slug=match["layer"],
                     version=match["version"]).first())
    if found is None:
        raise NotFound(f"No layer version {ref}.")
    return found


class Ambiguous(LookupError):
    """Several rows match a shortened reference; the message says how many."""


# The pages show a build's first 8 hex digits; 4 is the shortest prefix worth looking up.
BUILD_PREFIX_MIN = 4
_HEX = re.compile(r"^[0-9a-f]+$")


def build_get(build_id: str) -> Build:
    """A build by its id or any unique prefix of it of at least BUILD_PREFIX_MIN hex digits
    (hyphens optional, any case). Raises NotFound, or Ambiguous when several builds match."""
    digits = build_id.strip().lower().replace("-", "")
    if not (BUILD_PREFIX_MIN <= len(digits) <= 32 and _HEX.match(digits)):
        short = _HEX.match(digits) and len(digits) < BUILD_PREFIX_MIN
        raise NotFound(f"No build {build_id}." + (f" Give at least {BUILD_PREFIX_MIN} characters of its id."
                                                  if short else ""))
    builds = Build.objects.select_related("gold_version__gold_image", "requested_by", "department")
    # Hyphens where a UUID has them: PostgreSQL compares the hyphenated text, SQLite the bare
    # hex digits (Django strips the hyphens there), so this prefix matches on both.
    prefix = "-".join(digits[start:end] for start, end in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))
                      if digits[start:end])
    matches = builds.filter(uuid=prefix) if len(digits) == 32 else builds.filter(uuid__startswith=prefix)
    found = list(matches[:2])
    if not found:
        raise NotFound(f"No build {build_id}.")
    if len(found) > 1:
        raise Ambiguous(f"ambiguous: {matches.count()} builds start with {build_id.strip()}; give more of the id.")
    return found[0]


def build_summary(build: Build) -> dict:
    """A build as plain data (showbuild --json, the API)."""
    return {
        "id": str(build.uuid),
        "state": build.state,
        "sub_state": build.sub_state,
        "gold_version": str(build.gold_version),
        "channel": build.channel or None,  # the release channel the gold version was resolved from
        "layers": [str(bl.layer_version) for bl in
                   build.build_layers.select_related("layer_version__layer__department")],
        "department": build.department.slug if build.department_id else None,
        "requested_by": build.requested_by.get_username(),
        "created_at": build.created_at.isoformat(),
        "started_at": build.started_at.isoformat() if build.started_at else None,
        "finished_at": build.finished_at.isoformat() if build.finished_at else None,
        "subscription_id": build.subscription_id,
        "resource_group": build.resource_group,
        "location": build.location,
        "template_name": build.template_name,
        "template_sha256": build.template_sha256,
        "error_code": build.error_code,
        "error_message": build.error_message,
        "log_uri": build.log_uri,
        "staging_resource_group": build.staging_resource_group,
        "source_exact_version": build.source_exact_version,
        "outputs": [{"name": o.run_output_name, "type": o.distributor_type, "artifact_id": o.artifact_id,
                     "artifact_uri": o.artifact_uri, "provisioning_state": o.provisioning_state}
                    for o in build.outputs.all()],
        "events": [{"at": e.at.isoformat(), "from_state": e.from_state, "to_state": e.to_state,
                    "from_sub_state": e.from_sub_state, "to_sub_state": e.to_sub_state, "detail": e.detail}
                   for e in build.events.all()],
    }


# --- Builds ---------------------------------------------------------------------------------------

# The columns a build list sorts by, and the field each orders.
BUILD_SORTS = {
    "created": "created_at", "state": "state", "gold": "gold_version__gold_image__slug",
    "requester": "requested_by__username", "finished": "finished_at", "department": "department__slug",
}
NEWEST_FIRST = ("-major", "-minor", "-patch")


def with_layers(builds: QuerySet[Build]) -> QuerySet[Build]:
    """Builds with their layer versions (and those layers' departments) in one more query."""
    return builds.prefetch_related(
        Prefetch("build_layers", queryset=BuildLayer.objects.select_related("layer_version__layer__department")))


@dataclass(frozen=True)
class BuildFilters:
    """What a build list is narrowed to, already validated (the page's form and the API's
    query parameters both make one). Empty means "any"."""

    state: str = ""  # a Build.State value, or "active" for every build still in progress
    department: str = ""  # department slug
    gold_image: str = ""  # gold image slug
    requested_by: str = ""  # user name, in any case
    since: dt.datetime | None = None  # requested at or after
    until: dt.datetime | None = None  # requested before
    sort: str = "-created"  # a BUILD_SORTS key; a leading "-" sorts descending

    @staticmethod
    def day_range(since: dt.date | None, until: dt.date | None) -> dict:
        """`since` and `until` for whole days in the current time zone, `until` included."""
        zone = timezone.get_current_timezone()
        return {"since": dt.datetime.combine(since, dt.time.min, zone) if since else None,
                "until": dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min, zone) if until else None}

    @property
    def sort_key(self) -> str:
        key = self.sort.lstrip("-")
        return key if key in BUILD_SORTS else "created"

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-") or self.sort.lstrip("-") not in BUILD_SORTS


def build_list(user, filters: BuildFilters = BuildFilters()) -> QuerySet[Build]:
    """The builds `user` may see that match `filters`, sorted (ties by id, in the same
    direction, so a keyset cursor on (sort field, id) is stable), with their layers."""
    queryset = access.builds(user)
    if filters.state == "active":
        queryset = queryset.filter(state__in=Build.ACTIVE)
    elif filters.state:
        queryset = queryset.filter(state=filters.state)
    if filters.department:
        queryset = queryset.filter(department__slug=filters.department)
    if filters.gold_image:
        queryset = queryset.filter(gold_version__gold_image__slug=filters.gold_image)
    if filters.requested_by.strip():
        queryset = queryset.filter(requested_by__username__iexact=filters.requested_by.strip())
    if filters.since:
        queryset = queryset.filter(created_at__gte=filters.since)
    if filters.until:
        queryset = queryset.filter(created_at__lt=filters.until)
    order = BUILD_SORTS[filters.sort_key]
    descending = "-" if filters.descending else ""
    return with_layers(queryset.order_by(f"{descending}{order}", f"{descending}id"))


# --- Gold images and layers -------------------------------------------------------------------------


def _visible_gold_versions(user) -> Prefetch:
    return Prefetch("versions", to_attr="visible_versions",
                    queryset=access.gold_versions(user).order_by(*NEWEST_FIRST))


def gold_image_list(user) -> QuerySet[GoldImage]:
    """Gold images `user` may see by slug, each with `visible_versions` (newest first) and
    `layer_count`."""
    return (access.gold_images(user).order_by("slug").prefetch_related(_visible_gold_versions(user))
            .annotate(layer_count=Count("layers", distinct=True)))


def gold_image_detail(user, slug: str) -> GoldImage:
    """Gold image `slug` (access.get_gold_image's 404/403) with `visible_versions`: the
    versions `user` may see, newest first, each with `build_count` (builds `user` may see)."""
    image = access.get_gold_image(user, slug)
    image.visible_versions = list(
        access.gold_versions(user).filter(gold_image=image)
        .annotate(build_count=Count("builds", filter=access.scope_q(user, "builds__department"), distinct=True))
        .order_by(*NEWEST_FIRST))
    return image


def newest_published(versions) -> GoldImageVersion | None:
    """The highest published version among `versions` (what "out of date" compares with)."""
    published = [v for v in versions if v.status == GoldImageVersion.Status.PUBLISHED]
    return max(published, key=lambda v: v.semver) if published else None


def layer_list(user, *, department: str = "", gold_image: str = "") -> QuerySet[Layer]:
    """Layers `user` may see by department and slug, each with `visible_versions` (newest
    first), optionally of one department and one gold image (slugs)."""
    queryset = access.layers(user).order_by("department__slug", "slug")
    if department:
        queryset = queryset.filter(department__slug=department)
    if gold_image:
        queryset = queryset.filter(gold_image__slug=gold_image)
    return queryset.prefetch_related(Prefetch("versions", to_attr="visible_versions",
                                              queryset=access.layer_versions(user).order_by(*NEWEST_FIRST)))


def layer_detail(user, department: str, slug: str) -> Layer:
    """Layer `department/slug` (access.get_layer's 404/403) with `visible_versions`, newest
    first, each with `build_count`."""
    layer = access.get_layer(user, department, slug)
    layer.visible_versions = list(access.layer_versions(user).filter(layer=layer).order_by(*NEWEST_FIRST)
                                  .annotate(build_count=Count("builds", distinct=True)))
    return layer


MADE_AN_IMAGE = (Build.State.SUCCEEDED, Build.State.PARTIALLY_SUCCEEDED)


def _accepts(layer_version: LayerVersion, version: str) -> bool:
    try:
        return VersionRange.parse(layer_version.accepts).allows(version)
    except VersionError:
        return False


def outdated_layers(user, department_ids) -> list[dict]:
    """Rows for the editor's home: each layer of `department_ids` that `user` may see, its
    newest version (`latest`), the newest published version of its gold image
    (`newest_gold`), the gold version it was last built on (`built_on`) and whether that is
    older (`out_of_date`), counting only builds that made an image (a failed or canceled build
    is not "out of date"). `accepts_newest`: whether a published version of the layer accepts
    the newest gold version (`rebuild_with`, the newest such), which decides the advice: rebuild
    on it, or make a new layer version that accepts it."""
    layers = list(access.layers(user).filter(department_id__in=department_ids)
                  .prefetch_related(Prefetch("versions", queryset=LayerVersion.objects.order_by(*NEWEST_FIRST))))
    newest: dict[int, GoldImageVersion] = {}
    for version in GoldImageVersion.objects.filter(status=GoldImageVersion.Status.PUBLISHED).select_related("gold_image"):
        current = newest.get(version.gold_image_id)
        if current is None or current.semver < version.semver:
            newest[version.gold_image_id] = version
    # The gold version each layer was last built on, to say which layers have not caught up.
    last_built = dict(
        access.layers(user).filter(department_id__in=department_ids)
        .annotate(last_gold=Subquery(BuildLayer.objects.filter(layer_version__layer=OuterRef("pk"),
                                                               build__state__in=MADE_AN_IMAGE)
                                     .order_by("-build__created_at").values("build__gold_version_id")[:1]))
        .values_list("pk", "last_gold"))
    built_versions = {v.pk: v for v in GoldImageVersion.objects.filter(pk__in=[pk for pk in last_built.values() if pk])}
    rows = []
    for layer in layers:
        versions = layer.versions.all()
        target = newest.get(layer.gold_image_id)
        built_on = built_versions.get(last_built.get(layer.pk))
        rebuild_with = next((v for v in versions if v.status == LayerVersion.Status.PUBLISHED and target
                             and _accepts(v, target.version)), None)
        rows.append({"layer": layer, "latest": versions[0] if versions else None, "newest_gold": target,
                     "built_on": built_on, "out_of_date": bool(target and built_on and built_on.semver < target.semver),
                     "accepts_newest": rebuild_with is not None, "rebuild_with": rebuild_with})
    return rows


# --- Composition as pages and the API show it ------------------------------------------------------


def preview_context(**extra) -> compose.BuildContext:
    """What a preview composes with: the configured region and subscription (a Goldsmith-named
    staging group's id needs it) and the current policy's pins; a build adds its id and requester."""
    return compose.BuildContext(location=settings.AZURE_LOCATION, subscription=settings.AZURE_SUBSCRIPTION_ID,
                                policy=preflight.policy_rules(), **extra)


def baseline(gold_version: GoldImageVersion, *, provenance: bool = False) -> dict:
    """compose.baseline in the configured region and subscription, with the current policy's pins
    filled as a build fills them: what gold version pages, the wizard's review, diffs and the API show."""
    return compose.baseline(gold_version, settings.AZURE_LOCATION, subscription=settings.AZURE_SUBSCRIPTION_ID,
                            provenance=provenance, policy=preflight.policy_rules())


def filled_by_policy(gold_version: GoldImageVersion) -> list[str]:
    """The JSON paths of baseline() that the current policy filled (compose.apply_pins), for the
    "filled by policy" note beside the template."""
    return compose.compose_pinned(gold_version, [], preview_context())[1]


def source_findings(user, gold_image: GoldImage | None = None) -> list[SourceWatch]:
    """What the source watch (builds/sourcewatch.py) found for the gold images `user` may see:
    a newer source version, a deprecation of the one in use, or a listing that failed."""
    rows = (SourceWatch.objects.filter(gold_image__in=access.gold_images(user))
            .select_related("gold_image", "gold_version", "build").order_by("gold_image__slug"))
    if gold_image is not None:
        rows = rows.filter(gold_image=gold_image)
    return [row for row in rows if row.newer or row.deprecation_state or row.error]
