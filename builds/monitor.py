"""The periodic sweep and the reconciler: how Goldsmith follows every build without pollers.

The sweep reads Image Builder once per resource group holding active builds (one paged
listing returns lastRunStatus for every template in it), applies what it sees to each
build, records the outputs of builds that just finished and deletes finished templates when
their retention has passed. Cost: one ARM read per page of templates per sweep, whatever the
number of builds, plus outputs: none when the template names its artifacts exactly, one
listing of a gallery definition's versions for the many builds that published to it with
automatic versioning (matched by their goldsmith.build artifact tag), one run-output read for
any other build.

The reconciler re-drives builds whose job was lost: pending or submitting builds with no
live lease and no queued job are enqueued again (Redis can be flushed at any time). A lease
whose submit job no longer runs on a live RQ worker (its work-horse was killed, or the worker
stopped heartbeating) is released first, so such a build resumes at the next reconcile rather
than when BUILD_LEASE_SECONDS run out. A lost
cancel is re-driven by the sweep: a canceling build that Azure still reports as running
gets its cancel sent again (asking twice is harmless).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from builds import azure, compose, lifecycle, queue, rollouts
from builds.models import Build

log = logging.getLogger(__name__)
State = Build.State
SWEEP_LOCK = "builds:sweep-lock"
SWEEP_LAST = "builds:sweep-last"
OUTPUTS_PER_SWEEP = 100  # per-build run-output reads per sweep at most
ENDED_PER_SWEEP = 1000  # ended builds whose outputs one sweep records at most
VERSION_PAGES = "builds:version-pages:{}"  # pages the last listing of a gallery definition took


@dataclass
class SweepReport:
    groups: int = 0
    builds: int = 0
    changed: int = 0
    reads: int = 0  # for outputs: run-output reads and gallery version pages
    skipped_groups: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def sweep() -> SweepReport:
    """One pass over every active build. Safe to run concurrently (a lock makes extra runs no-ops)."""
    report = SweepReport()
    if not cache.add(SWEEP_LOCK, "1", timeout=300):
        report.skipped_groups.append("another sweep is running")
        return report
    try:
        _sweep(report)
        cache.set(SWEEP_LAST, time.time(), timeout=None)
        # Rollouts waiting on the builds just moved advance now, not a reconcile later.
        rollouts.reconcile()
    finally:
        cache.delete(SWEEP_LOCK)
    return report


def _sweep(report: SweepReport) -> None:
    groups = (Build.objects.filter(state__in=(State.RUNNING, State.CANCELING))
              .order_by().values_list("subscription_id", "resource_group").distinct())
    for subscription, resource_group in groups:
        report.groups += 1
        if azure.gate_remaining(subscription) > 0:
            report.skipped_groups.append(f"{subscription}/{resource_group} (throttled)")
            continue
        try:
            statuses = {}
            for status in azure.templates_status(subscription, resource_group):
                statuses[status.name.lower()] = status
        except azure.AzureError as error:
            report.errors.append(f"{resource_group}: {error.code}")
            log.warning("sweep of %s/%s failed: %s", subscription, resource_group, error)
            continue
        _apply(report, statuses, Build.objects.filter(subscription_id=subscription, resource_group=resource_group,
                                                      state__in=(State.RUNNING, State.CANCELING)))
    _finish(report)


def _apply(report: SweepReport, statuses: dict[str, azure.TemplateStatus], active) -> None:
    """Apply one listing to the group's builds: unchanged builds cost one bulk UPDATE between
    them, changed ones a transition each, all committed together (one commit per sweep, not
    one per build, which matters when a thousand builds move at once)."""
    seen: list[int] = []
    with transaction.atomic():
        for build in active.iterator():
            report.builds += 1
            status = statuses.get(build.template_name.lower())
            if status is None:
                updated = lifecycle.missing(build)
            elif lifecycle.status_changes(build, status):
                updated = lifecycle.apply_status(build, status)
            else:
                seen.append(build.pk)
                lifecycle.report_stuck_canceling(build)
                continue
            if (updated.state, updated.sub_state) != (build.state, build.sub_state):
                report.changed += 1
            lifecycle.report_stuck_canceling(updated)
        Build.objects.filter(pk__in=seen).update(last_seen_at=timezone.now())


def _finish(report: SweepReport) -> None:
    """Outputs of builds that just ended, then template clean-up that is due."""
    ended = list(Build.objects.filter(state__in=Build.TERMINAL, outputs_collected=False)
                 .order_by("finished_at")[:ENDED_PER_SWEEP])
    known = _list_versions(report, ended)
    # Per-build reads are bounded, so a thousand builds ending together do not make one sweep
    # outlast its period; the rest are read by the next sweeps.
    per_build = 0
    for build in ended:
        if per_build >= OUTPUTS_PER_SWEEP:
            break
        if azure.gate_remaining(build.subscription_id) > 0:
            continue
        try:
            per_build += lifecycle.collect_outputs(build, known)
        except azure.AzureError as error:
            per_build += 1
            report.errors.append(f"outputs of {build.uuid}: {error.code}")
    report.reads += per_build
    due = Build.objects.filter(state__in=Build.TERMINAL, template_deleted_at__isnull=True,
                               outputs_collected=True, cleanup_error="")
    for build in due.iterator():
        if lifecycle.cleanup_due(build):
            queue.enqueue_cleanup(build)


def _list_versions(report: SweepReport, ended: list[Build]) -> lifecycle.KnownVersions:
    """List once the gallery definitions that several just-succeeded builds published to with
    automatic versioning, so their versions are matched by tag rather than read build by build.

    A definition is listed only when it costs fewer reads than the builds waiting for it: its
    page count is remembered from the last listing (one page until then), so a lone build, or a
    definition with thousands of versions and few builds waiting, keeps its per-build read.
    """
    waiting: Counter[str] = Counter()
    spelled: dict[str, str] = {}
    for build in ended:
        if build.state == State.SUCCEEDED and build.run_started:
            for definition in set(lifecycle.auto_versioned_definitions(build)):
                waiting[definition.lower()] += 1
                spelled[definition.lower()] = definition
    known: lifecycle.KnownVersions = {}
    for definition, count in waiting.items():
        pages_key = VERSION_PAGES.format(definition)
        if count <= (cache.get(pages_key) or 1):
            continue
        try:
            listing = azure.gallery_versions_by_tag(spelled[definition], compose.TAG_BUILD)
        except azure.AzureError as error:
            report.errors.append(f"versions of {spelled[definition]}: {error.code}")
            continue
        report.reads += listing.pages
        cache.set(pages_key, listing.pages, timeout=7 * 24 * 3600)
        for build_uuid, versions in listing.by_tag.items():
            known[(definition, build_uuid)] = versions
    return known


def last_sweep_age() -> float | None:
    """Seconds since the last completed sweep (for the operator page), None if never."""
    last = cache.get(SWEEP_LAST)
    return None if last is None else max(0.0, time.time() - last)


def reconcile() -> int:
    """Enqueue a submit job for every pending/submitting build that has none; return how many."""
    now = timezone.now()
    _release_dead_leases(now)
    orphans = (Build.objects.filter(state__in=(State.PENDING, State.SUBMITTING))
               .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
               .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)))
    enqueued = 0
    for build in orphans.iterator():
        if queue.submit_job_alive(build):
            continue
        queue.enqueue_submit(build, on_commit=False)
        enqueued += 1
    rollouts.reconcile()  # rollouts whose advance job was lost (counted apart)
    return enqueued


def _release_dead_leases(now) -> int:
    """Release the leases held by submit jobs that died; return how many.

    The leases are read before the running jobs (see queue.builds_submitting_on_live_workers),
    and each is released only if unchanged since, so a lease a live job took meanwhile stays.
    """
    held = list(Build.objects.filter(state__in=(State.PENDING, State.SUBMITTING), lease_until__gte=now)
                .values_list("pk", "uuid", "lease_until"))
    if not held:
        return 0
    live = queue.builds_submitting_on_live_workers()
    released = 0
    for pk, uuid, lease_until in held:
        if str(uuid) in live:
            continue
        if Build.objects.filter(pk=pk, lease_until=lease_until).update(lease_until=None):
            log.warning("build %s: its submit job died (no live worker runs it); lease released", uuid)
            released += 1
    return released
