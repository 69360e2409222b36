"""Rollouts: every department layer rebuilt on a new gold version, in waves.

Planning (`plan_layers`, `assign_waves`, pure) takes the gold image's layers with their newest
published version: a layer whose range accepts the new gold version becomes a build item; one
whose range excludes it is listed as `needs_action`, and `rollout_prepare_draft` makes the
department a draft rebased on the new version (its range widened to accept it).

Services (`rollout_create`, `_start`, `_pause`, `_resume`, `_cancel`, `_prepare_draft`) are
keyword-only and record one audit event each in their transaction; they enqueue the advance
job on commit.

The driver (`advance`, the job `jobs.rollout_advance`) is a durable state machine:

- it claims the rollout with a conditional UPDATE (a lease, `ROLLOUT_LEASE_SECONDS`), so one
  job drives a rollout at a time;
- it requests the current wave's builds through `services.build_request`, each in the
  transaction that sets `RolloutItem.build` only while it is empty: a worker killed before
  the commit leaves neither the build nor the link, one killed after leaves both, so a retry
  never requests a second build (the OneToOne column and the conditional UPDATE guard it);
- it keeps no more builds waiting to be submitted than `BUILD_MAX_SUBMITTING` allows (the
  submit cap, shared with every other build);
- it never waits: the sweep moves the builds, and `reconcile` (called by the sweep and the
  reconciler, builds/monitor.py) enqueues an advance for every running rollout that has no
  live job, releasing the lease of a job whose worker died. So a Redis flush or a dead
  worker loses nothing.

A wave ends when each of its items has a terminal build (or a refused request); its failure
rate is failures / items. Above `max_failure_rate` the rollout stops (`stopped`, resumable);
otherwise the next wave starts in the same job. After the last wave, a rollout with a
`channel` asks for the gold version's promotion to it (a publish request: four eyes).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import statistics
import uuid as uuid_
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.dispatch import receiver
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from builds import approvals, buildlogs, preflight, queue, services, signals
from builds.models import Build, GoldImageVersion, Layer, LayerVersion, Rollout, RolloutItem, RolloutWave
from builds.services import ServiceError
from builds.validators import slug_problem
from builds.versions import Version, VersionRange, major_range
from notify import events
from portal import audit, faultpoints
from portal.access import AUDITOR, EDITOR, SECURITY, _check_need, deny, require, roles_of, scope_q
from portal.audit import Actor

log = logging.getLogger(__name__)
State = Rollout.State
WaveState = RolloutWave.State
Kind = RolloutItem.Kind
FAILED_BUILD_STATES = (Build.State.FAILED, Build.State.PARTIALLY_SUCCEEDED, Build.State.CANCELED)
DEFAULT_BUILD_MINUTES = 45.0  # the estimate when the gold image has no finished build yet


# --- Planning (pure) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedLayer:
    layer: Any
    layer_version: Any
    in_range: bool


def plan_layers(version: str, candidates: Iterable[tuple[Any, Any]]) -> tuple[list[PlannedLayer], list[PlannedLayer]]:
    """Split (layer, its newest published version) pairs into those to build on `version` and
    those whose range excludes it. Layers without a published version are left out.
    Ordered by department slug, then layer slug."""
    builds, needs_action = [], []
    for layer, layer_version in sorted(candidates, key=lambda pair: (pair[0].department.slug, pair[0].slug)):
        if layer_version is None:
            continue
        if VersionRange.parse(layer_version.accepts).allows(version):
            builds.append(PlannedLayer(layer, layer_version, True))
        else:
            needs_action.append(PlannedLayer(layer, layer_version, False))
    return builds, needs_action


def assign_waves(count: int, canary: int, wave_size: int) -> list[int]:
    """The size of each wave for `count` items: a canary wave of `canary` (when > 0), then
    waves of `wave_size`."""
    sizes = []
    if canary > 0 and count > 0:
        sizes.append(min(canary, count))
    left = count - sum(sizes)
    while left > 0:
        sizes.append(min(wave_size, left))
        left -= sizes[-1]
    return sizes


def estimate_figures(durations_minutes: Sequence[float], builds: int, waves: int) -> dict:
    """Estimated duration (waves run one after another, a wave's builds side by side) and
    build-hours, from the median of recent build durations."""
    per_build = statistics.median(durations_minutes) if durations_minutes else DEFAULT_BUILD_MINUTES
    return {"minutes_per_build": round(per_build, 1), "builds": builds, "waves": waves,
            "duration_minutes": round(per_build * waves, 1), "build_hours": round(per_build * builds / 60, 1),
            "from_builds": len(durations_minutes)}


# --- Reads for planning ---------------------------------------------------------------------------


def dependents(gold_version: GoldImageVersion) -> list[tuple[Layer, LayerVersion | None]]:
    """Every layer on the gold image with its newest published version (None if it has none)."""
    layers = list(Layer.objects.filter(gold_image_id=gold_version.gold_image_id).select_related("department"))
    newest: dict[int, LayerVersion] = {}
    for layer_version in (LayerVersion.objects.filter(layer__in=layers, status=LayerVersion.Status.PUBLISHED)
                          .order_by("layer_id", "-major", "-minor", "-patch")):
        newest.setdefault(layer_version.layer_id, layer_version)
    return [(layer, newest.get(layer.pk)) for layer in layers]


def recent_durations(gold_version: GoldImageVersion, limit: int = 50) -> list[float]:
    """Minutes from request to end of the gold image's recent successful builds."""
    rows = (Build.objects.filter(gold_version__gold_image_id=gold_version.gold_image_id,
                                 state=Build.State.SUCCEEDED, finished_at__isnull=False)
            .order_by("-finished_at").values_list("created_at", "finished_at")[:limit])
    return [(finished - created).total_seconds() / 60 for created, finished in rows]


@dataclass
class Plan:
    gold_version: GoldImageVersion
    builds: list[PlannedLayer]
    needs_action: list[PlannedLayer]
    waves: list[list[PlannedLayer]]
    estimate: dict
    channels: list[str] = field(default_factory=list)


def rollout_plan(*, gold_version: GoldImageVersion, canary_size: int = 1, wave_size: int = 10) -> Plan:
    """What a rollout of the gold version would do (nothing is written)."""
    builds, needs_action = plan_layers(gold_version.version, dependents(gold_version))
    sizes = assign_waves(len(builds), canary_size, wave_size)
    waves, start = [], 0
    for size in sizes:
        waves.append(builds[start:start + size])
        start += size
    channels = list(gold_version.gold_image.channels.values_list("name", flat=True))
    return Plan(gold_version, builds, needs_action, waves,
                estimate_figures(recent_durations(gold_version), len(builds), len(waves)), channels)


# --- Services --------------------------------------------------------------------------------------


def _require_security(actor: Actor) -> None:
    if isinstance(actor, str):
        return  # the system (the scheduler's patch runs) and tests' "system"
    if not roles_of(actor).security:
        raise approvals.NotAllowed("Only the security team starts, pauses, resumes or cancels rollouts.")


def _changes(rollout: Rollout, before: str) -> dict:
    return {"state": [before, rollout.state]}


@transaction.atomic
def rollout_create(*, actor: Actor, gold_version: GoldImageVersion, canary_size: int = 1, wave_size: int = 10,
                   max_failure_rate: float = 0.2, channel: str = "", trigger: str = "") -> Rollout:
    """A planned rollout of the gold version: its waves and items written, nothing requested.

    Raises NotAllowed (not the security team) and ServiceError (a version that cannot be built,
    bad sizes, a failure rate outside 0..1)."""
    _require_security(actor)
    if not gold_version.is_buildable:
        raise ServiceError(f"{gold_version} is {gold_version.status}: only published or deprecated versions "
                           "can be rolled out.")
    if wave_size < 1 or canary_size < 0:
        raise ServiceError("The wave size must be at least 1 and the canary wave 0 or more.")
    if channel and (message := slug_problem(channel)):
        raise ServiceError(message)
    if not 0 <= max_failure_rate <= 1:
        raise ServiceError("The failure threshold is a rate between 0 and 1 (0.2 stops above 20% failures).")
    plan = rollout_plan(gold_version=gold_version, canary_size=canary_size, wave_size=wave_size)
    rollout = Rollout.objects.create(gold_version=gold_version, created_by=services._user(actor),
                                     canary_size=canary_size, wave_size=wave_size,
                                     max_failure_rate=max_failure_rate, channel=channel, estimate=plan.estimate)
    for number, members in enumerate(plan.waves, start=0 if canary_size else 1):
        wave = RolloutWave.objects.create(rollout=rollout, number=number)
        RolloutItem.objects.bulk_create(
            RolloutItem(rollout=rollout, wave=wave, layer=p.layer, layer_version=p.layer_version,
                        department=p.layer.department) for p in members)
    RolloutItem.objects.bulk_create(
        RolloutItem(rollout=rollout, kind=Kind.NEEDS_ACTION, layer=p.layer, layer_version=p.layer_version,
                    department=p.layer.department) for p in plan.needs_action)
    audit.record("rollout.create", actor=actor, obj=rollout, changes={
        "gold_version": [None, str(gold_version)], "builds": [None, len(plan.builds)],
        "needs_action": [None, [str(p.layer_version) for p in plan.needs_action]],
        "waves": [None, len(plan.waves)], "max_failure_rate": [None, max_failure_rate],
        **({"channel": [None, channel]} if channel else {}), **({"trigger": [None, trigger]} if trigger else {})})
    return rollout


POLICY_ACTOR = "policy"  # automatic rollouts started for somebody outside the security team


@receiver(signals.version_released)
def rollout_on_release(sender: Any, *, gold_version: GoldImageVersion, channel: str, actor: Actor,
                       **kwargs: Any) -> Rollout | None:
    """The rollout the policy asks for when a gold version is published (`rollout_on_publish`)
    or promoted to a channel (`rollout_on_promote`): "plan" writes a planned rollout, "start"
    starts it too; empty does nothing. Runs inside the publishing (or promoting)
    transaction, so the rollout exists exactly when the release does. Nothing is planned for a
    version without dependent layers or one that has a rollout already (a rollout's own
    promotion does not plan another). A refusal is logged and never undoes the release."""
    rules = preflight.policy_rules()
    rule, trigger = ((rules.rollout_on_promote, f"promoted to {channel}") if channel
                     else (rules.rollout_on_publish, "published"))
    if rule not in ("plan", "start"):
        return None
    if gold_version.rollouts.exclude(state__in=(State.CANCELED, State.FAILED)).exists():
        return None
    if not dependents(gold_version):
        return None
    by = actor if not isinstance(actor, str) and roles_of(actor).security else POLICY_ACTOR
    try:
        rollout = rollout_create(actor=by, gold_version=gold_version, trigger=f"policy: {trigger}")
        if rule == "start":
            rollout = rollout_start(actor=by, rollout=rollout)
    except (ServiceError, approvals.NotAllowed) as exc:
        log.warning("the policy's rollout of %s was not %s: %s", gold_version, "started" if rule == "start" else
                    "planned", exc)
        return None
    return rollout


def _locked(rollout: Rollout) -> Rollout:
    return Rollout.objects.select_for_update().select_related("gold_version__gold_image").get(pk=rollout.pk)


def _event_data(rollout: Rollout, **extra: Any) -> dict:
    return {"id": str(rollout.uuid), "gold_image": rollout.gold_version.gold_image.slug,
            "version": rollout.gold_version.version, "state": rollout.state, **extra}


def _emit(type_: str, rollout: Rollout, **extra: Any) -> None:
    events.emit(type_, object_type="rollout", object_id=rollout.uuid, data=_event_data(rollout, **extra),
                link=f"/rollouts/{rollout.uuid}/", subjects={"requested_by": [rollout.created_by_id]})


@transaction.atomic
def rollout_start(*, actor: Actor, rollout: Rollout) -> Rollout:
    """planned -> running; the first wave is requested by the advance job. Raises ServiceError
    unless the rollout is planned."""
    _require_security(actor)
    rollout = _locked(rollout)
    if rollout.state != State.PLANNED:
        raise ServiceError(f"The rollout is {rollout.get_state_display().lower()}; only a planned rollout starts.")
    rollout.state, rollout.started_at = State.RUNNING, timezone.now()
    rollout.save(update_fields=["state", "started_at"])
    audit.record("rollout.start", actor=actor, obj=rollout, changes=_changes(rollout, State.PLANNED))
    _emit("rollout.started", rollout, waves=rollout.waves.count())
    queue.enqueue_rollout(rollout)
    return rollout


@transaction.atomic
def rollout_pause(*, actor: Actor, rollout: Rollout) -> Rollout:
    """running -> paused: no new build is requested; builds already requested carry on."""
    _require_security(actor)
    rollout = _locked(rollout)
    if rollout.state != State.RUNNING:
        raise ServiceError(f"The rollout is {rollout.get_state_display().lower()}; only a running rollout pauses.")
    rollout.state = State.PAUSED
    rollout.save(update_fields=["state"])
    audit.record("rollout.pause", actor=actor, obj=rollout, changes=_changes(rollout, State.RUNNING))
    return rollout


@transaction.atomic
def rollout_resume(*, actor: Actor, rollout: Rollout, retry_failed: bool = True) -> Rollout:
    """paused or stopped (or planned) -> running.

    For a rollout stopped at its threshold, `retry_failed` gives each failed item of the
    stopped wave a new attempt on its layer's newest published version accepting the gold
    version (the fix the department published), and the wave runs again; without it, the
    rollout moves on to the next wave and the failures stay."""
    _require_security(actor)
    rollout = _locked(rollout)
    before = rollout.state
    if before not in (State.PAUSED, State.STOPPED, State.PLANNED):
        raise ServiceError(f"The rollout is {rollout.get_state_display().lower()}; it cannot be resumed.")
    retried: list[str] = []
    if before == State.STOPPED:
        wave = rollout.waves.filter(state=WaveState.FAILED).order_by("-number").first()
        if wave is not None and retry_failed:
            retried = _retry_failed(rollout, wave)
            RolloutWave.objects.filter(pk=wave.pk).update(state=WaveState.RUNNING, failure_rate=None,
                                                          finished_at=None)
    rollout.state, rollout.stop_reason = State.RUNNING, ""
    rollout.started_at = rollout.started_at or timezone.now()
    rollout.save(update_fields=["state", "stop_reason", "started_at"])
    changes = _changes(rollout, before)
    if retried:
        changes["retried"] = [None, retried]
    audit.record("rollout.resume", actor=actor, obj=rollout, changes=changes)
    if before == State.PLANNED:
        _emit("rollout.started", rollout, waves=rollout.waves.count())
    queue.enqueue_rollout(rollout)
    return rollout


def _retry_failed(rollout: Rollout, wave: RolloutWave) -> list[str]:
    retried = []
    for item in _current_items(wave):
        if not _failed(item):
            continue
        newest = _newest_accepting(item.layer, rollout.gold_version.version) or item.layer_version
        RolloutItem.objects.create(rollout=rollout, wave=wave, layer=item.layer, layer_version=newest,
                                   department=item.department, attempt=item.attempt + 1)
        retried.append(f"{item.department.slug}/{item.layer.slug}@{newest.version}")
    return retried


def _newest_accepting(layer: Layer, version: str) -> LayerVersion | None:
    published = layer.versions.filter(status=LayerVersion.Status.PUBLISHED).order_by("-major", "-minor", "-patch")
    return next((lv for lv in published if VersionRange.parse(lv.accepts).allows(version)), None)


@transaction.atomic
def rollout_cancel(*, actor: Actor, rollout: Rollout) -> Rollout:
    """Any unfinished rollout -> canceled: its waiting waves are canceled and its active builds
    asked to cancel (each build's own build.cancel event)."""
    _require_security(actor)
    rollout = _locked(rollout)
    if rollout.is_terminal:
        raise ServiceError(f"The rollout has already {rollout.get_state_display().lower()}.")
    before = rollout.state
    rollout.state, rollout.finished_at = State.CANCELED, timezone.now()
    rollout.save(update_fields=["state", "finished_at"])
    rollout.waves.filter(state__in=(WaveState.PENDING, WaveState.RUNNING)).update(
        state=WaveState.CANCELED, finished_at=rollout.finished_at)
    audit.record("rollout.cancel", actor=actor, obj=rollout, changes=_changes(rollout, before))
    for build in Build.objects.filter(rollout_item__rollout=rollout, state__in=Build.ACTIVE):
        services.build_cancel(actor=actor, build=build)
    _emit("rollout.finished", rollout)
    return rollout


def next_draft_version(layer: Layer) -> str:
    """The next minor version above every version of the layer."""
    found = max((Version(*v) for v in layer.versions.values_list("major", "minor", "patch")), default=None)
    return "1.0.0" if found is None else f"{found.major}.{found.minor + 1}.0"


def rollout_prepare_draft(*, actor: Actor, item: RolloutItem) -> LayerVersion:
    """One click for a layer whose range excludes the rollout's gold version: a draft layer
    version based on its newest published one, its range widened to accept the new version,
    for the department to review and publish. One audit event (layer_version.create).
    Raises NotAllowed (neither the security team nor the department's editors), ServiceError."""
    if not isinstance(actor, str):
        roles = roles_of(actor)
        if not (roles.security or roles.edits(item.department_id)):
            raise approvals.NotAllowed("Only the department's editors or the security team prepare its draft.")
    with transaction.atomic():
        item = RolloutItem.objects.select_for_update().select_related(
            "layer_version", "layer", "rollout__gold_version").get(pk=item.pk)
        if item.kind != Kind.NEEDS_ACTION:
            raise ServiceError("Only a layer whose range excludes the gold version needs a draft.")
        if item.draft_id:
            return item.draft
        gold = Version.parse(item.rollout.gold_version.version)
        accepts = f"{item.layer_version.accepts} || {major_range(gold)}"
        draft = services.layer_version_create(
            actor=actor, layer=item.layer, version=next_draft_version(item.layer), based_on=item.layer_version,
            accepts=accepts,
            changelog=f"Rebased on {item.rollout.gold_version} for rollout {item.rollout.uuid}.")
        RolloutItem.objects.filter(pk=item.pk).update(draft=draft)
        return draft


# --- The driver ------------------------------------------------------------------------------------


@dataclass
class Progress:
    requested: int = 0
    waves_done: int = 0
    state: str = ""


def _claim(rollout_id: int) -> bool:
    now = timezone.now()
    return Rollout.objects.filter(pk=rollout_id, state=State.RUNNING).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)).update(
        lease_until=now + dt.timedelta(seconds=settings.ROLLOUT_LEASE_SECONDS), advances=F("advances") + 1) == 1


