"""Portal pages: home per role and the operator page (sign-in, profile and tokens live in their own modules)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from builds import access, approvals, ops, selectors
from builds.models import Build
from web.views_builds import full_page


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
    if roles.security:
        context["source_findings"] = selectors.source_findings(request.user)
    if roles.security or roles.auditor:
        versions = access.gold_versions(request.user).order_by("gold_image__slug", "-major", "-minor", "-patch")
        images: dict[int, dict] = {}
        for version in versions:
            entry = images.setdefault(version.gold_image_id, {"image": version.gold_image, "versions": []})
            entry["versions"].append(version)
        context["gold_images"] = list(images.values())
        recent = selectors.build_list(request.user)
        context["recent_builds"] = list(recent[:8])
        context["failures"] = list(recent.filter(state=Build.State.FAILED)[:5])
        context["active_count"] = access.builds(request.user).filter(state__in=Build.ACTIVE).count()
    if roles.editor:
        context.update(_editor_home(request.user, roles))
    if roles.admin:
        context["operator"] = ops.operator_summary()
    return render(request, "portal/home.html", context)


def _editor_home(user, roles) -> dict:
    rows = selectors.outdated_layers(user, roles.editor_departments)
    mine = access.builds(user).filter(department_id__in=roles.editor_departments)
    in_flight = list(selectors.with_layers(mine.filter(state__in=Build.ACTIVE).order_by("-created_at"))[:10])
    recent = list(selectors.with_layers(mine.exclude(state__in=Build.ACTIVE).order_by("-created_at"))[:5])
    return {"layer_rows": rows, "in_flight": in_flight, "editor_recent": recent,
            "out_of_date_rows": [row for row in rows if row["out_of_date"]]}


# --- Operator page --------------------------------------------------------------------------------


@access.role_required(access.ADMIN)
@require_GET
def operator(request):
    return render(request, "portal/operator.html", {"summary": ops.operator_summary(), **ops.build_figures()})
