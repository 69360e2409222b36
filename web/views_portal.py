"""Portal pages: home per role and the operator page (sign-in, profile and tokens live in their own modules)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Count, OuterRef, Prefetch, Q, Subquery
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from builds import access, approvals, ops
from builds.models import Build, BuildLayer, GoldImageVersion, LayerVersion
from web.views_builds import full_page


def _layers_prefetch() -> Prefetch:
    return Prefetch("build_layers", queryset=BuildLayer.objects.select_related("layer_version__layer__department"))


@login_required
@require_GET
@full_page
def home(request):
    """What each role needs first: the security team's images and failures, an editor's layers
    and builds in flight, the auditor's history (its own page), the admin's operator page."""
    roles = access.roles_of(request.user)
    only_auditor = roles.auditor and not (roles.security or roles.editor or roles.admin)
    if only_auditor:
        return redirect(reverse("portal:audit-history"))
    context: dict = {"roles": roles}
    if roles.security or roles.editor:
        context["approval_queue"] = list(approvals.pending_for(request.user)[:10])
    if roles.security or roles.auditor:
        versions = access.gold_versions(request.user).order_by("gold_image__slug", "-major", "-minor", "-patch")
        images: dict[int, dict] = {}
        for version in versions:
            entry = images.setdefault(version.gold_image_id, {"image": version.gold_image, "versions": []})
            entry["versions"].append(version)
        context["gold_images"] = list(images.values())
        recent = access.builds(request.user).prefetch_related(_layers_prefetch()).order_by("-created_at")
        context["recent_builds"] = list(recent[:8])
        context["failures"] = list(recent.filter(state=Build.State.FAILED)[:5])
        context["active_count"] = access.builds(request.user).filter(state__in=Build.ACTIVE).count()
    if roles.editor:
        context.update(_editor_home(request.user, roles))
    if roles.admin:
        context["operator"] = ops.operator_summary()
    return render(request, "portal/home.html", context)


def _editor_home(user, roles) -> dict:
    layers = list(access.layers(user).filter(department_id__in=roles.editor_departments)
                  .prefetch_related(Prefetch("versions", queryset=LayerVersion.objects.order_by("-major", "-minor",
                                                                                                 "-patch"))))
    newest: dict[int, GoldImageVersion] = {}
    for version in GoldImageVersion.objects.filter(status=GoldImageVersion.Status.PUBLISHED).select_related("gold_image"):
        current = newest.get(version.gold_image_id)
        if current is None or current.semver < version.semver:
            newest[version.gold_image_id] = version
    # The gold version each layer was last built on, to say which layers have not caught up.
    last_built = dict(
        access.layers(user).filter(department_id__in=roles.editor_departments)
        .annotate(last_gold=Subquery(BuildLayer.objects.filter(layer_version__layer=OuterRef("pk"))
                                     .order_by("-build__created_at").values("build__gold_version_id")[:1]))
        .values_list("pk", "last_gold"))
    built_versions = {v.pk: v for v in GoldImageVersion.objects.filter(pk__in=[pk for pk in last_built.values() if pk])}
    rows = []
    for layer in layers:
        latest = layer.versions.all()[0] if layer.versions.all() else None
        target = newest.get(layer.gold_image_id)
        built_on = built_versions.get(last_built.get(layer.pk))
        out_of_date = bool(target and built_on and built_on.semver < target.semver)
        rows.append({"layer": layer, "latest": latest, "newest_gold": target, "built_on": built_on,
                     "out_of_date": out_of_date})
    in_flight = list(access.builds(user).filter(state__in=Build.ACTIVE, department_id__in=roles.editor_departments)
                     .prefetch_related(_layers_prefetch()).order_by("-created_at")[:10])
    recent = list(access.builds(user).filter(department_id__in=roles.editor_departments)
                  .exclude(state__in=Build.ACTIVE).prefetch_related(_layers_prefetch()).order_by("-created_at")[:5])
    return {"layer_rows": rows, "in_flight": in_flight, "editor_recent": recent,
            "out_of_date_rows": [row for row in rows if row["out_of_date"]]}


# --- Operator page --------------------------------------------------------------------------------


@access.role_required(access.ADMIN)
@require_GET
def operator(request):
    counts = dict(Build.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    stuck = Build.objects.filter(Q(state=Build.State.CANCELING) | Q(state=Build.State.SUBMITTING)).count()
    # Canceling past BUILD_CANCEL_STUCK_MINUTES (the sweep marks them): someone should look in Azure.
    stuck_canceling = (Build.objects.filter(state=Build.State.CANCELING, stuck_reported=True)
                       .order_by("cancel_requested_at").only("uuid", "template_name", "cancel_requested_at")[:50])
    return render(request, "portal/operator.html", {
        "summary": ops.operator_summary(), "states": [(label, counts.get(value, 0)) for value, label in Build.State.choices],
        "stuck": stuck, "stuck_canceling": stuck_canceling,
        "stuck_minutes": settings.BUILD_CANCEL_STUCK_MINUTES,
    })
