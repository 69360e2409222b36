"""Department layer forms: create a layer and its versions, edit a draft's steps (add, edit,
reorder, remove, per customizer type), check it composed on a gold version, publish it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from builds import access, approvals, compose, preflight, schema, services, validation
from builds.models import GoldImageVersion, LayerVersion
from builds.schema import Problem
from builds.versions import VersionError, VersionRange
from portal.models import Department
from web import forms, htmx, wizard
from web.views_wizard import _add_errors, _editor_lists, _page, _unplaced, step_editor


def _edit_url(layer_version: LayerVersion) -> str:
    layer = layer_version.layer
    return reverse("builds:layer-version-edit", args=[layer.department.slug, layer.slug, layer_version.version])


@login_required
@require_http_methods(["GET", "POST"])
def layer_create(request):
    """A new layer in one of the editor's departments, with a first draft version 1.0.0."""
    roles = access.require(request.user, access.EDITOR)
    departments = Department.objects.filter(id__in=roles.editor_departments).order_by("name")
    gold_images = access.gold_images(request.user).order_by("name")
    form = forms.LayerCreateForm(request.POST or None, departments=departments, gold_images=gold_images)
    problems: list[Problem] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        department = departments.get(slug=data["department"])
        gold_image = gold_images.get(slug=data["gold_image"])
        try:
            with transaction.atomic():
                layer = services.layer_create(actor=request.user, department=department, gold_image=gold_image,
                                              slug=data["slug"], name=data["name"], description=data["description"])
                layer_version = services.layer_version_create(actor=request.user, layer=layer, version="1.0.0")
        except services.ServiceError as exc:
            problems = exc.problems or [Problem("catalog", "", exc.message)]
            _add_errors(form, problems)
        else:
            return redirect(_edit_url(layer_version))
    return render(request, "builds/layer_edit_create.html", {"form": form, "problems": _unplaced(form, problems)},
                  status=422 if request.method == "POST" else 200)


@login_required
@require_http_methods(["GET", "POST"])
def layer_version_create(request, department, slug):
    layer = access.get_layer(request.user, department, slug, need="change")
    form = forms.new_version_form(request.POST or None, layer.versions.all())
    problems: list[Problem] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        based_on = layer.versions.filter(version=data["based_on"]).first() if data["based_on"] else None
        try:
            layer_version = services.layer_version_create(actor=request.user, layer=layer, version=data["version"],
                                                          based_on=based_on, changelog=data["changelog"])
        except services.ServiceError as exc:
            problems = exc.problems or [Problem("catalog", "", exc.message)]
            _add_errors(form, problems)
        else:
            for warning in layer_version.warnings:
                messages.warning(request, warning.message)
            return redirect(_edit_url(layer_version))
    return render(request, "builds/layer_edit_new_version.html",
                  {"form": form, "layer": layer, "problems": _unplaced(form, problems)},
                  status=422 if request.method == "POST" else 200)


def _draft(request, department, slug, version) -> LayerVersion:
    layer_version = access.get_layer_version(request.user, department, slug, version, need="change")
    return layer_version


def _gold_choices(user, layer_version: LayerVersion) -> list[GoldImageVersion]:
    """Buildable gold versions of the layer's gold image, newest first, those in range first."""
    versions = [v for v in access.gold_versions(user).filter(gold_image=layer_version.layer.gold_image)
                if v.is_buildable]
    try:
        accepted = VersionRange.parse(layer_version.accepts)
    except VersionError:
        return versions
    return sorted(versions, key=lambda v: (not accepted.allows(v.version), [-p for p in v.semver.key]))


@login_required
@require_http_methods(["GET", "POST"])
def layer_version_edit(request, department, slug, version):
    layer_version = _draft(request, department, slug, version)
    if not layer_version.is_draft:
        messages.warning(request, f"{layer_version} is {layer_version.status}: published versions never change. "
                                  "Start a new version to change it.")
        return redirect(reverse("builds:layer-version", args=[department, slug, version]))
    layer = layer_version.layer
    url = _edit_url(layer_version)
    os_type = layer.gold_image.os_type
    policy = preflight.policy_rules()
    details = forms.LayerVersionForm(initial=forms.LayerVersionForm.initial_from(layer_version), policy=policy)
    status = 200
    if request.method == "POST" and request.POST.get("op") == "details":
        details = forms.LayerVersionForm(request.POST, policy=policy)
        if details.is_valid():
            data = details.cleaned_data
            problems = validation.check_layer_tags(data["tags"], {}) + validation.check_layer_network(
                details.to_network(), policy, alone=True)
            errors = schema.errors(problems)
            if not errors:
                try:
                    services.layer_version_update(actor=request.user, layer_version=layer_version,
                                                  accepts=data["accepts"], tags=data["tags"],
                                                  network=details.to_network(), changelog=data["changelog"])
                except services.ServiceError as exc:
                    errors = exc.problems or [Problem("catalog", "accepts", exc.message)]
                else:
                    messages.success(request, "Saved.")
                    return redirect(url)
            _add_errors(details, errors)
        status = 422
        context = {"lists": _lists(layer_version), "editor": None, "editor_problems": [],
                   "step_types": forms.step_types("customizer", os_type)}
    else:
        def save(list_name, steps):
            services.layer_version_update(actor=request.user, layer_version=layer_version, **{list_name: steps})

        outcome, context = step_editor(request, owner=layer_version, names=("customize", "validators"),
                                       os_type=os_type, department=True, save=save, done_url=url,
                                       all_names={"customizer": ("customize",), "validator": ("validators",)},
                                       check_steps=_layering_check(request.user, layer_version))
        if outcome == "redirect":
            return context
        if request.method == "POST":
            editor = context.get("editor")
            if context.get("editor_problems") or (editor and editor["form"].is_bound and editor["form"].errors):
                status = 422
    choices = _gold_choices(request.user, layer_version)
    context.update({"layer_version": layer_version, "layer": layer, "details": details, "editor_url": url,
                    "gold_choices": choices, "os_type": os_type,
                    "step_types_validators": forms.step_types("validator", os_type)})
    _attach_own_problems(context, layer_version, os_type, choices[0] if choices else None)
    return _page(request, "builds/layer_edit.html", "builds/layer_edit.html", context, status=status)


