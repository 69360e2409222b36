"""Catalog and build pages: gold images (versions, diff, publish/deprecate/revoke, lineage),
layers (steps, preview, build button), builds (list, live page, log, template, cancel, rebuild).

Every object comes through builds.access; every write goes through builds.services. The
wizard and the layer edit forms live in their own modules (views_wizard, views_layers).
"""

from __future__ import annotations

import datetime
import functools
from urllib.parse import urlencode, urlsplit

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from builds import (
    access,
    approvals,
    buildlogs,
    compose,
    diffing,
    lifecycle,
    lineage,
    packerlog,
    release,
    schedules,
    schema,
    selectors,
    services,
    stuck,
    timeline,
    validation,
)
from builds.models import Build, BuildOutput, GoldImageVersion, LayerVersion, PatchSchedule
from builds.replication import for_build as gallery_replication
from builds.versions import VersionError, VersionRange
from portal.models import Department
from web import htmx, logpanel
from web.views_schedules import ScheduleForm

POLL_SECONDS = logpanel.POLL_SECONDS  # how often an open build page asks for the live fragment while active
LINEAGE_BUILDS = 40  # the lineage graph shows this many most recent builds
ARTIFACT_ROWS = 100  # the "in Azure" table of the lineage and gold image pages shows this many versions
PAGE_SIZE = 25


def signed_in(view):
    """login_required that also suits fragments: an htmx request from a page whose session has
    ended is sent to sign-in as a whole page (HX-Redirect), not answered with the sign-in page
    swapped into a fragment."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated and htmx.is_htmx(request):
            page = _local_path(request.headers.get("HX-Current-URL") or request.get_full_path())
            sign_in = f"{reverse(settings.LOGIN_URL)}?{urlencode({'next': page})}"
            return HttpResponse(status=200, headers={"HX-Redirect": sign_in})
        return login_required(view)(request, *args, **kwargs)

    return wrapped


def _local_path(url: str) -> str:
    """The path and query of a URL on this site (never another host)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "") or "/"