def _renew(rollout_id: int) -> None:
    Rollout.objects.filter(pk=rollout_id).update(
        lease_until=timezone.now() + dt.timedelta(seconds=settings.ROLLOUT_LEASE_SECONDS))


def advance(rollout_id: int) -> Progress:
    """Move a running rollout as far as it can go now; never waits. Returns what it did."""
    progress = Progress()
    if not _claim(rollout_id):
        return progress
    try:
        faultpoints.reached("rollout.claimed")
        while True:
            rollout = Rollout.objects.select_related("gold_version__gold_image", "created_by").get(pk=rollout_id)
            if rollout.state != State.RUNNING:
                break
            wave = rollout.waves.filter(state__in=(WaveState.PENDING, WaveState.RUNNING)).order_by("number").first()
            if wave is None:
                _finish(rollout)
                break
            if wave.state == WaveState.PENDING:
                RolloutWave.objects.filter(pk=wave.pk, state=WaveState.PENDING).update(
                    state=WaveState.RUNNING, started_at=timezone.now())
            progress.requested += _request_wave(rollout, wave)
            if not _end_wave(rollout, wave):
                break
            progress.waves_done += 1
    finally:
        Rollout.objects.filter(pk=rollout_id).update(lease_until=None)
    progress.state = Rollout.objects.filter(pk=rollout_id).values_list("state", flat=True).first() or ""
    return progress


