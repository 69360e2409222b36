"""Auditor pages: the history, one event, a build's provenance, a gold image's history,
exports and verification.

History, provenance and gold history are for auditors and the security team; exports,
checkpoints and verification for auditors only (the role table in docs/security.md).
Reads are not audited; exports and checkpoints are.
"""

from __future__ import annotations

import json

from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from builds import access, buildlogs, compose
from builds.models import Build, BuildLayer, GoldImageVersion, Layer
from portal import audit, audit_export, audit_history
from portal.models import AuditCheckpoint, AuditEvent
from portal.redact import redact
from web import htmx

READERS = (access.AUDITOR, access.SECURITY)
PUBLISH_ACTIONS = ("gold_version.publish", "layer_version.publish")  # the approvals a provenance names


def _history_context(request, queryset, form) -> dict:
    page = audit_history.keyset_page(queryset, before=audit_history.cursor(request.GET.get("before")),
                                     after=audit_history.cursor(request.GET.get("after")))
    filters = audit_history.active_filters(form)
    return {
        "page": page, "form": form, "filters": filters, "query": _query(filters),
        "rows": [_row(event) for event in page.events],
        "known_actions": audit_history.KNOWN_ACTIONS,
        "may_export": access.roles_of(request.user).auditor,
    }


def _query(filters: dict[str, str]) -> str:
    from django.http import QueryDict

    query = QueryDict(mutable=True)
    query.update(filters)
    return query.urlencode()


_row = audit_history.row


@access.role_required(*READERS)
@require_GET
def audit_history_view(request):
    form = audit_history.filter_form(request.GET, audit_history.departments_for_filter())
    context = _history_context(request, audit_history.history_list(request.user, form), form)
    return htmx.render(request, "portal/audit/history.html", context, fragment="portal/audit/_events.html")


@access.role_required(*READERS)
@require_GET
def audit_event(request, event_hash: str):
    event = access.audit_events(request.user).select_related("department").filter(hash=event_hash).first()
    if event is None:
        raise Http404("No such audit event.")
    return render(request, "portal/audit/event.html", {
        "row": _row(event), "event": event, "user_agent": redact(event.user_agent),
        "may_verify": access.roles_of(request.user).auditor,
        # The chain's neighbours by id (ids are consecutive): the primary key answers both.
        "previous": AuditEvent.objects.filter(id=event.id - 1).values_list("hash", "id").first(),
        "next": AuditEvent.objects.filter(id=event.id + 1).values_list("hash", "id").first(),
    })


@access.role_required(access.AUDITOR)
@require_POST
def audit_export_view(request):
    """Stream the filtered history as CSV or JSON Lines, after recording the export."""
    export_format = request.POST.get("format", "csv")
    if export_format not in audit_export.FORMATS:
        return HttpResponse("Unknown export format.", status=400, content_type="text/plain")
    form = audit_history.filter_form(request.POST, audit_history.departments_for_filter())
    if form.is_bound and not form.is_valid():
        return HttpResponse("Invalid filters: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()),
                            status=400, content_type="text/plain")
    return audit_export.record_and_stream(actor=request.user, queryset=audit_history.events(request.user, form),
                                          export_format=export_format, filters=audit_history.active_filters(form))


@access.role_required(access.AUDITOR)
@require_http_methods(["GET", "POST"])
def audit_verify(request):
    """Walk the chain (from the last checkpoint, or all of it) and say whether it is intact."""
    latest = AuditCheckpoint.objects.order_by("-id").first()
    head_id, head_hash = audit.head()
    context = {"latest": latest, "head_id": head_id, "head_hash": head_hash, "verdict": None}
    if request.method == "POST":
        scope = request.POST.get("scope", "since-checkpoint")
        # The events after the checkpoint, linked to the one it names (whose hash is checked too).
        since = latest.last_event_id + 1 if latest and scope == "since-checkpoint" else None
        context.update(verdict=audit.verify_chain(since_id=since), scope=scope, since=since)
    return render(request, "portal/audit/verify.html", context)