def full_page(view):
    """For a page that is only ever shown whole: a boosted htmx request that lands here (e.g.
    a boosted wizard form redirecting to this page) is told to load it as a normal page, since
    the page lacks the element the boosted container would swap in."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.headers.get("HX-Boosted") == "true":
            return HttpResponse(status=200, headers={"HX-Redirect": request.get_full_path()})
        return view(request, *args, **kwargs)

    return wrapped




def _problem_map(problems) -> tuple[dict[str, list[str]], list]:
    """Problems with a path that names a form field, and the rest (shown above the form)."""
    by_field: dict[str, list[str]] = {}
    rest = []
    for problem in problems:
        field = (problem.path or "").split(".")[0].split("[")[0]
        if field in ("reason", "version", "gold", "layers", "department"):
            by_field.setdefault(field, []).append(problem.message)
        else:
            rest.append(problem)
    return by_field, rest


# --- Gold images ---------------------------------------------------------------------------------


@login_required
@require_GET
@full_page
def gold_list(request):
    roles = access.require(request.user, access.SECURITY, access.EDITOR, access.AUDITOR)
    return render(request, "builds/gold_list.html", {"images": selectors.gold_image_list(request.user), "roles": roles})


@login_required
@require_GET
@full_page
def gold_detail(request, slug):
    gold_image = selectors.gold_image_detail(request.user, slug)
    roles = access.roles_of(request.user)
    versions = gold_image.visible_versions
    newest = selectors.newest_published(versions)
    layers = access.layers(request.user).filter(gold_image=gold_image)
    builds = selectors.build_list(request.user, selectors.BuildFilters(gold_image=gold_image.slug))[:10]
    return render(request, "builds/gold_detail.html", {
        "gold_image": gold_image, "versions": versions, "newest": newest, "layers": layers, "builds": builds,
        "roles": roles, "can_change": roles.security,
        "source_findings": selectors.source_findings(request.user, gold_image),
        **_schedule_context(gold_image, roles),
        "artifacts": release.gallery_outputs(access.builds(request.user).filter(
            gold_version__gold_image=gold_image))[:ARTIFACT_ROWS],
        "diff_from": versions[1].version if len(versions) > 1 else "",
        "diff_to": versions[0].version if versions else "",
    })


def _schedule_context(gold_image, roles) -> dict:
    schedule = PatchSchedule.objects.filter(gold_image=gold_image).select_related("build", "rollout").first()
    initial = {"cron": schedule.cron, "time_zone": schedule.time_zone} if schedule else {}
    return {"schedule": schedule, "schedule_runs": schedules.next_runs(schedule) if schedule else [],
            "schedule_form": ScheduleForm(initial=initial) if roles.security else None}


@login_required
@require_GET
@full_page
def gold_version_detail(request, slug, version):
    gold_version = access.get_gold_version(request.user, slug, version)
    return _gold_version_page(request, gold_version)


def _gold_version_page(request, gold_version, *, build_errors: dict | None = None, build_problems=(), status=200):
    roles = access.roles_of(request.user)
    siblings = list(access.gold_versions(request.user).filter(gold_image=gold_version.gold_image))
    newest = selectors.newest_published(siblings)
    body = selectors.baseline(gold_version)
    derived_layers = (access.layer_versions(request.user).filter(layer__gold_image=gold_version.gold_image)
                      .exclude(status=LayerVersion.Status.DRAFT))
    accepting = [lv for lv in derived_layers if _accepts(lv, gold_version.version)]
    builds = selectors.with_layers(access.builds(request.user).filter(gold_version=gold_version)
                                   .order_by("-created_at"))[:20]
    departments = Department.objects.filter(pk__in=roles.editor_departments) if roles.editor else []
    return render(request, "builds/gold_version.html", {
        "gold_version": gold_version, "gold_image": gold_version.gold_image, "newest": newest,
        "out_of_date": newest is not None and gold_version.is_buildable and gold_version.semver < newest.semver,
        "template": body, "template_sha256": compose.template_sha256(body),
        "filled": selectors.filled_by_policy(gold_version), "accepting_layers": accepting, "builds": builds, "roles": roles,
        "can_change": roles.security, "can_build": gold_version.is_buildable and (roles.security or roles.editor),
        "departments": departments, "build_errors": build_errors or {}, "build_problems": build_problems,
    }, status=status)


def _accepts(layer_version: LayerVersion, version: str) -> bool:
    try:
        return VersionRange.parse(layer_version.accepts).allows(version)
    except VersionError:
        return False


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=2000)


GOLD_ACTIONS = {
    "publish": {"service": lambda *, actor, gold_version, reason: approvals.publish_request_create(
                    actor=actor, target=gold_version, comment=reason),
                "title": "Request publishing", "done": "published",
                "success": "Publishing is requested: another member of the security team approves it.",
                "reason_required": False, "busy": "Requesting…",
                "explain": "Another member of the security team must approve before this version is published "
                           "(four eyes). Publishing freezes it: it can never change again, and departments can "
                           "build from it and base layers on it."},
    "deprecate": {"service": services.gold_version_deprecate, "title": "Deprecate", "done": "deprecated",
                  "reason_required": True, "busy": "Deprecating…",
                  "explain": "A deprecated version can still be built, but every image and layer derived from it is "
                             "flagged as out of date. The reason is shown to everyone affected."},
    "revoke": {"service": services.gold_version_revoke, "title": "Revoke", "done": "revoked",
               "reason_required": True, "busy": "Revoking…",
               "explain": "Nothing can be built from a revoked version any more, and every image derived from it is "
                          "marked revoked. This cannot be undone. The reason is shown to everyone affected."},
}


@login_required
def gold_version_action(request, slug, version, action):
    """Publish, deprecate or revoke: a confirmation page with a reason (GET), the change (POST)."""
    spec = GOLD_ACTIONS.get(action)
    if spec is None:
        raise Http404("No such action.")
    if request.method not in ("GET", "POST"):
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    gold_version = access.get_gold_version(request.user, slug, version, need="change")
    form = ReasonForm(request.POST or None)
    problems = []
    status = 200
    if request.method == "POST" and form.is_valid():
        reason = form.cleaned_data["reason"]
        try:
            spec["service"](actor=request.user, gold_version=gold_version, reason=reason)
        except services.ServiceError as exc:
            by_field, rest = _problem_map(exc.problems)
            for message in by_field.get("reason", []):
                form.add_error("reason", message)
            problems = rest
            if not exc.problems or not (by_field or rest):
                form.add_error(None, exc.message)
            status = htmx.error_status(request)
        else:
            messages.success(request, spec.get("success") or f"{gold_version} is now {spec['done']}.")
            return redirect("builds:gold-version", slug=slug, version=version)
    derived_builds = access.builds(request.user).filter(gold_version=gold_version).count()
    derived_layers = [lv for lv in access.layer_versions(request.user)
                      .filter(layer__gold_image=gold_version.gold_image)
                      .exclude(status=LayerVersion.Status.DRAFT) if _accepts(lv, gold_version.version)]
    return render(request, "builds/gold_version_action.html", {
        "gold_version": gold_version, "gold_image": gold_version.gold_image, "action": action, "spec": spec,
        "form": form, "problems": problems, "allowed": gold_version.can_become(spec["done"]),
        "derived_builds": derived_builds, "derived_layers": derived_layers,
        "wizard_url": reverse("builds:wizard-edit", args=(slug, version)) if gold_version.is_draft else "",
    }, status=status)


@login_required
@require_GET
@full_page
def gold_diff(request, slug):
    gold_image = access.get_gold_image(request.user, slug)
    versions = list(access.gold_versions(request.user).filter(gold_image=gold_image)
                    .order_by("-major", "-minor", "-patch"))
    by_version = {v.version: v for v in versions}
    mode = "unified" if request.GET.get("mode") == "unified" else "split"
    errors: dict[str, str] = {}
    old_text = request.GET.get("from") or (versions[1].version if len(versions) > 1 else "")
    new_text = request.GET.get("to") or (versions[0].version if versions else "")
    old, new = by_version.get(old_text), by_version.get(new_text)
    if old_text and old is None:
        errors["from"] = f"{gold_image.slug} has no version {old_text} that you can see."
    if new_text and new is None:
        errors["to"] = f"{gold_image.slug} has no version {new_text} that you can see."
    result = diffing.diff(selectors.baseline(old), selectors.baseline(new)) if old and new else None
    return render(request, "builds/gold_diff.html", {
        "gold_image": gold_image, "versions": versions, "old": old, "new": new, "mode": mode, "diff": result,
        "errors": errors, "old_text": old_text, "new_text": new_text,
    })


@login_required
@require_GET
@full_page
def gold_lineage(request, slug):
    gold_image = access.get_gold_image(request.user, slug)
    golds = list(access.gold_versions(request.user).filter(gold_image=gold_image))
    builds = list(selectors.build_list(request.user, selectors.BuildFilters(gold_image=gold_image.slug))
                  .prefetch_related("outputs")[:LINEAGE_BUILDS])
    layer_versions = {}
    for build in builds:
        for build_layer in build.build_layers.all():
            layer_versions[build_layer.layer_version_id] = build_layer.layer_version
    found = lineage.graph(
        [lineage.GoldRow(f"g{g.pk}", g.version, g.status,
                         reverse("builds:gold-version", args=[gold_image.slug, g.version])) for g in golds],
        [lineage.LayerRow(f"l{lv.pk}", compose.layer_label(lv),
                          reverse("builds:layer-version", args=[lv.layer.department.slug, lv.layer.slug, lv.version]))
         for lv in layer_versions.values()],
        [lineage.BuildRow(f"b{b.pk}", f"build {str(b.uuid)[:8]}", b.state, f"g{b.gold_version_id}",
                          tuple(f"l{bl.layer_version_id}" for bl in b.build_layers.all()),
                          tuple(lineage.ArtifactRow(f"o{o.pk}", _short_artifact(o), o.artifact_id or o.artifact_uri)
                                for o in b.outputs.all()),
                          reverse("builds:build-detail", args=[b.uuid])) for b in builds],
    )
    lineage.place(found)
    return render(request, "builds/gold_lineage.html", {
        "gold_image": gold_image, "graph": found, "paths": found.paths(190, 34), "columns": lineage.COLUMNS,
        "column_titles": list(zip(found.column_x, lineage.COLUMNS, strict=True)), "builds": builds,
        "limit": LINEAGE_BUILDS, "golds": golds,
        "artifacts": release.gallery_outputs(access.builds(request.user).filter(
            gold_version__gold_image=gold_image))[:ARTIFACT_ROWS], "can_refresh": access.roles_of(request.user).security,
    })


def _short_artifact(output: BuildOutput) -> str:
    text = output.artifact_id or output.artifact_uri or output.run_output_name
    parts = [part for part in text.split("/") if part]
    if "images" in parts and "versions" in parts:  # a gallery image version: image@version
        return f"{parts[parts.index('images') + 1]}@{parts[-1]}"
    return parts[-1][:28] if parts else output.run_output_name


# --- Layers ----------------------------------------------------------------------------------------


@login_required
@require_GET
@full_page
def layer_list(request):
    roles = access.require(request.user, access.SECURITY, access.EDITOR, access.AUDITOR)
    layers = selectors.layer_list(request.user)
    departments = Department.objects.filter(pk__in=roles.editor_departments) if roles.editor else []
    return render(request, "builds/layer_list.html", {
        "layers": layers, "roles": roles, "departments": departments,
    })


@login_required
@require_GET
@full_page
def layer_detail(request, department, slug):
    layer = selectors.layer_detail(request.user, department, slug)
    roles = access.roles_of(request.user)
    builds = selectors.with_layers(access.builds(request.user).filter(build_layers__layer_version__layer=layer)
                                   .order_by("-created_at").distinct())[:10]
    return render(request, "builds/layer_detail.html", {
        "layer": layer, "versions": layer.visible_versions, "builds": builds, "roles": roles,
        "can_edit": roles.edits(layer.department_id),
    })


def _gold_choices(user, layer_version: LayerVersion) -> list[tuple[GoldImageVersion, bool]]:
    """Buildable gold versions of the layer's gold image, newest first, with whether the layer accepts each."""
    versions = (access.gold_versions(user).filter(gold_image=layer_version.layer.gold_image,
                                                  status__in=(GoldImageVersion.Status.PUBLISHED,
                                                              GoldImageVersion.Status.DEPRECATED))
                .order_by("-major", "-minor", "-patch"))
    return [(version, _accepts(layer_version, version.version)) for version in versions]


