"""Four-eyes publishing: publish requests, decisions, break-glass, channels and promotions.

Services (writes) for the roof and, later, the notifications app: each is keyword-only,
checks who may act (builds/policies.py's approval rules) and records exactly one audit event
in its transaction.

- `publish_request_create`: the author asks for a draft gold or layer version to be
  published (or, `promotion_request_create`, for a published gold version to be promoted to a
  channel). Every publish check runs now, on the exact content; errors refuse the request;
  the content's SHA-256 is stored with the request, and an older pending request for the
  same target is superseded.
- `publish_request_approve` / `publish_request_reject`: somebody other than the author decides.
  The hash is compared again at the decision and, for the last needed approval, at
  publication: both happen in one transaction holding the version's row, so what is published
  is exactly what was approved. Content that changed since the request supersedes it (the
  decision is refused with `StaleRequest`, and the request must be made again).
- `publish_request_withdraw`: the author takes it back.
- `gold_version_break_glass_publish`: an administrator publishes without approvals, with a
  mandatory reason; the request row and the audit event carry `break_glass`.
- `deletion_requests_due`: the scheduler's job. When the policy's `delete_revoked_after_days`
  has passed since a gold version's revocation, it asks (once per version, ever) for the
  version's gallery image versions to be deleted: a request of kind `deletion` whose author is
  the person who revoked it, so the approver is a second person (four eyes); the hash is that of
  the resource ids to delete. The approval plans the delete fan-out (builds/release.py).

Nothing here sends anything to Azure itself: promotions of `production` plan the release
fan-out (builds/release.py), which the workers apply.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from builds import compose, policies, preflight, release, schema, services, signals
from builds.models import (
    Build,
    Channel,
    GoldImage,
    GoldImageVersion,
    LayerVersion,
    PublishDecision,
    PublishRequest,
    ReleaseStep,
)
from builds.schema import Problem
from builds.services import ImmutableVersion, ServiceError
from builds.validators import slug_problem
from builds.versions import VersionError, VersionRange
from notify import events
from portal import audit
from portal.access import roles_of
from portal.audit import Actor

Kind = PublishRequest.Kind
State = PublishRequest.State
log = logging.getLogger(__name__)


class NotAllowed(ServiceError):
    """The actor may not do this (four eyes, or the wrong role); views answer 403."""


class StaleRequest(ServiceError):
    """The content changed after the request was made: the request is superseded."""


# --- Content hashes ------------------------------------------------------------------------------


def gold_body(gold_version: GoldImageVersion) -> dict:
    """The baseline template as a build would compose it (without build-specific provenance), with
    the current policy's pins filled: a policy change that fills something else changes the hash."""
    body = compose.compose(gold_version, [], compose.BuildContext(
        location=gold_version.location or settings.AZURE_LOCATION, policy=preflight.policy_rules()))
    return compose.without_provenance(body)


def layer_body(layer_version: LayerVersion) -> dict:
    return {"accepts": layer_version.accepts, "customize": layer_version.customize,
            "validators": layer_version.validators, "tags": layer_version.tags}


def content_sha256(target: GoldImageVersion | LayerVersion) -> str:
    """SHA-256 of the canonical JSON of what publishing freezes: the composed baseline of a gold
    version, the steps, validators, range and tags of a layer version."""
    body = gold_body(target) if isinstance(target, GoldImageVersion) else layer_body(target)
    return hashlib.sha256(compose.canonical_json(body).encode()).hexdigest()


def deletion_ids(gold_version: GoldImageVersion) -> list[str]:
    """The gallery image versions a deletion of the revoked version would delete (not deleted yet)."""
    return sorted(output.artifact_id for output in release.artifacts(gold_version)
                  .exclude(azure_state__deleted_at__isnull=False))


def request_sha256(kind: str, target: GoldImageVersion | LayerVersion) -> str:
    """What an approval of this kind is for: the content (content_sha256), or for a deletion the
    resource ids to delete (a version built from it since would void the approval)."""
    if kind == Kind.DELETION:
        return hashlib.sha256(compose.canonical_json(deletion_ids(target)).encode()).hexdigest()
    return content_sha256(target)


# --- Checks ---------------------------------------------------------------------------------------


