"""What workers do to a build: submit it, follow it, cancel it, collect what it made, clean up.

Every step is idempotent and resumes from Azure's truth: the database says what we intended,
Image Builder says what happened, and each step reads Azure before it writes to it. A step
that dies half way (worker killed, Redis flushed, Azure throttling) is simply run again:

- submit: the template is created only when a GET says it is absent (a 409 means an earlier
  attempt created it), and the run is started only when the template has never run; so a
  build is exactly one template PUT and at most one run, however often submit is retried.
  It never waits for Azure to provision the template: the attempt that sent the PUT comes
  back after Azure's Retry-After and starts the run;
- follow (builds/monitor.py): state comes from one listing per resource group, never from
  per-build pollers;
- cancel: asking twice is harmless (OperationNotAllowed on an already canceling run is
  ignored), and a build that never reached Azure is canceled locally.

Transitions go through `transition`, which writes a BuildEvent for the timeline and, for a
change of state, one `build.state_change` audit event, in the same transaction; reaching a
terminal state also writes the build's notification (build.succeeded, build.failed, ...) to
the outbox there (notify/events.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from builds import azure, buildlogs, queue
from builds.models import Build, BuildEvent, BuildOutput
from notify import events
from portal import audit, faultpoints

log = logging.getLogger(__name__)
State = Build.State
WAITING = (State.PENDING, State.SUBMITTING)  # the builds the submit cap (BUILD_MAX_SUBMITTING) counts

# How long after the PUT (or the last look) a template still provisioning is read again when
# Azure sent no Retry-After; with one, what it says (at least 1 s).
PROVISIONING_RECHECK_SECONDS = 10
_LOG_URL = re.compile(r"https://\S+?/customization\.log")
_RUN_STATES = {
    "Running": State.RUNNING,
    "Canceling": State.CANCELING,
    "Succeeded": State.SUCCEEDED,
    "PartiallySucceeded": State.PARTIALLY_SUCCEEDED,
    "Failed": State.FAILED,
    "Canceled": State.CANCELED,
}


@dataclass(frozen=True)
class StepResult:
    """What a job should do next: nothing, or run the step again after `retry_in` seconds."""

    retry_in: float | None = None
    note: str = ""


DONE = StepResult()


def transition(build: Build, *, state: str | None = None, sub_state: str | None = None, detail: str = "",
               actor: audit.Actor = None, audited: bool = True, **fields) -> Build:
    """Move a build (locked for the update) and record the change; returns the fresh row.

    No-op (no event) when nothing changes. A terminal build never leaves its terminal state.
    audited=False: the caller's own audit event already records this change of state (a user's
    cancel), so the action stays one event.
    """
    with transaction.atomic():
        current = Build.objects.select_for_update().get(pk=build.pk)
        new_state = state if state is not None else current.state
        if current.is_terminal and new_state != current.state:
            return current
        if current.state == State.CANCELING and new_state == State.RUNNING:
            new_state = State.CANCELING  # a cancel only ends in a terminal state, whatever a stale read says
        new_sub = sub_state if sub_state is not None else current.sub_state
        if new_state in Build.TERMINAL:
            new_sub = "" if sub_state is None else sub_state
        changed = new_state != current.state or new_sub != current.sub_state
        for name, value in fields.items():
            setattr(current, name, value)
        now = timezone.now()
        if changed:
            if new_state == State.RUNNING and not current.started_at:
                current.started_at = now
            if new_state in Build.TERMINAL and not current.finished_at:
                current.finished_at = now
            BuildEvent.objects.create(build=current, at=now, from_state=current.state, to_state=new_state,
                                      from_sub_state=current.sub_state, to_sub_state=new_sub, detail=detail[:2000])
        state_changed = new_state != current.state
        before = current.state
        current.state, current.sub_state = new_state, new_sub
        current.save()
        if state_changed and audited:
            changes = {"state": [before, new_state]}
            if detail:
                changes["detail"] = [None, detail[:500]]
            audit.record("build.state_change", actor=actor or audit.worker_actor(), obj=current,
                         department=current.department_id, changes=changes)
        if state_changed and new_state in Build.TERMINAL:
            events.build_finished(current)
        if state_changed and before in WAITING and new_state not in WAITING:
            # A place under the submit cap is free: a rollout held back by it requests its next
            # build now rather than at the next sweep.
            queue.enqueue_rollouts_waiting_for_room()
        return current


# --- Submit -------------------------------------------------------------------------------------


def submit(build_id: int) -> StepResult:
    """Create the build's template (when absent) and start its run (when never run).

    Claims the build with a conditional UPDATE (a lease), so two jobs never submit the same
    build at once; returns DONE, or a StepResult asking to be run again later.
    """
    build = Build.objects.filter(pk=build_id).first()
    if build is None or build.state not in (State.PENDING, State.SUBMITTING):
        return DONE
    wait = azure.gate_remaining(build.subscription_id)
    if wait > 0:
        return _defer(build, wait, "Azure asked to wait")
    if _submitting_now() >= settings.BUILD_MAX_SUBMITTING:
        return _defer(build, 5 + random.random() * 5, "too many builds submitting at once")
    if not _claim(build):
        return DONE  # another job holds it, or it moved on
    faultpoints.reached("submit.claimed")
    build = Build.objects.get(pk=build_id)
    if build.state == State.PENDING:
        build = transition(build, state=State.SUBMITTING, detail=f"attempt {build.attempts}")
    try:
        return _submit_claimed(build)
    except azure.AzureError as error:
        return _submit_failed(build, error)


def _defer(build: Build, seconds: float, note: str) -> StepResult:
    """Try again later without claiming; next_attempt_at tells the reconciler a job is due then."""
    Build.objects.filter(pk=build.pk, lease_until__isnull=True).update(
        next_attempt_at=timezone.now() + dt.timedelta(seconds=seconds))
    return StepResult(retry_in=seconds, note=note)


def _submitting_now() -> int:
    return Build.objects.filter(state=State.SUBMITTING, lease_until__gt=timezone.now()).count()


def _claim(build: Build) -> bool:
    now = timezone.now()
    claimed = (Build.objects.filter(pk=build.pk, state__in=(State.PENDING, State.SUBMITTING))
               .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
               .update(lease_until=now + dt.timedelta(seconds=settings.BUILD_LEASE_SECONDS),
                       attempts=F("attempts") + 1, next_attempt_at=None))
    return claimed == 1


def _release(build: Build, **fields) -> None:
    Build.objects.filter(pk=build.pk).update(lease_until=None, **fields)


def _submit_claimed(build: Build) -> StepResult:
    sub, rg, name = build.subscription_id, build.resource_group, build.template_name
    if _cancel_requested(build):
        return _cancel_before_run(build)
    status = azure.template_get(sub, rg, name)
    if status is None:
        try:
            # No wait for provisioning here (tens of seconds in Azure): the worker is free for
            # other builds meanwhile, and a later attempt reads the template and starts the run.
            status = azure.template_put(sub, rg, name, build.template)
        except azure.AzureError as error:
            if error.code != "Conflict":
                raise
            status = azure.template_get(sub, rg, name)  # an earlier attempt created it meanwhile
            if status is None:
                raise
        faultpoints.reached("submit.template_created")
        transition(build, detail="template created", submitted_at=build.submitted_at or timezone.now())
    if status.provisioning_state in ("Creating", "Updating", ""):
        wait = PROVISIONING_RECHECK_SECONDS if status.retry_after is None else max(1.0, status.retry_after)
        _release(build, next_attempt_at=timezone.now() + dt.timedelta(seconds=wait))
        return StepResult(retry_in=wait, note="Azure is still provisioning the template")
    if status.provisioning_state == "Failed":
        _fail(build, status.provisioning_error_code or "ProvisioningFailed",
              status.provisioning_error_message or "Image Builder could not provision the template.")
        return DONE
    if status.provisioning_state != "Succeeded":
        _fail(build, "UnexpectedProvisioningState", f"The template is {status.provisioning_state}.")
        return DONE
    if _cancel_requested(build):
        return _cancel_before_run(build)
    faultpoints.reached("submit.provisioned")
    if not status.run_state and not build.run_started:
        try:
            operation_url = azure.template_run(sub, rg, name)
        except azure.AzureError as error:
            if error.code != "OperationNotAllowed":
                raise
            # A run already exists (an earlier attempt started it): follow it.
            operation_url = ""
        faultpoints.reached("submit.run_started")
        transition(build, state=State.RUNNING, sub_state="Queued", detail="run started", lease_until=None,
                   run_started=True, run_operation_url=operation_url)
        return DONE
    # The run exists already: hand the build to the sweep with what Azure says now.
    transition(build, state=State.RUNNING, sub_state=status.run_sub_state or "Queued", lease_until=None,
               run_started=True, detail="run found")
    apply_status(Build.objects.get(pk=build.pk), status)
    return DONE


def _submit_failed(build: Build, error: azure.AzureError) -> StepResult:
    if error.permanent:
        _fail(build, error.code, error.message)
        return DONE
    attempts = Build.objects.values_list("attempts", flat=True).get(pk=build.pk)
    if attempts >= settings.BUILD_MAX_ATTEMPTS and error.status != 429:  # throttling never fails a build
        _fail(build, error.code, f"Gave up after {attempts} attempts: {error.message}")
        return DONE
    delay = backoff(attempts, error)
    when = timezone.now() + dt.timedelta(seconds=delay)
    transition(build, state=State.PENDING, detail=f"{error.code}: {error.message} (retrying in {delay:.0f} s)",
               lease_until=None, next_attempt_at=when, error_code=error.code, error_message=error.message)
    return StepResult(retry_in=delay, note=error.code)


def backoff(attempts: int, error: azure.AzureError | None = None) -> float:
    """How long to wait before trying again.

    Throttling (429) waits exactly what Azure asked, and at least AZURE_THROTTLE_MIN_SECONDS
    (Image Builder wants 180 s): it is not our failure, so it does not grow with attempts.
    Other transient errors back off exponentially with jitter (BUILD_RETRY_BASE_SECONDS, then
    twice that ... up to BUILD_RETRY_MAX_SECONDS), never shorter than a Retry-After.
    """
    if error is not None and error.status == 429:
        return max(error.retry_after or 0.0, float(settings.AZURE_THROTTLE_MIN_SECONDS)) * (1 + random.random() / 10)
    base = float(settings.BUILD_RETRY_BASE_SECONDS)
    delay = min(float(settings.BUILD_RETRY_MAX_SECONDS), base * 2 ** max(0, attempts - 1)) * (0.75 + random.random() / 2)
    if error is not None and error.retry_after:
        delay = max(delay, error.retry_after)
    return delay


def _cancel_requested(build: Build) -> bool:
    return Build.objects.filter(pk=build.pk, cancel_requested=True).exists()


def _cancel_before_run(build: Build) -> StepResult:
    """Canceled before its run started: nothing runs in Azure; remove the template if made."""
    transition(build, state=State.CANCELED, detail="canceled before the run started", lease_until=None)
    _enqueue_cleanup(build)
    return DONE


def _fail(build: Build, code: str, message: str) -> None:
    transition(build, state=State.FAILED, detail=f"{code}: {message}", error_code=code[:100], error_message=message,
               lease_until=None, log_uri=_log_uri(message) or build.log_uri)
    _enqueue_cleanup(build)


def _enqueue_cleanup(build: Build) -> None:
    queue.enqueue_cleanup(build)


# --- Following the run (called by the sweep for each template it sees) ----------------------------


def apply_status(build: Build, status: azure.TemplateStatus) -> Build:
    """Bring a running or canceling build in line with what Azure reports for its template."""
    if build.is_terminal:
        return build
    fields = _observed_fields(build, status)
    fields["last_seen_at"] = timezone.now()
    state = _RUN_STATES.get(status.run_state)
    if state is None:
        return transition(build, **fields)
    if state == State.RUNNING and build.state == State.CANCELING and not queue.cancel_job_alive(build):
        # Azure has not picked the cancel up yet: make sure it was sent (asking twice is harmless).
        queue.enqueue_cancel(build, on_commit=False)
    detail = status.run_message if state in (State.FAILED, State.PARTIALLY_SUCCEEDED) else ""
    if state == State.FAILED:
        code = _run_error_code(build, status)
        fields.update(error_code=code, error_message=status.run_message)
        detail = f"{code}: {status.run_message}"
    # At the end Azure leaves runSubState at the phase the run stopped in: keep it, the
    # timeline marks a failure in that phase.
    return transition(build, state=state, sub_state=status.run_sub_state, detail=detail, **fields)


def _observed_fields(build: Build, status: azure.TemplateStatus) -> dict:
    """Facts Azure reports once known (staging group, resolved source, log) that the build lacks."""
    fields = {}
    if status.staging_resource_group and not build.staging_resource_group:
        fields["staging_resource_group"] = status.staging_resource_group
    if status.source_exact_version and not build.source_exact_version:
        fields["source_exact_version"] = status.source_exact_version
    log_uri = _log_uri(status.run_message)
    if log_uri and log_uri != build.log_uri:
        fields["log_uri"] = log_uri
    return fields


def status_changes(build: Build, status: azure.TemplateStatus) -> bool:
    """Whether applying `status` would change the build (the sweep skips the others)."""
    state = _RUN_STATES.get(status.run_state)
    if state == State.RUNNING and build.state == State.CANCELING:
        return True  # the cancel may need sending again
    if state is not None and (state != build.state or status.run_sub_state != build.sub_state):
        return True
    return bool(_observed_fields(build, status))


def _run_error_code(build: Build, status: azure.TemplateStatus) -> str:
    """The failed run's error code from its async operation (one read), else from the message."""
    if build.run_operation_url:
        code = azure.operation_error_code(build.subscription_id, build.run_operation_url)
        if code:
            return code
    message = status.run_message.lower()
    if "packer build command has failed" in message or "packerbuildfailed" in message:
        return "PackerBuildFailed"
    if "context deadline exceeded" in message or "timeout" in message:
        return "BuildTimeout"
    if "validation" in message:
        return "ValidationFailed"
    return "BuildFailed"