@access.role_required(access.AUDITOR)
@require_POST
def audit_checkpoint(request):
    """Record a checkpoint and hand it to the auditor as a file to keep outside Goldsmith."""
    checkpoint = audit.checkpoint_create(actor=request.user)
    document = audit.checkpoint_document(checkpoint)
    response = HttpResponse(json.dumps(document, indent=2) + "\n", content_type="application/json")
    response["Content-Disposition"] = (f'attachment; filename="goldsmith-audit-checkpoint-'
                                       f'{document["last_event_id"]}.json"')
    return response


@access.role_required(*READERS)
@require_GET
def build_provenance(request, build_uuid):
    """Who built what, from what, approved by whom, and the proof that the record holds."""
    found = access.get_build(request.user, build_uuid)
    build = (Build.objects.select_related("gold_version__gold_image", "gold_version__created_by",
                                          "gold_version__published_by", "requested_by", "department", "rebuild_of")
             .get(pk=found.pk))
    layers = list(BuildLayer.objects.filter(build=build).order_by("position")
                  .select_related("layer_version__layer__department", "layer_version__created_by",
                                  "layer_version__published_by"))
    version_keys = Q(object_type="goldimageversion", object_id=str(build.gold_version.uuid))
    if layers:
        version_keys |= Q(object_type="layerversion", object_id__in=[str(bl.layer_version.uuid) for bl in layers])
    approvals_by_object = {event.object_id: event for event in
                           AuditEvent.objects.filter(version_keys, action__in=PUBLISH_ACTIONS).order_by("id")}
    build_events = list(AuditEvent.objects.filter(object_type="build", object_id=str(build.uuid))
                        .select_related("department").order_by("-id")[:500])
    requested = next((event for event in build_events if event.action == "build.request"), None)
    recorded_sha = None
    if requested and isinstance(requested.changes.get("template_sha256"), list):
        recorded_sha = requested.changes["template_sha256"][1]
    computed_sha = compose.template_sha256(build.template)
    return render(request, "portal/audit/provenance.html", {
        "build": build, "layers": layers, "timeline": list(build.events.order_by("at", "id")),
        "outputs": list(build.outputs.all()), "kept_logs": buildlogs.kept_logs(build),
        "gold_approval": approvals_by_object.get(str(build.gold_version.uuid)),
        "layer_rows": [(bl, approvals_by_object.get(str(bl.layer_version.uuid))) for bl in layers],
        "rows": [_row(event) for event in build_events], "requested": requested,
        "computed_sha": computed_sha, "recorded_sha": recorded_sha,
        "template_json": json.dumps(redact(build.template), indent=2, sort_keys=True, ensure_ascii=False),
    })


@access.role_required(*READERS)
@require_GET
def gold_history(request, slug: str):
    """Every recorded change of a gold image and its versions, with the versions' people."""
    image = access.get_gold_image(request.user, slug)
    versions = list(GoldImageVersion.objects.filter(gold_image=image)
                    .select_related("created_by", "published_by", "deprecated_by", "revoked_by")
                    .order_by("-major", "-minor", "-patch"))
    layers = list(Layer.objects.filter(gold_image=image).select_related("department").order_by("department__name",
                                                                                                  "slug"))
    keys = [Q(object_type="goldimage", object_id=str(image.pk))]
    keys += [Q(object_type="goldimageversion", object_id=str(version.uuid)) for version in versions]
    queryset = access.audit_events(request.user).select_related("department")
    page = audit_history.keyset_page(queryset, before=audit_history.cursor(request.GET.get("before")),
                                     after=audit_history.cursor(request.GET.get("after")), any_of=keys)
    return render(request, "portal/audit/gold_history.html", {
        "image": image, "versions": versions, "layers": layers, "page": page,
        "rows": [_row(event) for event in page.events],
    })