def _layering_check(user, layer_version: LayerVersion):
    """The layering rules for one step before it is saved (a name a baseline step of any gold
    version the layer accepts already has), as the editor's check_steps."""

    def check(list_name: str, steps: list, index: int) -> list[Problem]:
        try:
            accepted = VersionRange.parse(layer_version.accepts)
        except VersionError:
            return []
        candidate = wizard.draft_with(layer_version, **{list_name: steps})
        where = f"{list_name}[{index}]"
        found: dict[str, Problem] = {}
        for gold_version in _gold_choices(user, layer_version):
            if not accepted.allows(gold_version.version):
                continue
            for problem in validation.check_layer(candidate, gold_version, policy=preflight.policy_rules()):
                if problem.rule == "layer.step-name-taken" and problem.path.startswith(where + "."):
                    found.setdefault(problem.rule, Problem(
                        problem.rule, "step" + problem.path[len(where):],
                        f"{problem.message} (a baseline step of {gold_version}, which this layer accepts)"))
        return list(found.values())

    return check


def _lists(layer_version):
    return _editor_lists(layer_version, ("customize", "validators"))


def _attach_own_problems(context: dict, layer_version: LayerVersion, os_type: str,
                         gold_version: GoldImageVersion | None) -> None:
    """The layer's own step problems (schema, policy, secrets, department rules, and the layering
    rules against the newest gold version it accepts) beside each step; the rest above the lists."""
    policy = preflight.policy_rules()
    layering = validation.check_layer(layer_version, gold_version, policy=policy) if gold_version else []
    context["problems"] = [p for p in schema.errors(layering) if not p.path.startswith(("customize[", "validators["))]
    for item in context["lists"]:
        kind = "customizer" if item["name"] == "customize" else "validator"
        for index, entry in enumerate(item["entries"]):
            where = f"{item['name']}[{index}]"
            entry["problems"] = schema.errors(validation.check_step(
                entry["step"], where, kind=kind, os_type=os_type, policy=policy, department=True)) + [
                p for p in schema.errors(layering) if p.path.startswith((where + ".", where + "["))]


@login_required
@require_http_methods(["GET"])
def layer_version_check(request, department, slug, version):
    """The layer composed on a chosen gold version with every check run (a fragment for htmx)."""
    layer_version = access.get_layer_version(request.user, department, slug, version)
    choices = _gold_choices(request.user, layer_version)
    wanted = request.GET.get("gold", "")
    gold_version = next((v for v in choices if v.version == wanted), None) or (choices[0] if choices else None)
    context = {"layer_version": layer_version, "layer": layer_version.layer, "gold_choices": choices,
               "gold_version": gold_version}
    if gold_version is not None:
        report = preflight.check_layer_version(layer_version, gold_version)
        body = compose.compose(gold_version, [layer_version], compose.BuildContext(
            location=gold_version.location or "eastus", policy=preflight.policy_rules()))
        context.update(report=report, checks=report.checks, errors=report.errors,
                       template=compose.without_provenance(body))
    response = htmx.render(request, "builds/layer_edit_check.html", context, fragment="builds/_layer_edit_check.html")
    return response


@login_required
@require_POST
def layer_version_publish(request, department, slug, version):
    """Request publishing of the draft when its steps pass and it composes cleanly on the newest gold
    version it accepts; another person's approval publishes it (builds/approvals.py)."""
    layer_version = _draft(request, department, slug, version)
    if not layer_version.is_draft:
        raise Http404("Only drafts are published.")
    choices = [v for v in _gold_choices(request.user, layer_version)
               if _accepts(layer_version, v.version)]
    extra: list[Problem] = []
    if not choices:
        extra.append(Problem("layer.no-gold-version", "accepts",
                             f"No published version of {layer_version.layer.gold_image.name} is in the range "
                             f"{layer_version.accepts}; widen the range so the layer can be built."))
    else:
        extra += [p for p in preflight.check_layer_version(layer_version, choices[0], environment=False).problems
                  if not p.rule.startswith("schema.")]
    try:
        publish_request = approvals.publish_request_create(actor=request.user, target=layer_version,
                                                           extra_problems=extra)
    except services.ServiceError as exc:
        for problem in exc.problems:
            messages.error(request, f"{problem.path}: {problem.message}" if problem.path else problem.message)
        if not exc.problems:
            messages.error(request, exc.message)
        return redirect(_edit_url(layer_version))
    messages.success(request, f"Publishing {layer_version} is requested: another editor of the department or "
                              "the security team approves it (four eyes).")
    return redirect(reverse("builds:approval-detail", args=[publish_request.uuid]))


def _accepts(layer_version, version: str) -> bool:
    try:
        return VersionRange.parse(layer_version.accepts).allows(version)
    except VersionError:
        return False