def _log_uri(message: str) -> str:
    found = _LOG_URL.search(message or "")
    return found.group(0) if found else ""


def missing(build: Build) -> Build:
    """The listing did not show the build's template: fail it once it has been gone too long."""
    seen = build.last_seen_at or build.started_at or build.submitted_at or build.created_at
    if (timezone.now() - seen).total_seconds() < settings.BUILD_MISSING_GRACE_SECONDS:
        return build
    if build.state == State.CANCELING:
        return transition(build, state=State.CANCELED, detail="the template is gone")
    return transition(build, state=State.FAILED, error_code="TemplateNotFound",
                      error_message="The Image Builder template disappeared before its run finished "
                                    "(deleted outside Goldsmith?).",
                      detail="TemplateNotFound: the template disappeared")


def report_stuck_canceling(build: Build) -> None:
    since = build.cancel_requested_at or build.updated_at
    limit = dt.timedelta(minutes=settings.BUILD_CANCEL_STUCK_MINUTES)
    if build.state != State.CANCELING or build.stuck_reported or timezone.now() - since < limit:
        return
    log.warning("build %s has been canceling since %s", build.uuid, since)
    with transaction.atomic():
        if Build.objects.filter(pk=build.pk, stuck_reported=False).update(stuck_reported=True):
            BuildEvent.objects.create(build=build, at=timezone.now(), from_state=build.state, to_state=build.state,
                                      from_sub_state=build.sub_state, to_sub_state=build.sub_state,
                                      detail=f"stuck in Canceling for over {settings.BUILD_CANCEL_STUCK_MINUTES} "
                                             "minutes: check the template in Azure")
            events.build_event(build, "build.stuck")