def _room() -> int:
    """Builds the submit cap still allows to wait for submission (shared with every build)."""
    waiting = Build.objects.filter(state__in=(Build.State.PENDING, Build.State.SUBMITTING)).count()
    return max(0, settings.BUILD_MAX_SUBMITTING - waiting)


def _request_wave(rollout: Rollout, wave: RolloutWave) -> int:
    requested = 0
    todo = list(wave.items.filter(kind=Kind.BUILD, build__isnull=True, error="")
                .select_related("layer_version__layer__gold_image", "department").order_by("pk"))
    for item in todo:
        if _room() <= 0:
            break
        if Rollout.objects.filter(pk=rollout.pk).values_list("state", flat=True).first() != State.RUNNING:
            break  # paused or canceled meanwhile
        requested += _request(rollout, item)
        faultpoints.reached("rollout.requested")
        _renew(rollout.pk)
    return requested


class _AlreadyRequested(Exception):
    pass


def _request(rollout: Rollout, item: RolloutItem) -> int:
    """Request the item's build and record it on the item, in one transaction; 1 if done."""
    try:
        with transaction.atomic():
            try:
                build = services.build_request(actor=rollout.created_by, gold_version=rollout.gold_version,
                                               layer_versions=[item.layer_version], department=item.department)
            except ServiceError as error:
                detail = "; ".join(p.message for p in getattr(error, "problems", [])[:3])
                RolloutItem.objects.filter(pk=item.pk, build__isnull=True, error="").update(
                    error=f"{error}{' ' + detail if detail else ''}"[:2000])
                return 0
            if not RolloutItem.objects.filter(pk=item.pk, build__isnull=True, error="").update(build=build):
                raise _AlreadyRequested
            return 1
    except _AlreadyRequested:
        return 0