def layer_publish_problems(layer_version: LayerVersion) -> list[Problem]:
    """What publishing a layer version checks beyond its own steps: it must compose cleanly on
    the newest published gold version its range accepts (and one must exist)."""
    gold_image = layer_version.layer.gold_image
    try:
        accepts = VersionRange.parse(layer_version.accepts)
    except VersionError:
        return []  # the service's range check names it
    candidates = sorted((v for v in gold_image.versions.filter(status=GoldImageVersion.Status.PUBLISHED)
                         if accepts.allows(v.version)), key=lambda v: v.semver, reverse=True)
    if not candidates:
        return [Problem("layer.no-gold-version", "accepts",
                        f"No published version of {gold_image.name} is in the range {layer_version.accepts}; "
                        "widen the range so the layer can be built.")]
    return [p for p in preflight.check_layer_version(layer_version, candidates[0]).problems
            if not p.rule.startswith("schema.")]


def _problems(target: GoldImageVersion | LayerVersion, extra: list[Problem] | None) -> list[Problem]:
    if isinstance(target, GoldImageVersion):
        own = services.gold_version_problems(target)
        extra = preflight.publish_problems(target) if extra is None else extra
    else:
        own = services.layer_version_problems(target)
        extra = layer_publish_problems(target) if extra is None else extra
    return schema.dedupe(own + list(extra))


# --- Requests -------------------------------------------------------------------------------------


def _locked_target(target: GoldImageVersion | LayerVersion) -> GoldImageVersion | LayerVersion:
    model = type(target)
    query = model.objects.select_for_update()
    if model is LayerVersion:
        query = query.select_related("layer__department", "layer__gold_image")
    else:
        query = query.select_related("gold_image")
    return query.get(pk=target.pk)


def _department_id(target: GoldImageVersion | LayerVersion) -> int | None:
    return target.layer.department_id if isinstance(target, LayerVersion) else None


def _supersede_pending(target_filter: dict[str, Any], now) -> list[str]:
    pending = PublishRequest.objects.select_for_update().filter(state=State.PENDING, **target_filter)
    ids = [str(uuid) for uuid in pending.values_list("uuid", flat=True)]
    pending.update(state=State.SUPERSEDED, decided_at=now)
    return ids


def publish_request_create(*, actor: Actor, target: GoldImageVersion | LayerVersion, comment: str = "",
                           extra_problems: list[Problem] | None = None) -> PublishRequest:
    """Ask for a draft to be published. Runs every publish check on the exact content first
    (`extra_problems` replaces the look-up checks when the caller has run them already).

    Returns the pending request. Raises NotAllowed (wrong role), ImmutableVersion (not a draft)
    or ServiceError listing the problems; nothing is stored then. An older pending request for
    the same version is superseded.
    """
    kind = Kind.GOLD if isinstance(target, GoldImageVersion) else Kind.LAYER
    if refusal := policies.request_refusal(actor, kind, _department_id(target)):
        raise NotAllowed(refusal)
    if not target.is_draft:
        raise ImmutableVersion(f"{target} is already {target.status}.")
    problems = _problems(target, extra_problems)  # look-ups happen before any row is locked
    return _create(actor=actor, target=target, kind=kind, comment=comment, problems=problems)


@transaction.atomic
def _create(*, actor: Actor, target, kind: str, comment: str, problems: list[Problem],
            channel: Channel | None = None, recorded_by: Actor | None = None) -> PublishRequest:
    """`recorded_by`: who made the request on the author's behalf (the scheduler), for the audit."""
    target = _locked_target(target)
    if kind in (Kind.GOLD, Kind.LAYER) and not target.is_draft:
        raise ImmutableVersion(f"{target} is already {target.status}.")
    errors = schema.errors(problems)
    if errors:
        raise ServiceError(f"{target} cannot be published until these problems are fixed.", errors)
    now = timezone.now()
    field = "layer_version" if isinstance(target, LayerVersion) else "gold_version"
    superseded = _supersede_pending({field: target, "kind": kind, "channel": channel}, now)
    request = PublishRequest.objects.create(
        kind=kind, author=services._user(actor), comment=comment.strip(), content_sha256=request_sha256(kind, target),
        approvals_required=policies.approval_rule(kind).approvals, channel=channel,
        checks=[problem.as_dict() for problem in problems], department_id=_department_id(target),
        **{field: target})
    changes: dict[str, list] = {"state": [None, State.PENDING], "target": [None, str(target)],
                                "content_sha256": [None, request.content_sha256],
                                "approvals_required": [None, request.approvals_required]}
    if channel is not None:
        changes["channel"] = [None, channel.name]
    if comment.strip():
        changes["comment"] = [None, comment.strip()]
    if superseded:
        changes["supersedes"] = [None, superseded]
    if kind == Kind.DELETION:
        changes["resource_ids"] = [None, deletion_ids(target)]
    if recorded_by is not None:
        changes["author"] = [None, request.author.get_username()]
    audit.record("publish_request.create", actor=recorded_by or actor, obj=request,
                 department=request.department_id, changes=changes)
    _emit("approval.requested", request, comment=comment)
    return request