CHANNEL_CHOICE = "channel:"  # the build form's value for "build on <channel>" (resolved when requested)


def _channel_choices(choices, layer_version) -> list[tuple[str, GoldImageVersion]]:
    """The gold image's channels that point at a version this layer may be built on, with it."""
    buildable = {version.pk: version for version, ok in choices if ok}
    return [(channel.name, buildable[channel.gold_version_id])
            for channel in layer_version.layer.gold_image.channels.order_by("name")
            if channel.gold_version_id in buildable]


@login_required
@require_GET
@full_page
def layer_version_detail(request, department, slug, version):
    layer_version = access.get_layer_version(request.user, department, slug, version)
    return _layer_version_page(request, layer_version)


def _layer_version_page(request, layer_version, *, build_errors=None, build_problems=(), status=200,
                        chosen: str = ""):
    roles = access.roles_of(request.user)
    choices = _gold_choices(request.user, layer_version)
    accepted = [version for version, ok in choices if ok]
    default = chosen or (accepted[0].version if accepted else "")
    own_problems = services.layer_version_problems(layer_version)
    builds = selectors.with_layers(access.builds(request.user).filter(build_layers__layer_version=layer_version)
                                   .order_by("-created_at"))[:10]
    return render(request, "builds/layer_version.html", {
        "layer_version": layer_version, "layer": layer_version.layer, "choices": choices, "default_gold": default,
        "channel_choices": _channel_choices(choices, layer_version), "channel_prefix": CHANNEL_CHOICE,
        "can_build": roles.edits(layer_version.layer.department_id)
        and layer_version.status == LayerVersion.Status.PUBLISHED and bool(accepted),
        "can_edit": roles.edits(layer_version.layer.department_id),
        "edit_url": reverse("builds:layer-version-edit", args=(layer_version.layer.department.slug,
                              layer_version.layer.slug, layer_version.version)) if layer_version.is_draft else "",
        "own_problems": own_problems, "builds": builds, "build_errors": build_errors or {},
        "build_problems": build_problems,
    }, status=status)