def _current_items(wave: RolloutWave) -> list[RolloutItem]:
    """The newest attempt of each layer in the wave."""
    newest: dict[int, RolloutItem] = {}
    for item in (wave.items.filter(kind=Kind.BUILD).select_related("build", "layer", "department", "layer_version")
                 .order_by("layer_id", "attempt")):
        newest[item.layer_id] = item
    return list(newest.values())


def _failed(item: RolloutItem) -> bool:
    return bool(item.error) or (item.build is not None and item.build.state in FAILED_BUILD_STATES)


def _ended(item: RolloutItem) -> bool:
    return bool(item.error) or (item.build is not None and item.build.is_terminal)


@transaction.atomic
def _end_wave(rollout: Rollout, wave: RolloutWave) -> bool:
    """Close the wave when every item ended; stop the rollout above the threshold. Returns
    whether the rollout may go on to the next wave."""
    items = _current_items(wave)
    if not all(_ended(item) for item in items):
        return False
    failures = sum(1 for item in items if _failed(item))
    rate = failures / len(items) if items else 0.0
    over = rate > rollout.max_failure_rate
    closed = RolloutWave.objects.filter(pk=wave.pk, state=WaveState.RUNNING).update(
        state=WaveState.FAILED if over else WaveState.SUCCEEDED, failure_rate=rate, finished_at=timezone.now())
    if not closed:
        return False
    label = "canary" if wave.number == 0 else f"wave {wave.number}"
    waves = rollout.waves.count()
    changes = {"wave": [None, label], "failure_rate": [None, round(rate, 3)], "failures": [None, failures],
               "builds": [None, len(items)]}
    if over:
        rollout.state = State.STOPPED
        rollout.stop_reason = (f"{failures} of {len(items)} builds of the {label} failed ({rate:.0%}), above the "
                               f"threshold of {rollout.max_failure_rate:.0%}.")
        rollout.save(update_fields=["state", "stop_reason"])
        changes["state"] = [State.RUNNING, State.STOPPED]
    audit.record("rollout.wave_done", actor=audit.worker_actor(), obj=rollout, changes=changes,
                 outcome="failure" if over else "success")
    _emit("rollout.wave_done", rollout, wave=wave.number, waves=waves)
    if over:
        _emit("rollout.stopped", rollout, wave=wave.number, waves=waves, reason=rollout.stop_reason)
    return not over


