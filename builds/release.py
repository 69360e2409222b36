"""The release fan-out: a gold version's deprecation, revocation, promotion to `production` or
demotion from it, applied to every gallery image version built from it.

`plan` (called by the service that changes the version or the channel, in its transaction)
writes one ReleaseStep row per gallery image version and enqueues the fan-out job when the
transaction commits. `apply` (the job, through builds/jobs.py) works through the pending rows.

Idempotency: each step reads the version first (one GET with $expand=ReplicationStatus) and
sends its PATCH only when Azure does not already show the wanted publishing profile, then
marks the row done with the read-back. A worker killed after the PATCH and before the row is
marked finds the change made on the next read and marks it done without a second PATCH; a
worker killed anywhere else resumes at the first pending row. Job ids derive from the gold
version, the action and the round, so enqueuing twice runs one job, and `reconcile` (from the
scheduler's reconcile) re-enqueues a fan-out whose job was lost with its worker or Redis.

What each action wants of every gallery image version:

| action | excludeFromLatest | endOfLifeDate |
| --- | --- | --- |
| deprecate | unchanged | deprecation time + RELEASE_DEPRECATION_EOL_DAYS |
| revoke | true | revocation time |
| promote (into production) | false | unchanged |
| demote (out of production) | true | unchanged |

Deletion (policy `delete_revoked_after_days`, after a second person's approval of a publish
request of kind `deletion`, builds/approvals.py) is a fan-out too: each `delete` step reads the
version first (gone: done, nothing sent; `Deleting`: wait), sends one DELETE without waiting for
the operation, marks the row `patched`, and reads back on later runs (the job schedules itself
every DELETE_POLL_SECONDS while a version is still `Deleting`) until the version is gone; then
the row is done, its ArtifactState gets `deleted_at`, and one `artifact.delete` event names the
resource id. A worker killed after the DELETE finds the version `Deleting` or gone and never
sends a second one. `deletions_due` (the scheduler's daily job) writes the requests.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from builds import azure, queue
from builds.models import ArtifactState, Build, BuildOutput, Channel, GoldImage, GoldImageVersion, ReleaseStep
from portal import audit, faultpoints
from portal.access import roles_of
from portal.audit import Actor

log = logging.getLogger(__name__)

Action = ReleaseStep.Action
# Steps that fail transiently this many times in a row are marked failed (shown on the page).
MAX_ATTEMPTS = 8
# How soon a delete fan-out reads again a version Azure still shows as Deleting.
DELETE_POLL_SECONDS = 5.0
_GALLERY_VERSION = "/galleries/"


@dataclass(frozen=True)
class Wanted:
    exclude_from_latest: bool | None
    end_of_life: dt.datetime | None


def artifacts(gold_version: GoldImageVersion) -> QuerySet[BuildOutput]:
    """The gallery image versions built from the gold version (whatever the layers)."""
    return (BuildOutput.objects.filter(build__gold_version=gold_version, artifact_id__icontains="/versions/")
            .filter(artifact_id__icontains=_GALLERY_VERSION)
            .exclude(build__state__in=(Build.State.FAILED, Build.State.CANCELED)).order_by("pk"))


def excluded_until_promoted(gold_version: GoldImageVersion) -> bool:
    """Whether a build of the version publishes its gallery image versions with
    excludeFromLatest true: the gold image has a `production` channel (the first promotion
    request creates it) and the channel does not point at this version. A gold image that never
    used channels keeps the template's own value (nothing changes for it); promotion into
    production flips the versions' flag (`plan(..., Action.PROMOTE)`)."""
    production = Channel.objects.filter(gold_image_id=gold_version.gold_image_id, name=Channel.PRODUCTION).first()
    return production is not None and production.gold_version_id != gold_version.pk