@signed_in
@require_GET
def layer_version_preview(request, department, slug, version):
    """The composed template of this layer on a chosen gold version (a fragment for htmx)."""
    layer_version = access.get_layer_version(request.user, department, slug, version)
    choices = _gold_choices(request.user, layer_version)
    wanted = request.GET.get("gold", "")
    gold_version = next((v for v, _ in choices if v.version == wanted), None)
    context = {"layer_version": layer_version, "layer": layer_version.layer, "choices": choices,
               "default_gold": wanted, "error": ""}
    if gold_version is None:
        context["error"] = ("Choose one of the published versions of "
                            f"{layer_version.layer.gold_image.name} to preview against.")
        return htmx.render(request, "builds/layer_preview.html", context, fragment="builds/_preview.html",
                       status=422)
    body = compose.compose(gold_version, [layer_version], selectors.preview_context())
    problems = schema.check_template(body) + validation.check_layer_tags(layer_version.tags, gold_version.tags)
    if not _accepts(layer_version, gold_version.version):
        problems.insert(0, schema.Problem("build.layer-range", "gold",
                                          f"This layer version accepts gold versions {layer_version.accepts}, not "
                                          f"{gold_version.version}: a build would be refused."))
    context.update(gold_version=gold_version, template=body, template_sha256=compose.template_sha256(body),
                   problems=problems, errors=schema.errors(problems))
    return htmx.render(request, "builds/layer_preview.html", context, fragment="builds/_preview.html")