@transaction.atomic
def _finish(rollout: Rollout) -> None:
    """Every wave ended within the threshold: succeeded; ask for the channel's promotion."""
    if not Rollout.objects.filter(pk=rollout.pk, state=State.RUNNING).update(
            state=State.SUCCEEDED, finished_at=timezone.now()):
        return
    rollout.state = State.SUCCEEDED
    changes: dict = {"state": [State.RUNNING, State.SUCCEEDED]}
    audit.record("rollout.finish", actor=audit.worker_actor(), obj=rollout, changes=changes)
    if rollout.channel:
        _request_promotion(rollout)
    _emit("rollout.finished", rollout, waves=rollout.waves.count())


def _request_promotion(rollout: Rollout) -> None:
    """The promotion of the gold version to the rollout's channel, as a publish request by the
    rollout's author (four eyes: somebody else approves). A refusal is noted, not raised."""
    try:
        with transaction.atomic():
            request = approvals.promotion_request_create(
                actor=rollout.created_by, gold_version=rollout.gold_version, channel=rollout.channel,
                comment=f"Rollout {rollout.uuid} rebuilt every dependent layer.")
        Rollout.objects.filter(pk=rollout.pk).update(promotion_request=request)
    except ServiceError as error:
        Rollout.objects.filter(pk=rollout.pk).update(stop_reason=f"Promotion to {rollout.channel} not requested: "
                                                                 f"{error}")