def plan(*, gold_version: GoldImageVersion, action: str) -> int:
    """Write the steps of `action` for every gallery artifact of the version and enqueue the job
    on commit. Returns how many steps were written. Call it inside the changing transaction."""
    last = (ReleaseStep.objects.filter(gold_version=gold_version, action=action)
            .aggregate(last=Max("round"))["last"] or 0)
    if last and action in (Action.DEPRECATE, Action.REVOKE, Action.DELETE):
        return 0  # they happen once in a version's life
    round_ = last + 1
    outputs = list(artifacts(gold_version))
    if action == Action.DELETE:
        outputs = [output for output in outputs if not _deleted(output)]
    # The latest intent wins: a pending promotion or demotion of the same versions would undo it.
    ReleaseStep.objects.filter(output__in=outputs, action__in=(Action.PROMOTE, Action.DEMOTE),
                               state=ReleaseStep.State.PENDING).update(
        state=ReleaseStep.State.DONE, error=f"superseded by {action}", done_at=timezone.now())
    rows = [ReleaseStep(gold_version=gold_version, action=action, round=round_, output=output) for output in outputs]
    ReleaseStep.objects.bulk_create(rows)
    if rows:
        queue.enqueue_release(gold_version, action, round_)
    return len(rows)


def _deleted(output: BuildOutput) -> bool:
    return ArtifactState.objects.filter(output=output, deleted_at__isnull=False).exists()


def wanted(step: ReleaseStep) -> Wanted:
    version = step.gold_version
    if step.action == Action.DEPRECATE:
        days = settings.RELEASE_DEPRECATION_EOL_DAYS
        return Wanted(None, (version.deprecated_at or step.created_at) + dt.timedelta(days=days))
    if step.action == Action.REVOKE:
        return Wanted(True, version.revoked_at or step.created_at)
    return Wanted(step.action == Action.DEMOTE, None)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _same_time(text: str, when: dt.datetime) -> bool:
    if not text:
        return False
    try:
        seen = dt.datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00")))
    except ValueError:
        return False
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=dt.UTC)
    return abs((seen - when.replace(microsecond=0)).total_seconds()) < 1


def satisfied(state: azure.GalleryVersionState, want: Wanted) -> bool:
    if want.exclude_from_latest is not None and state.exclude_from_latest != want.exclude_from_latest:
        return False
    return want.end_of_life is None or _same_time(state.end_of_life_date, want.end_of_life)


@dataclass(frozen=True)
class Progress:
    done: int = 0
    patched: int = 0
    failed: int = 0
    retry_in: float | None = None
    deleting: int = 0  # delete steps whose version Azure still shows (Deleting)


def apply(gold_version_id: int, action: str, round_: int) -> Progress:
    """Work through the pending steps of one fan-out; returns what happened and, after a
    transient Azure error or while versions are still being deleted, when to run again (the
    rows keep the progress)."""
    if action == Action.DELETE:
        return _apply_delete(gold_version_id, round_)
    done = patched = failed = 0
    steps = (ReleaseStep.objects.filter(gold_version_id=gold_version_id, action=action, round=round_,
                                        state=ReleaseStep.State.PENDING)
             .select_related("gold_version", "output").order_by("pk"))
    for step in steps:
        want = wanted(step)
        resource_id = step.output.artifact_id
        try:
            state = azure.gallery_version_state(resource_id)
            if state is not None and not satisfied(state, want):
                azure.gallery_version_update(
                    resource_id, exclude_from_latest=want.exclude_from_latest,
                    end_of_life_date=_iso(want.end_of_life) if want.end_of_life else None)
                ReleaseStep.objects.filter(pk=step.pk).update(patched=True)
                patched += 1
                faultpoints.reached("release.patched")
                state = azure.gallery_version_state(resource_id)
        except azure.AzureError as exc:
            if _gave_up(step, exc):
                failed += 1
                continue
            return Progress(done, patched, failed, retry_in=max(exc.retry_after or 0, 5.0))
        _finish(step, state, error="" if state is not None else "The gallery image version no longer exists.")
        done += 1
    return Progress(done, patched, failed)