# --- Requesting builds ----------------------------------------------------------------------------


@login_required
@require_POST
def layer_version_build(request, department, slug, version):
    """The build button of a layer version: builds it on the chosen gold version, or on what the
    chosen channel points at now (`channel:<name>`; the build records the channel)."""
    layer_version = access.get_layer_version(request.user, department, slug, version, need="build")
    wanted = request.POST.get("gold", "")
    channel = wanted.removeprefix(CHANNEL_CHOICE) if wanted.startswith(CHANNEL_CHOICE) else ""
    if channel:
        resolved = layer_version.layer.gold_image.channels.filter(name=channel).select_related("gold_version").first()
        wanted = resolved.gold_version.version if resolved and resolved.gold_version else ""
    gold_version = (access.gold_versions(request.user)
                    .filter(gold_image=layer_version.layer.gold_image, version=wanted).first())
    if gold_version is None:
        return _layer_version_page(request, layer_version, status=422, chosen=wanted,
                                   build_errors={"gold": ["Choose a published gold version to build on."]})
    access.get_gold_version(request.user, gold_version.gold_image.slug, gold_version.version, need="build")
    try:
        build = services.build_request(actor=request.user, gold_version=gold_version, layer_versions=[layer_version],
                                       department=layer_version.layer.department, channel=channel)
    except services.ServiceError as exc:
        by_field, rest = _problem_map(exc.problems)
        errors = {"gold": by_field.get("version", []) + by_field.get("gold", []) + by_field.get("layers", [])
                  + by_field.get("channel", [])}
        if not exc.problems:
            errors["gold"].append(exc.message)
        return _layer_version_page(request, layer_version, status=422, chosen=wanted, build_errors=errors,
                                   build_problems=rest)
    messages.success(request, "Build requested: this page follows it live.")
    return redirect("builds:build-detail", build_uuid=build.uuid)


@login_required
@require_POST
def gold_version_build(request, slug, version):
    """A gold-only build (no layers): the security team's, or an editor's for their department."""
    gold_version = access.get_gold_version(request.user, slug, version, need="build")
    roles = access.roles_of(request.user)
    department = None
    if not roles.security:
        chosen = request.POST.get("department", "")
        department = Department.objects.filter(pk__in=roles.editor_departments, slug=chosen).first()
        if department is None and len(roles.editor_departments) == 1:
            department = Department.objects.get(pk=next(iter(roles.editor_departments)))
        if department is None:
            return _gold_version_page(request, gold_version, status=422,
                                      build_errors={"department": ["Choose the department the build is for."]})
    try:
        build = services.build_request(actor=request.user, gold_version=gold_version, layer_versions=[],
                                       department=department)
    except services.ServiceError as exc:
        by_field, rest = _problem_map(exc.problems)
        errors = {"version": by_field.get("version", []) + ([exc.message] if not exc.problems else [])}
        return _gold_version_page(request, gold_version, status=422, build_errors=errors, build_problems=rest)
    messages.success(request, "Build requested: this page follows it live.")
    return redirect("builds:build-detail", build_uuid=build.uuid)