# --- After the end --------------------------------------------------------------------------------


# Gallery image versions found by listing, keyed by (definition id lowercased, build uuid).
KnownVersions = dict[tuple[str, str], tuple[azure.RunOutputInfo, ...]]


def collect_outputs(build: Build, known: KnownVersions | None = None) -> bool:
    """Record the run outputs once (retried by the next sweep on failure); True when that took
    a read of the build's run outputs.

    A succeeded build needs no read when each target names its artifact exactly (a managed image
    id, a gallery image version id, a VHD uri), since Azure's run outputs would repeat the
    template, or when the version automatic versioning created is in `known` (the sweep lists a
    gallery definition's versions once for many builds and matches the goldsmith.build artifact
    tag). Otherwise one ARM read lists the run outputs.
    """
    if build.outputs_collected or not build.run_started or build.state == State.CANCELED:
        Build.objects.filter(pk=build.pk).update(outputs_collected=True)
        return False
    targets = build.template.get("properties", {}).get("distribute", [])
    kinds = {target.get("runOutputName"): target.get("type", "") for target in targets}
    auto = auto_versioned_definitions(build)
    derived = [_derived_output(build, target, auto, known or {}) for target in targets] \
        if build.state == State.SUCCEEDED else [None]
    read = not all(derived)
    outputs = azure.run_outputs(build.subscription_id, build.resource_group, build.template_name) if read \
        else derived
    with transaction.atomic():
        for output in outputs:
            BuildOutput.objects.update_or_create(
                build=build, run_output_name=output.name,
                defaults={"artifact_id": output.artifact_id, "artifact_uri": output.artifact_uri,
                          "provisioning_state": output.provisioning_state,
                          "distributor_type": kinds.get(output.name, "")})
        Build.objects.filter(pk=build.pk).update(outputs_collected=True)
    return read