def _apply_delete(gold_version_id: int, round_: int) -> Progress:
    """The delete fan-out: read, DELETE once (no waiting), read back on later runs until gone."""
    done = sent = failed = deleting = 0
    steps = (ReleaseStep.objects.filter(gold_version_id=gold_version_id, action=Action.DELETE, round=round_,
                                        state=ReleaseStep.State.PENDING)
             .select_related("gold_version", "output__build").order_by("pk"))
    for step in steps:
        resource_id = step.output.artifact_id
        try:
            state = azure.gallery_version_state(resource_id)
            if state is not None and state.provisioning_state != "Deleting":
                # Not being deleted: ours was never sent, or Azure failed it (send it again, a
                # few times: each resend counts as an attempt).
                resends = step.attempts + 1 if step.patched else step.attempts
                if resends >= MAX_ATTEMPTS:
                    _finish(step, state, error="Azure did not delete the version; see its activity log.", failed=True)
                    failed += 1
                    continue
                azure.gallery_version_delete(resource_id)
                ReleaseStep.objects.filter(pk=step.pk).update(patched=True, attempts=resends)
                sent += 1
                faultpoints.reached("release.deleted")
                state = azure.gallery_version_state(resource_id)
        except azure.AzureError as exc:
            if _gave_up(step, exc):
                failed += 1
                continue
            return Progress(done, sent, failed, retry_in=max(exc.retry_after or 0, 5.0), deleting=deleting)
        if state is not None:
            deleting += 1  # read again on the next run
            continue
        _finish(step, None, error="", deleted=True)
        done += 1
    return Progress(done, sent, failed, retry_in=DELETE_POLL_SECONDS if deleting else None, deleting=deleting)


def _gave_up(step: ReleaseStep, exc: azure.AzureError) -> bool:
    """After an Azure error: fail the step when the error is permanent or its attempts are spent
    (True: go on with the next step), else count the attempt (False: the fan-out runs again later)."""
    if exc.permanent or step.attempts + 1 >= MAX_ATTEMPTS:
        _finish(step, None, error=f"{exc.code}: {exc.message}", failed=True)
        return True
    ReleaseStep.objects.filter(pk=step.pk).update(attempts=step.attempts + 1, error=f"{exc.code}: {exc}")
    return False


@transaction.atomic
def _finish(step: ReleaseStep, state: azure.GalleryVersionState | None, *, error: str, failed: bool = False,
            deleted: bool = False) -> None:
    """Mark the step done (or failed) with what Azure showed; one audit event. A version that
    no longer exists is done: nobody can use it any more."""
    claimed = ReleaseStep.objects.filter(pk=step.pk, state=ReleaseStep.State.PENDING).update(
        state=ReleaseStep.State.FAILED if failed else ReleaseStep.State.DONE, error=error, done_at=timezone.now())
    if not claimed:
        return
    now = timezone.now()
    ArtifactState.objects.update_or_create(output=step.output, defaults={
        "resource_id": step.output.artifact_id, "read_at": now, "error": error,
        **({"deleted_at": now} if deleted else {}),
        **({"exclude_from_latest": state.exclude_from_latest, "end_of_life_date": state.end_of_life_date,
            "replication": state.replication} if state is not None else {})})
    changes: dict = {"action": [None, step.action], "gold_version": [None, str(step.gold_version)]}
    if step.action == Action.DELETE:
        # The row's `patched` says whether this fan-out sent the DELETE (False: it was gone already).
        sent = ReleaseStep.objects.filter(pk=step.pk).values_list("patched", flat=True).get()
        changes.update(resource_id=[step.output.artifact_id, None] if deleted else [None, step.output.artifact_id],
                       delete_sent=[None, sent])
    if state is not None:
        changes["excludeFromLatest"] = [None, state.exclude_from_latest]
        changes["endOfLifeDate"] = [None, state.end_of_life_date or None]
    if error:
        changes["error"] = [None, error]
    action = "artifact.delete" if step.action == Action.DELETE else "artifact.release"
    audit.record(action, actor=audit.worker_actor(), obj=step.output, object_type="buildoutput",
                 object_id=str(step.output.pk), label=step.output.artifact_id,
                 department=step.output.build.department_id, changes=changes,
                 outcome="failure" if failed else "success")