def reconcile() -> int:
    """Release leases of advance jobs that died, then enqueue an advance for every running
    rollout without a live job; returns how many were enqueued. Called by the sweep and the
    reconciler, so a rollout moves within one sweep of its builds' ends."""
    now = timezone.now()
    held = list(Rollout.objects.filter(state=State.RUNNING, lease_until__gte=now)
                .values_list("pk", "uuid", "lease_until"))
    if held:
        live = queue.rollouts_advancing_on_live_workers()
        for pk, uuid, lease_until in held:
            if str(uuid) not in live and Rollout.objects.filter(pk=pk, lease_until=lease_until).update(
                    lease_until=None):
                log.warning("rollout %s: its advance job died; lease released", uuid)
    enqueued = 0
    for rollout in Rollout.objects.filter(state=State.RUNNING).filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=now)):
        if not queue.rollout_job_alive(rollout):
            queue.enqueue_rollout(rollout, on_commit=False)
            enqueued += 1
    return enqueued


def item_state(item: RolloutItem) -> str:
    """What an item shows: its build's state, `refused` or `waiting`."""
    if item.kind == Kind.NEEDS_ACTION:
        return "needs_action"
    if item.error:
        return "refused"
    return item.build.state if item.build_id else "waiting"


def time_left_minutes(rollout: Rollout) -> float | None:
    """Rough minutes left: waves not yet ended times the per-build estimate."""
    if rollout.is_terminal:
        return 0.0
    per_build = (rollout.estimate or {}).get("minutes_per_build") or DEFAULT_BUILD_MINUTES
    left = rollout.waves.filter(state__in=(WaveState.PENDING, WaveState.RUNNING)).count()
    return math.ceil(per_build * left)