def auto_versioned_definitions(build: Build) -> list[str]:
    """The gallery image definitions (ids) this build's targets publish to with automatic versioning."""
    return [str(target.get("galleryImageId", "")) for target in build.template.get("properties", {})
            .get("distribute", []) if target.get("type") == "SharedImage"
            and "/versions/" not in str(target.get("galleryImageId", "")).lower()]


def _derived_output(build: Build, target: dict, auto: list[str], known: KnownVersions) -> azure.RunOutputInfo | None:
    """The run output a distribution target produced, when the template says it exactly or a
    listing found the one version carrying this build's tag in the target's definition (`auto`:
    the build's auto-versioned definitions)."""
    name, kind = target.get("runOutputName", ""), target.get("type")
    image = str(target.get("galleryImageId", ""))
    if kind == "ManagedImage" and target.get("imageId"):
        return azure.RunOutputInfo(name, target["imageId"], "", "Succeeded")
    if kind == "SharedImage" and image and image not in auto:  # the template names the version
        return azure.RunOutputInfo(name, image, "", "Succeeded")
    if kind == "SharedImage" and image and auto.count(image) == 1:
        found = known.get((image.lower(), str(build.uuid)), ())
        if len(found) == 1:
            return azure.RunOutputInfo(name, found[0].artifact_id, "", found[0].provisioning_state)
    if kind == "VHD" and target.get("uri"):
        return azure.RunOutputInfo(name, "", target["uri"], "Succeeded")
    return None