def reconcile() -> int:
    """Enqueue the fan-outs that have pending steps and no live job; return how many."""
    enqueued = 0
    pending = (ReleaseStep.objects.filter(state=ReleaseStep.State.PENDING)
               .values_list("gold_version", "action", "round").distinct())
    for gold_version_id, action, round_ in pending:
        gold_version = GoldImageVersion.objects.filter(pk=gold_version_id).first()
        if gold_version is None or queue.release_job_alive(gold_version, action, round_):
            continue
        # A fresh id: the lost job's id may still name a failed job.
        job_id = f"{queue.release_job_id(gold_version, action, round_)}-r{int(time.time())}"
        queue.enqueue_release(gold_version, action, round_, on_commit=False, job_id=job_id)
        enqueued += 1
    return enqueued


def summary(gold_version: GoldImageVersion) -> dict[str, dict[str, int]]:
    """Per action, how many steps are pending, done and failed (for pages)."""
    out: dict[str, dict[str, int]] = {}
    for action, state in ReleaseStep.objects.filter(gold_version=gold_version).values_list("action", "state"):
        out.setdefault(action, {"pending": 0, "done": 0, "failed": 0})[state] += 1
    return out


# --- Reading back: what Azure says of each artifact -----------------------------------------------


def gallery_outputs(builds: QuerySet[Build]) -> QuerySet[BuildOutput]:
    """The gallery image versions the given builds produced, with their last read-back
    (`azure_state`, None when never read), newest build first. Pages pass the builds the
    viewer may see."""
    return (BuildOutput.objects.filter(build__in=builds, artifact_id__icontains="/versions/")
            .filter(artifact_id__icontains=_GALLERY_VERSION)
            .exclude(build__state__in=(Build.State.FAILED, Build.State.CANCELED))
            .select_related("azure_state", "build__gold_version").order_by("-build__created_at", "pk"))


class RefreshRefused(Exception):
    """Only the security team asks Goldsmith to read the gallery back (views answer 403)."""


@transaction.atomic
def refresh_request(*, actor: Actor, gold_image: GoldImage) -> int:
    """"Refresh from Azure": enqueue the read-back of every gallery image version built from the
    gold image (on commit) and record one `artifact.refresh` audit event. Returns how many
    versions will be read. Raises RefreshRefused for anybody but the security team."""
    if not roles_of(actor).security:
        raise RefreshRefused("Only the security team refreshes the gallery state from Azure.")
    count = gallery_outputs(Build.objects.filter(gold_version__gold_image=gold_image)).count()
    audit.record("artifact.refresh", actor=actor, obj=gold_image, changes={"gallery_versions": [None, count]})
    queue.enqueue_artifacts_refresh(gold_image)
    return count


def read_back(gold_image_id: int) -> int:
    """The refresh job: one GET per gallery image version of the gold image, each stored in its
    ArtifactState with the time it was read (an error, or "no longer exists", is stored too:
    the pages show what Azure said, never what Goldsmith assumes). Sends no write."""
    outputs = list(gallery_outputs(Build.objects.filter(gold_version__gold_image_id=gold_image_id)))
    for output in outputs:
        try:
            state = azure.gallery_version_state(output.artifact_id)
            error = "" if state is not None else "The gallery image version no longer exists."
        except azure.AzureError as exc:
            state, error = None, f"{exc.code}: {exc.message}"
        values: dict = {"resource_id": output.artifact_id, "read_at": timezone.now(), "error": error}
        if state is not None:
            values.update(exclude_from_latest=state.exclude_from_latest, end_of_life_date=state.end_of_life_date,
                          replication=state.replication)
        ArtifactState.objects.update_or_create(output=output, defaults=values)
    return len(outputs)