def publish_request_approve(*, actor: Actor, request: PublishRequest, comment: str = "") -> PublishRequest:
    """Approve. When this is the last approval the policy asks for, the version is published
    (or the channel promoted) in the same transaction, after the content hash is compared
    again. Returns the request (state pending or approved).

    Raises NotAllowed (the author, the version's creator, the wrong role, a second decision),
    ServiceError (the request is not pending) or StaleRequest (the content changed: the
    request is now superseded, which is recorded).
    """
    request, stale = _decide(actor=actor, request=request, verdict=PublishDecision.Verdict.APPROVE, comment=comment)
    if stale:
        raise StaleRequest(f"{request.target} changed after the request was made; request publishing again. "
                           "(The request is now superseded.)")
    return request


def publish_request_reject(*, actor: Actor, request: PublishRequest, comment: str) -> PublishRequest:
    """Reject, with a comment saying why (required). One rejection ends the request. Raises
    like publish_request_approve."""
    if not comment.strip():
        raise ServiceError("Say why: the comment is shown to the author.",
                           [Problem("approval.comment-required", "comment", "A comment is required to reject.")])
    request, stale = _decide(actor=actor, request=request, verdict=PublishDecision.Verdict.REJECT, comment=comment)
    if stale:
        raise StaleRequest(f"{request.target} changed after the request was made; it is superseded already.")
    return request


@transaction.atomic
def _decide(*, actor: Actor, request: PublishRequest, verdict: str, comment: str) -> tuple[PublishRequest, bool]:
    request = PublishRequest.objects.select_for_update(of=("self",)).select_related(
        "gold_version__gold_image", "layer_version__layer", "channel").get(pk=request.pk)
    if not request.is_pending:
        raise ServiceError(f"This request is {request.state}; it cannot be decided any more.")
    if refusal := policies.approval_refusal(actor, request):
        raise NotAllowed(refusal)
    target = _locked_target(request.target)
    now = timezone.now()
    current = request_sha256(request.kind, target)
    if current != request.content_sha256 or (request.kind in (Kind.GOLD, Kind.LAYER) and not target.is_draft):
        request.state, request.decided_at = State.SUPERSEDED, now
        request.save(update_fields=["state", "decided_at"])
        audit.record("publish_request.supersede", actor=actor, obj=request, department=request.department_id,
                     changes={"state": [State.PENDING, State.SUPERSEDED],
                              "content_sha256": [request.content_sha256, current]})
        return request, True
    PublishDecision.objects.create(request=request, approver=services._user(actor), verdict=verdict,
                                   comment=comment.strip(), content_sha256=current)
    changes: dict[str, list] = {"verdict": [None, verdict], "content_sha256": [None, current]}
    if comment.strip():
        changes["comment"] = [None, comment.strip()]
    if verdict == PublishDecision.Verdict.REJECT:
        request.state, request.decided_at = State.REJECTED, now
        request.save(update_fields=["state", "decided_at"])
        changes["state"] = [State.PENDING, State.REJECTED]
        audit.record("publish_request.reject", actor=actor, obj=request, department=request.department_id,
                     changes=changes)
        _emit("approval.rejected", request, decided_by=actor, comment=comment)
        return request, False
    approvers = list(request.decisions.filter(verdict=PublishDecision.Verdict.APPROVE)
                     .order_by("at", "id").values_list("approver__username", flat=True))
    if len(approvers) < request.approvals_required:
        changes["approvals"] = [len(approvers) - 1, len(approvers)]
        audit.record("publish_request.approve", actor=actor, obj=request, department=request.department_id,
                     changes=changes)
        return request, False
    request.state, request.decided_at = State.APPROVED, now
    request.save(update_fields=["state", "decided_at"])
    detail = {"request": [None, str(request.uuid)], "requested_by": [None, request.author.username],
              "approved_by": [None, approvers], "content_sha256": [None, current],
              **({"comment": [None, comment.strip()]} if comment.strip() else {})}
    _publish(actor, request, target, detail)  # the one audit event of this transaction
    _emit("approval.approved", request, decided_by=actor, comment=comment)
    return request, False