def cleanup_due(build: Build) -> bool:
    """True when the finished build's template should now be deleted."""
    if not build.is_terminal or build.template_deleted_at or not build.finished_at:
        return False
    hours = settings.BUILD_TEMPLATE_RETENTION_HOURS
    if _keeps_vhd_in_staging(build):
        hours = max(hours, settings.BUILD_VHD_RETENTION_HOURS)
    if build.state == State.FAILED:
        hours = max(hours, settings.BUILD_FAILED_RETENTION_HOURS)  # its logs go with the template
    return timezone.now() >= build.finished_at + dt.timedelta(hours=hours)


def _keeps_vhd_in_staging(build: Build) -> bool:
    return build.state in (State.SUCCEEDED, State.PARTIALLY_SUCCEEDED) and any(
        target.get("type") == "VHD" and not target.get("uri")
        for target in build.template.get("properties", {}).get("distribute", []))


def cleanup(build: Build) -> StepResult:
    """Keep the build's log, then delete the finished build's template (outputs stay; the
    staging group and the log in it go with it). Idempotent: a copy a dead worker left
    unfinished is redone, a finished one is not."""
    build = Build.objects.get(pk=build.pk)
    if build.template_deleted_at or not build.is_terminal:
        return DONE
    note = ""
    try:
        buildlogs.keep(build)
    except azure.AzureError as error:
        if not error.permanent:
            return StepResult(retry_in=backoff(1, error), note=f"keeping the log: {error.code}")
        # A log that cannot be read (no Storage Blob Data Reader role, already gone) must not
        # keep the template for ever; say so where the operator looks.
        log.warning("build %s: its log could not be kept (%s: %s)", build.uuid, error.code, error.message)
        note = f"log not kept: {error.code}: {error.message}"[:2000]
    try:
        azure.template_delete(build.subscription_id, build.resource_group, build.template_name)
    except azure.AzureError as error:
        if error.code == "OperationNotAllowed" or not error.permanent:
            return StepResult(retry_in=backoff(1, error), note=error.code)
        Build.objects.filter(pk=build.pk).update(cleanup_error=f"{error.code}: {error.message}"[:2000])
        return DONE
    Build.objects.filter(pk=build.pk).update(template_deleted_at=timezone.now(), cleanup_error=note)
    return DONE


# --- Cancel ---------------------------------------------------------------------------------------


def cancel(build_id: int) -> StepResult:
    """Ask Image Builder to cancel a running build's run (without waiting). Idempotent."""
    build = Build.objects.filter(pk=build_id).first()
    if build is None or build.state != State.CANCELING:
        return DONE
    if not build.run_started:
        return DONE  # the submit job sees cancel_requested and cancels before running
    try:
        azure.template_cancel(build.subscription_id, build.resource_group, build.template_name)
    except azure.AzureError as error:
        if error.code in ("OperationNotAllowed", "ResourceNotFound", "NotFound") or error.status == 404:
            return DONE  # already canceling or finished: the sweep will see which
        if error.permanent:
            transition(build, detail=f"cancel refused: {error.code}: {error.message}")
            return DONE
        return StepResult(retry_in=backoff(1, error), note=error.code)
    transition(build, detail="cancel sent to Image Builder")
    return DONE