# --- Reads (pages, the API, showrollout) -------------------------------------------------------------


def visible(user: Any) -> QuerySet[Rollout]:
    """Rollouts the user may see: all for the security team and auditors; for editors, those
    with an entry of one of their departments (they see only those entries, `describe`)."""
    roles = roles_of(user)
    queryset = Rollout.objects.select_related("gold_version__gold_image", "created_by")
    if roles.security or roles.auditor:
        return queryset
    if roles.editor:
        mine = RolloutItem.objects.filter(rollout=OuterRef("pk"), department_id__in=roles.editor_departments)
        return queryset.filter(Exists(mine))
    return queryset.none()


def get_rollout(user: Any, rollout_id: Any, need: str = "view") -> Rollout:
    """The rollout with that uuid. Http404 when missing, malformed or out of sight;
    PermissionDenied when seen but `need` is "change" and the user is not the security team."""
    _check_need(need)
    roles = require(user, SECURITY, EDITOR, AUDITOR)
    try:
        parsed = uuid_.UUID(str(rollout_id))
    except ValueError:
        raise Http404("No such rollout.") from None
    found = visible(user).filter(uuid=parsed).first()
    if found is None:
        raise Http404("No such rollout.")
    if need != "view" and not roles.security:
        deny(user, f"may not {need} this rollout", obj=found)
    return found