def _emit(type_: str, request: PublishRequest, *, decided_by: Actor = None, comment: str = "") -> None:
    """The request's notification event (notify/catalog.py, "approval"), in the caller's
    transaction: approvers hear of a new request, its author of the decision."""
    target = request.target
    data = {"id": str(request.uuid), "subject": {"type": request.kind, "id": str(target.uuid), "label": str(target)},
            "department": request.department.slug if request.department_id else None,
            "requested_by": request.author.get_username(),
            "decided_by": decided_by.get_username() if hasattr(decided_by, "get_username") else None,
            "comment": comment.strip()}
    events.emit(type_, object_type="approval", object_id=request.uuid, data=data,
                link=reverse("builds:approval-detail", args=[request.uuid]), department_id=request.department_id,
                subjects={"requested_by": [request.author_id]})


def _publish(actor: Actor, request: PublishRequest, target, detail: dict) -> None:
    if request.kind == Kind.PROMOTION:
        _promote(actor, request.channel, target, detail)
    elif request.kind == Kind.DELETION:
        _delete(actor, target, detail)
    elif request.kind == Kind.GOLD:
        # The catalog look-ups ran when the request was made, on this exact content (the hash
        # says so); the rules that need no Azure run again here, inside the lock.
        services.gold_version_publish(actor=actor, gold_version=target, reason=request.comment[:500], detail=detail,
                                      lookups=False)
    else:
        services.layer_version_publish(actor=actor, layer_version=target, detail=detail)


@transaction.atomic
def publish_request_withdraw(*, actor: Actor, request: PublishRequest) -> PublishRequest:
    """The author takes a pending request back. Raises NotAllowed for anybody else,
    ServiceError when it is no longer pending."""
    request = PublishRequest.objects.select_for_update().get(pk=request.pk)
    if request.author_id != getattr(actor, "pk", None):
        raise NotAllowed("Only the author may withdraw a request.")
    if not request.is_pending:
        raise ServiceError(f"This request is {request.state}; it cannot be withdrawn.")
    request.state, request.decided_at = State.WITHDRAWN, timezone.now()
    request.save(update_fields=["state", "decided_at"])
    audit.record("publish_request.withdraw", actor=actor, obj=request, department=request.department_id,
                 changes={"state": [State.PENDING, State.WITHDRAWN]})
    return request


def gold_version_break_glass_publish(*, actor: Actor, gold_version: GoldImageVersion, reason: str,
                                     extra_problems: list[Problem] | None = None) -> GoldImageVersion:
    """Publish without approvals: administrators only, for emergencies, with a mandatory reason.
    The publish checks still run (a broken template is never published). A request row records
    it (state approved, break_glass), and the one `gold_version.publish` event carries
    `break_glass: true` and the reason; pages and reports mark it in red, with the words.

    Raises NotAllowed (not an administrator), ServiceError (no reason, problems) or
    ImmutableVersion (not a draft).
    """
    if not roles_of(actor).admin:
        raise NotAllowed("Break-glass publishing is for administrators only.")
    if not reason.strip():
        raise ServiceError("Give a reason: break-glass publishing is reviewed by the security team and auditors.",
                           [Problem("approval.reason-required", "reason", "A reason is required.")])
    if not gold_version.is_draft:
        raise ImmutableVersion(f"{gold_version} is already {gold_version.status}.")
    problems = _problems(gold_version, extra_problems)
    return _break_glass(actor, gold_version, reason.strip(), problems)