# --- Builds ----------------------------------------------------------------------------------------


class BuildFilterForm(forms.Form):
    state = forms.ChoiceField(required=False, choices=[("", "Any state"), ("active", "In progress"),
                                                       *Build.State.choices])
    department = forms.ChoiceField(required=False)
    gold = forms.ChoiceField(required=False, label="Gold image")
    requester = forms.CharField(required=False, max_length=150, label="Requested by",
                                widget=forms.TextInput(attrs={"placeholder": "user name"}))
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, departments=(), gold_images=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["department"].choices = [("", "Any department")] + [(d.slug, d.name) for d in departments]
        self.fields["gold"].choices = [("", "Any gold image")] + [(g.slug, g.name) for g in gold_images]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("since") and cleaned.get("until") and cleaned["since"] > cleaned["until"]:
            self.add_error("until", "The end date is before the start date.")
        return cleaned

    def filters(self, sort: str) -> selectors.BuildFilters:
        """The filters to apply: none when the form is not bound or not valid."""
        if not (self.is_bound and self.is_valid()):
            return selectors.BuildFilters(sort=sort)
        data = self.cleaned_data
        return selectors.BuildFilters(state=data["state"], department=data["department"], gold_image=data["gold"],
                                      requested_by=data["requester"], sort=sort,
                                      **selectors.BuildFilters.day_range(data["since"], data["until"]))