def entries(rollout: Rollout, user: Any = None) -> QuerySet[RolloutItem]:
    """The rollout's items the user may see (every item without a user)."""
    queryset = (rollout.items.select_related("build", "layer", "layer_version", "department", "wave", "draft")
                .order_by("wave__number", "department__slug", "layer__slug", "attempt"))
    return queryset if user is None else queryset.filter(scope_q(user, "department"))


def _failure(item: RolloutItem) -> dict | None:
    if item.error:
        return {"code": "refused", "message": item.error, "failed_step": None}
    build = item.build
    if build is None or build.state not in FAILED_BUILD_STATES:
        return None
    # The build page's reading (validation.log's step when a validator failed): the kept copy
    # once the template is cleaned up, the live log before that (read once, then cached), so a
    # wave that stops shows its failing steps at once rather than when the logs are kept.
    step = buildlogs.failed_step_data(build) if build.state != Build.State.CANCELED else None
    return {"code": build.error_code, "message": build.error_message[:500], "failed_step": step}


def describe(rollout: Rollout, user: Any = None) -> dict:
    """The rollout as one JSON-ready dict: waves with their builds, and the layers that need a
    new version (with the draft prepared for them). Editors see only their departments' entries."""
    waves: dict[int, dict] = {}
    for wave in rollout.waves.order_by("number"):
        waves[wave.pk] = {"number": wave.number, "name": str(wave), "state": wave.state,
                          "failure_rate": wave.failure_rate,
                          "started_at": wave.started_at.isoformat() if wave.started_at else None,
                          "finished_at": wave.finished_at.isoformat() if wave.finished_at else None, "builds": []}
    needs_action = []
    for item in entries(rollout, user):
        layer = f"{item.department.slug}/{item.layer.slug}@{item.layer_version.version}"
        if item.kind == Kind.NEEDS_ACTION:
            needs_action.append({"item": item.pk, "layer": layer, "accepts": item.layer_version.accepts,
                                 "draft": (f"{item.department.slug}/{item.layer.slug}@{item.draft.version}"
                                           if item.draft_id else None),
                                 "draft_status": item.draft.status if item.draft_id else None,
                                 "draft_link": reverse("builds:layer-version", args=[
                                     item.department.slug, item.layer.slug, item.draft.version]) if item.draft_id
                                 else None})
            continue
        waves[item.wave_id]["builds"].append({
            "id": str(item.build.uuid) if item.build_id else None, "layer": layer, "state": item_state(item),
            "attempt": item.attempt, "sub_state": item.build.sub_state if item.build_id else "",
            "failure": _failure(item)})
    return {
        "id": str(rollout.uuid), "state": rollout.state, "gold_image": rollout.gold_version.gold_image.slug,
        "version": rollout.gold_version.version, "created_by": rollout.created_by.get_username(),
        "created_at": rollout.created_at.isoformat(),
        "started_at": rollout.started_at.isoformat() if rollout.started_at else None,
        "finished_at": rollout.finished_at.isoformat() if rollout.finished_at else None,
        "canary_size": rollout.canary_size, "wave_size": rollout.wave_size,
        "max_failure_rate": rollout.max_failure_rate, "channel": rollout.channel,
        "promotion_request": str(rollout.promotion_request.uuid) if rollout.promotion_request_id else None,
        "stop_reason": rollout.stop_reason, "estimate": rollout.estimate,
        "time_left_minutes": time_left_minutes(rollout),
        "waves": list(waves.values()), "needs_action": needs_action,
    }