@transaction.atomic
def _break_glass(actor: Actor, gold_version: GoldImageVersion, reason: str, problems: list[Problem]):
    target = _locked_target(gold_version)
    errors = schema.errors(problems)
    if errors:
        raise ServiceError(f"{target} cannot be published until these problems are fixed.", errors)
    now = timezone.now()
    superseded = _supersede_pending({"gold_version": target, "kind": Kind.GOLD}, now)
    request = PublishRequest.objects.create(
        kind=Kind.GOLD, gold_version=target, author=services._user(actor), comment=reason,
        content_sha256=content_sha256(target), approvals_required=0, state=State.APPROVED, decided_at=now,
        break_glass=True, checks=[problem.as_dict() for problem in problems])
    detail = {"break_glass": [None, True], "request": [None, str(request.uuid)],
              "content_sha256": [None, request.content_sha256],
              **({"supersedes": [None, superseded]} if superseded else {})}
    # `problems` holds the look-ups' answers already (before the lock); see _publish.
    return services.gold_version_publish(actor=actor, gold_version=target, reason=reason[:500], detail=detail,
                                         lookups=False)


# --- Channels -------------------------------------------------------------------------------------


def promotion_request_create(*, actor: Actor, gold_version: GoldImageVersion, channel: str,
                             comment: str = "") -> PublishRequest:
    """Ask for a published gold version to become what `channel` points at (four eyes, like
    publishing). The channel is created with the request when it does not exist yet.
    Raises NotAllowed, ServiceError (not published, bad name, already there)."""
    if refusal := policies.request_refusal(actor, Kind.PROMOTION, None):
        raise NotAllowed(refusal)
    if message := slug_problem(channel):
        raise ServiceError(message, [Problem("channel.name", "channel", message)])
    if gold_version.status != GoldImageVersion.Status.PUBLISHED:
        raise ServiceError(f"{gold_version} is {gold_version.status}: only published versions are promoted.")
    with transaction.atomic():
        row, _ = Channel.objects.get_or_create(gold_image=gold_version.gold_image, name=channel)
        if row.gold_version_id == gold_version.pk:
            raise ServiceError(f"{channel} already points at {gold_version}.")
        return _create(actor=actor, target=gold_version, kind=Kind.PROMOTION, comment=comment, problems=[],
                       channel=row)


def _promote(actor: Actor, channel: Channel, gold_version: GoldImageVersion, detail: dict) -> None:
    """Point the channel at the version (inside the last approval's transaction). For
    `production`, the gallery versions of the new version are put back into `latest` and those
    of the one it replaces taken out (the release fan-out)."""
    if gold_version.status != GoldImageVersion.Status.PUBLISHED:
        raise ServiceError(f"{gold_version} is {gold_version.status}: only published versions are promoted.")
    channel = Channel.objects.select_for_update().get(pk=channel.pk)
    previous = channel.gold_version
    channel.gold_version, channel.promoted_by, channel.promoted_at = gold_version, services._user(actor), timezone.now()
    channel.save()
    changes = {"gold_version": [str(previous) if previous else None, str(gold_version)], **detail}
    if channel.name == Channel.PRODUCTION:
        steps = release.plan(gold_version=gold_version, action=ReleaseStep.Action.PROMOTE)
        if previous is not None:
            steps += release.plan(gold_version=previous, action=ReleaseStep.Action.DEMOTE)
        if steps:
            changes["gallery_versions"] = [None, steps]
    audit.record("channel.promote", actor=actor, obj=channel, label=str(channel), changes=changes)
    events.version_event(gold_version, "version.promoted", actor=actor, reason=f"promoted to {channel.name}")
    signals.version_released.send(sender=GoldImageVersion, gold_version=gold_version, channel=channel.name,
                                  actor=actor)


# --- Deleting revoked versions from the gallery (policy delete_revoked_after_days) -----------------


def deletion_requests_due(*, now: dt.datetime | None = None) -> list[PublishRequest]:
    """The scheduler's job: a deletion request for every revoked gold version whose grace
    period (the default policy's `delete_revoked_after_days`; 0: never) has passed at `now`, that
    still has gallery image versions and was never asked about before. The author is whoever
    revoked it; the scheduler records the request. Returns the requests made."""
    days = preflight.policy_rules().delete_revoked_after_days
    if not days:
        return []
    now = now or timezone.now()
    due = (GoldImageVersion.objects.filter(status=GoldImageVersion.Status.REVOKED, revoked_by__isnull=False,
                                           revoked_at__lte=now - dt.timedelta(days=days))
           .exclude(publish_requests__kind=Kind.DELETION).select_related("revoked_by", "gold_image").order_by("pk"))
    made = []
    for gold_version in due:
        ids = deletion_ids(gold_version)
        if not ids:
            continue
        comment = (f"Revoked on {gold_version.revoked_at:%Y-%m-%d}; the policy deletes revoked gallery image "
                   f"versions after {days} day{'s' if days != 1 else ''}. Deletes {len(ids)} gallery image "
                   f"version{'s' if len(ids) != 1 else ''}.")
        try:
            made.append(_create(actor=gold_version.revoked_by, target=gold_version, kind=Kind.DELETION,
                                comment=comment, problems=[], recorded_by=audit.worker_actor()))
        except IntegrityError:  # another run asked a moment ago (one request per version)
            log.info("deletion of %s requested already", gold_version)
    return made