@login_required
@require_GET
@full_page
def build_list(request):
    # The admin role reads every build (the operator page links here), read-only.
    roles = access.require(request.user, access.SECURITY, access.EDITOR, access.AUDITOR, access.ADMIN)
    departments = (Department.objects.all() if roles.security or roles.auditor or roles.admin
                   else Department.objects.filter(pk__in=roles.editor_departments))
    gold_images = access.gold_images(request.user)
    form = BuildFilterForm(request.GET or None, departments=departments, gold_images=gold_images)
    filters = form.filters(request.GET.get("sort", "-created"))
    if form.is_bound and form.errors:
        messages.error(request, "These filters are not valid, so the list is not filtered: fix the fields marked "
                                "below.")
    key, descending = filters.sort_key, filters.descending
    page = Paginator(selectors.build_list(request.user, filters), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    sort_query = query.copy()
    sort_query.pop("sort", None)
    columns = []
    for column, label in (("created", "Requested"), ("state", "State"), ("gold", "Gold image"),
                          ("department", "Department"), ("requester", "Requested by"), ("finished", "Finished")):
        current = key == column
        next_sort = column if current and descending else f"-{column}"
        sort_query["sort"] = next_sort
        columns.append({"key": column, "label": label, "url": "?" + sort_query.urlencode(), "current": current,
                        "aria": ("descending" if descending else "ascending") if current else ""})
    return render(request, "builds/build_list.html", {
        "form": form, "page": page, "columns": columns, "query": query.urlencode(), "roles": roles,
        "filtered": any(request.GET.get(name) for name in form.fields),
    })


CLEANUP_WATCH = datetime.timedelta(minutes=10)


def _build_context(request, build: Build) -> dict:
    roles = access.roles_of(request.user)
    events = list(build.events.order_by("at", "id"))
    now = timezone.now()
    found = timeline.phases([timeline.Event(e.at, e.to_state, e.to_sub_state) for e in events],
                            final_state=build.state, now=now, finished_at=build.finished_at)
    may_act = roles.security or roles.edits(build.department_id)
    # Stuck (builds/stuck.py): anyone who may cancel may ask again for a stuck Canceling, and
    # the admin role, which only reads builds otherwise, may cancel a stuck build.
    build_stuck = (build.is_active and (build.state == Build.State.CANCELING or (roles.admin and not may_act))
                   and stuck.is_stuck(build))
    failing, log_excerpt = None, ()
    log_location = build.log_uri or packerlog.log_location(build.error_message)
    if build.state in (Build.State.FAILED, Build.State.PARTIALLY_SUCCEEDED):
        log_summary = buildlogs.failure(build)  # validation.log's when a validator failed
        failing, log_excerpt = log_summary.failed_step, log_summary.excerpt[:10]
    versions = list(GoldImageVersion.objects.filter(gold_image_id=build.gold_version.gold_image_id)
                    .only("version", "status", "major", "minor", "patch"))
    newest = selectors.newest_published(versions)
    replicas = gallery_replication(build)
    steps = timeline.steps(buildlogs.sections(build), now=now, active=build.is_active)
    return {
        "replication": replicas, "replicating": any(item.pending for item in replicas),
        # A build that has just finished and whose template (and staging group) is being deleted
        # now: keep polling until it is, so the page says so (not for hours if no worker does it).
        "cleaning_up": lifecycle.cleanup_due(build) and build.finished_at >= now - CLEANUP_WATCH,
        # Fragments carry what the build changes elsewhere on the page (out-of-band swaps).
        "oob": htmx.is_htmx(request),
        "build": build, "events": events, "timeline": timeline.layout(found, steps=steps), "phases": found,
        "outputs": list(build.outputs.all()), "poll_seconds": POLL_SECONDS,
        "can_cancel": build.is_active and ((may_act and build.state != Build.State.CANCELING) or build_stuck),
        "stuck": build_stuck,
        "can_rebuild": may_act and build.is_terminal, "failing": failing, "log_location": log_location,
        "log_excerpt": log_excerpt,
        "newest": newest,
        "out_of_date": newest is not None and build.gold_version.semver < newest.semver,
        "revoked": build.gold_version.status == GoldImageVersion.Status.REVOKED,
    }


@login_required
@require_GET
@full_page
def build_detail(request, build_uuid):
    build = access.get_build(request.user, build_uuid)
    context = _build_context(request, build)
    context.update({
        "layers": list(build.build_layers.select_related("layer_version__layer__department")),
        "provenance_url": reverse("portal:audit-provenance", args=(build.uuid,)),
        **logpanel.live_panel_context(request, build),
    })
    return htmx.render(request, "builds/build_detail.html", context, fragment="builds/_build_live.html")


@signed_in
@require_GET
def build_status(request, build_uuid):
    """The live part of the build page, which the page polls while the build is active."""
    build = access.get_build(request.user, build_uuid)
    if not htmx.is_htmx(request):
        return redirect("builds:build-detail", build_uuid=build.uuid)
    return htmx.render(request, "builds/_build_live.html", _build_context(request, build))


@login_required
@require_GET
def build_template(request, build_uuid):
    """The exact template body submitted for the build, as a JSON download."""
    build = access.get_build(request.user, build_uuid)
    response = JsonResponse(build.template, json_dumps_params={"indent": 2, "sort_keys": True})
    response["Content-Disposition"] = f'attachment; filename="{build.template_name}.json"'
    response["X-Template-SHA256"] = build.template_sha256
    return response


@signed_in
@require_POST
def build_cancel(request, build_uuid):
    build = access.get_build(request.user, build_uuid, need="change")
    try:
        build = services.build_cancel(actor=request.user, build=build)
    except services.ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Cancel requested." if build.state != Build.State.CANCELED else "Build canceled.")
    if htmx.is_htmx(request):
        build = access.get_build(request.user, build_uuid)
        return htmx.render(request, "builds/_build_live.html", _build_context(request, build))
    return redirect("builds:build-detail", build_uuid=build_uuid)


@login_required
@require_POST
def build_rebuild(request, build_uuid):
    build = access.get_build(request.user, build_uuid, need="build")
    try:
        new = services.build_rebuild(actor=request.user, build=build)
    except services.ServiceError as exc:
        problems = "; ".join(problem.message for problem in exc.problems)
        messages.error(request, f"{exc.message} {problems}".strip())
        return redirect("builds:build-detail", build_uuid=build.uuid)
    messages.success(request, f"Rebuild of {str(build.uuid)[:8]} requested.")
    return redirect("builds:build-detail", build_uuid=new.uuid)