def _delete(actor: Actor, gold_version: GoldImageVersion, detail: dict) -> None:
    """Plan the delete fan-out (inside the last approval's transaction); one event naming every
    resource id."""
    if gold_version.status != GoldImageVersion.Status.REVOKED:
        raise ServiceError(f"{gold_version} is {gold_version.status}: only revoked versions are deleted.")
    ids = deletion_ids(gold_version)
    steps = release.plan(gold_version=gold_version, action=ReleaseStep.Action.DELETE)
    audit.record("gold_version.delete_artifacts", actor=actor, obj=gold_version,
                 changes={"resource_ids": [ids, None], "gallery_versions": [None, steps], **detail})


def channel_resolve(gold_image: GoldImage, name: str) -> GoldImageVersion:
    """The version the channel points at now. Raises ServiceError when there is none."""
    channel = Channel.objects.filter(gold_image=gold_image, name=name).select_related("gold_version").first()
    if channel is None or channel.gold_version is None:
        raise ServiceError(f"{gold_image.slug} has no version in the channel '{name}'.",
                           [Problem("build.channel", "channel", f"Nothing has been promoted to {name} yet.")])
    return channel.gold_version


def build_request_on_channel(*, actor: Actor, gold_image: GoldImage, channel: str,
                             layer_versions: list[LayerVersion] = (), department=None) -> Build:
    """A build of whatever the channel points at now; the build records the channel (and its
    gold version is the resolved one). Raises ServiceError like services.build_request."""
    gold_version = channel_resolve(gold_image, channel)
    return services.build_request(actor=actor, gold_version=gold_version, layer_versions=list(layer_versions),
                                  department=department, channel=channel)


# --- Reads (small, used by pages, the API and commands) --------------------------------------------


def pending_for(user: Any) -> QuerySet[PublishRequest]:
    """The requests waiting for `user`'s decision: pending, not theirs, not decided by them,
    of a kind their roles approve."""
    roles = roles_of(user)
    query = (PublishRequest.objects.filter(state=State.PENDING).exclude(author=user)
             .exclude(decisions__approver=user)
             .select_related("gold_version__gold_image", "layer_version__layer__department", "author", "channel"))
    if roles.security:
        return query
    if roles.editor:
        return query.filter(kind=Kind.LAYER, department__in=roles.editor_departments)
    return query.none()


def gold_version_import_and_request(*, actor: Actor, gold_slug: str, version: str, data: Any,
                                    resource_group: str = "", name: str = "", comment: str = "",
                                    break_glass_reason: str = "") -> tuple[GoldImageVersion, PublishRequest]:
    """`importtemplate --publish`: import, run every publish check, and either request
    publishing (the version stays a draft until approved) or, with a break-glass reason, publish
    at once (administrators only). One transaction: any refusal imports nothing.
    Raises like services.gold_version_import, NotAllowed, ServiceError."""
    made: list[PublishRequest] = []

    def publisher(draft: GoldImageVersion, problems: list[Problem]) -> None:
        if break_glass_reason:
            gold_version_break_glass_publish(actor=actor, gold_version=draft, reason=break_glass_reason,
                                             extra_problems=problems)
            made.append(PublishRequest.objects.filter(gold_version=draft, break_glass=True).latest("created_at"))
        else:
            made.append(publish_request_create(actor=actor, target=draft, comment=comment or "imported",
                                               extra_problems=problems))

    with transaction.atomic():
        gold_version, _ = services.gold_version_import(
            actor=actor, gold_slug=gold_slug, version=version, data=data, publish=True,
            resource_group=resource_group, name=name, publisher=publisher)
    return gold_version, made[0]
