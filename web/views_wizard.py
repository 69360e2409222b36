"""The gold image version wizard (security team): Source, Security, Customize, Validate,
Distribute, Build VM and identity, Review. Every step validates on the server and keeps its
state on the draft row; htmx swaps steps and look-ups in place, and every page works without it.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST

from builds import access, approvals, compose, preflight, schema, selectors, services, validation
from builds.models import GoldImageVersion
from builds.schema import Problem
from builds.validation import Declared
from web import forms, htmx, wizard


def _page(request, template: str, fragment: str, context: dict, *, status: int = 200):
    """The full page, or the fragment for htmx (errors answer 200 there, so htmx swaps them in)."""
    return htmx.render(request, template, {**context, "htmx": htmx.is_htmx(request)}, fragment=fragment,
                       status=htmx.error_status(request, status))


def _back_to(request, url: str):
    """Redirect; htmx follows it and swaps the answer in."""
    return redirect(url, permanent=False)


def _step_url(gold_version: GoldImageVersion, step: str) -> str:
    return reverse("builds:wizard-step", args=[gold_version.gold_image.slug, gold_version.version, step])


def _actor(request):
    return request.user


# --- Starting ------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def wizard_start(request):
    """A new gold image and its first draft version."""
    access.require(request.user, access.SECURITY)
    form = forms.GoldImageStartForm(request.POST or None)
    problems: list[Problem] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                image = services.gold_image_create(actor=_actor(request), slug=data["slug"], name=data["name"],
                                                   os_type=data["os_type"], description=data["description"])
                gold_version = services.gold_version_create(
                    actor=_actor(request), gold_image=image, version=data["version"],
                    identity=settings.AZURE_TEMPLATE_IDENTITY, location=settings.AZURE_LOCATION)
        except services.ServiceError as exc:
            problems = exc.problems or [Problem("catalog", "", exc.message)]
            _add_errors(form, problems)
        else:
            return redirect(_step_url(gold_version, "source"))
    return render(request, "builds/wizard/start.html", {"form": form, "problems": _unplaced(form, problems)},
                  status=422 if request.method == "POST" else 200)


@login_required
@require_http_methods(["GET", "POST"])
def wizard_new_version(request, slug):
    """A new draft version of an existing gold image, empty or copied from another version."""
    gold_image = access.get_gold_image(request.user, slug, need="change")
    form = forms.new_version_form(request.POST or None, gold_image.versions.all())
    problems: list[Problem] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        based_on = gold_image.versions.filter(version=data["based_on"]).first() if data["based_on"] else None
        # A copy of a finished version starts with every step filled in: each step is open at once
        # (the progress list links them all), so changing one setting is not a walk through all
        # seven again. A copied draft is as far as its original.
        extra = {"wizard_step": based_on.wizard_step if based_on.is_draft else wizard.STEP_NAMES[-2]} if based_on else {
            "identity": settings.AZURE_TEMPLATE_IDENTITY, "location": settings.AZURE_LOCATION}
        try:
            gold_version = services.gold_version_create(actor=_actor(request), gold_image=gold_image,
                                                        version=data["version"], based_on=based_on,
                                                        changelog=data["changelog"], **extra)
        except services.ServiceError as exc:
            problems = exc.problems or [Problem("catalog", "", exc.message)]
            _add_errors(form, problems)
        else:
            for warning in gold_version.warnings:
                messages.warning(request, warning.message)
            return redirect(_step_url(gold_version, "source"))
    return render(request, "builds/wizard/new_version.html",
                  {"form": form, "gold_image": gold_image, "problems": _unplaced(form, problems)},
                  status=422 if request.method == "POST" else 200)


def _add_errors(form, problems, locate=wizard.field_for) -> None:
    for problem in problems:
        name = locate(problem.path, form.fields)
        if name and name in form.fields:
            form.add_error(name, problem.message)


def _unplaced(form, problems, locate=wizard.field_for) -> list[Problem]:
    return [p for p in problems if locate(p.path, form.fields) not in form.fields]


# --- Steps ---------------------------------------------------------------------------------------


def _draft(request, slug: str, version: str) -> GoldImageVersion:
    return access.get_gold_version(request.user, slug, version, need="change")


@login_required
@require_http_methods(["GET"])
def wizard_edit(request, slug, version):
    gold_version = _draft(request, slug, version)
    if not gold_version.is_draft:
        return _not_a_draft(request, gold_version)
    step = wizard.next_step(gold_version.wizard_step) if gold_version.wizard_step else "source"
    return redirect(_step_url(gold_version, step))


def _not_a_draft(request, gold_version):
    messages.warning(request, f"{gold_version} is {gold_version.status}: published versions never change. "
                              "Start a new version to change it.")
    return redirect(reverse("builds:gold-version", args=[gold_version.gold_image.slug, gold_version.version]))


@login_required
@require_http_methods(["GET", "POST"])
def wizard_step(request, slug, version, step):
    if step not in wizard.STEP_NAMES:
        raise Http404("No such wizard step.")
    gold_version = _draft(request, slug, version)
    if not gold_version.is_draft:
        return _not_a_draft(request, gold_version)
    reachable = wizard.reachable(gold_version.wizard_step)
    if step not in reachable:
        messages.info(request, f"Finish the {dict(wizard.STEPS)[reachable[-1]]} step first.")
        return redirect(_step_url(gold_version, reachable[-1]))
    handler = _HANDLERS[step]
    return handler(request, gold_version)


def _context(gold_version: GoldImageVersion, step: str, **extra) -> dict:
    reachable = wizard.reachable(gold_version.wizard_step)
    done = wizard.step_index(gold_version.wizard_step)
    steps = [{"name": name, "title": title, "number": index + 1, "done": index <= done, "current": name == step,
              "reachable": name in reachable, "url": _step_url(gold_version, name),
              "state": "current" if name == step else "done" if index <= done else "todo"}
             for index, (name, title) in enumerate(wizard.STEPS)]
    return {"gold_version": gold_version, "gold_image": gold_version.gold_image, "steps": steps, "step": step,
            "step_title": dict(wizard.STEPS)[step], "problems": [], **extra}


def _render_step(request, gold_version, step, context, *, status=200):
    return _page(request, "builds/wizard/step.html", "builds/wizard/_wizard.html",
                 _context(gold_version, step, **context), status=status)


def _save(request, gold_version, step: str, **changes):
    changes["wizard_step"] = wizard.completed(gold_version.wizard_step, step)
    services.gold_version_update(actor=_actor(request), gold_version=gold_version, **changes)
    return redirect(_step_url(gold_version, wizard.next_step(step)))


def _subscription(gold_version) -> str:
    return gold_version.subscription_id or settings.AZURE_SUBSCRIPTION_ID


# Source -----------------------------------------------------------------------------------------


def _source_initial(gold_version) -> dict:
    source = gold_version.source or {}
    initial = {"location": gold_version.location or settings.AZURE_LOCATION,
               "type": source.get("type") or "PlatformImage"}
    initial.update({key: value for key, value in source.items() if key in forms.SourceForm.base_fields})
    return initial


def _source_view_context(data: dict, gold_version) -> dict:
    lists, notes = preflight.catalog_choices(data)
    facts = None
    source = _source_from(data)
    if source and data.get("location"):
        facts, _ = preflight.source_facts(source, data["location"], subscription=_subscription(gold_version))
    return {"lists": lists, "catalog_notes": notes, "facts": facts}


def _source_from(data: dict) -> dict | None:
    kind = data.get("type")
    keys = {"PlatformImage": ("publisher", "offer", "sku", "version"), "ManagedImage": ("imageId",),
            "SharedImageVersion": ("imageVersionId",)}.get(kind)
    if not keys or not all(isinstance(data.get(key), str) and data.get(key) for key in keys):
        return None
    return {"type": kind, **{key: data[key].strip() for key in keys}}


def _step_source(request, gold_version):
    if request.method == "GET":
        form = forms.SourceForm(initial=_source_initial(gold_version))
        return _render_step(request, gold_version, "source",
                            {"form": form, **_source_view_context(_source_initial(gold_version), gold_version)})
    form = forms.SourceForm(request.POST)
    data = {key: request.POST.get(key, "") for key in forms.SourceForm.base_fields}
    if request.POST.get("action") == "browse":
        return _render_step(request, gold_version, "source", {"form": forms.SourceForm(initial=data),
                                                               **_source_view_context(data, gold_version)})
    if not form.is_valid():
        return _render_step(request, gold_version, "source", {"form": form, **_source_view_context(data, gold_version)},
                            status=422)
    location = form.cleaned_data["location"]
    checked = preflight.check_source_step(form.to_source(), location, os_type=gold_version.gold_image.os_type,
                                          subscription=_subscription(gold_version))
    source, facts, problems = checked.source, checked.facts, checked.problems
    errors = schema.errors(problems)
    if errors:
        _add_errors(form, errors)
        return _render_step(request, gold_version, "source",
                            {"form": form, "problems": _unplaced(form, problems),
                             **_source_view_context(data, gold_version)}, status=422)
    changes = {"source": source, "location": location}
    if facts is not None and facts.found and wizard.step_index(gold_version.wizard_step) < wizard.step_index("security"):
        changes["hyper_v_generation"] = facts.hyper_v_generation or gold_version.hyper_v_generation
        changes["security_type"] = wizard.DECLARED_FOR.get(facts.security_type, "Standard")
    return _save(request, gold_version, "source", **changes)


@login_required
@require_http_methods(["GET"])
def wizard_lookup(request, slug, version):
    """The Source step's catalog lists and source facts for what is chosen so far (an htmx fragment)."""
    gold_version = _draft(request, slug, version)
    data = {key: request.GET.get(key, "") for key in forms.SourceForm.base_fields}
    context = _context(gold_version, "source", form=forms.SourceForm(initial=data),
                       **_source_view_context(data, gold_version))
    response = render(request, "builds/wizard/_source_catalog.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response


# Security ---------------------------------------------------------------------------------------


def _step_security(request, gold_version):
    facts, notes = (preflight.source_facts(gold_version.source, gold_version.location,
                                           subscription=_subscription(gold_version))
                    if gold_version.source else (None, []))
    if request.method == "GET":
        form = forms.SecurityForm(initial={"security_type": gold_version.security_type,
                                           "hyper_v_generation": gold_version.hyper_v_generation})
        return _render_step(request, gold_version, "security", {"form": form, "facts": facts, "notes": notes})
    form = forms.SecurityForm(request.POST)
    if not form.is_valid():
        return _render_step(request, gold_version, "security", {"form": form, "facts": facts}, status=422)
    declared = Declared(form.cleaned_data["security_type"], form.cleaned_data["hyper_v_generation"],
                        gold_version.gold_image.os_type)
    problems = validation.check_declared(declared, facts) + notes
    if facts is None or not facts.found:
        problems.append(Problem("security.source-unknown", "security_type",
                                "The source image could not be found in the catalog, so its security type is unknown: "
                                "fix the Source step first."))
    errors = schema.errors(problems)
    if errors or request.POST.get("action") == "check":
        _add_errors(form, errors)
        checked = request.POST.get("action") == "check"
        return _render_step(request, gold_version, "security",
                            {"form": form, "facts": facts, "problems": _unplaced(form, problems), "checked": checked},
                            status=422 if errors else 200)
    return _save(request, gold_version, "security", security_type=declared.security_type,
                 hyper_v_generation=declared.hyper_v_generation)


# Customize and Validate: the step editors -------------------------------------------------------------


def _editor_lists(owner, names: tuple[str, ...]) -> list[dict]:
    labels = {"customize_before": "Before the department layers", "customize_after": "After the department layers",
              "validators_before": "Before the department layers' validators",
              "validators_after": "After the department layers' validators",
              "customize": "Steps", "validators": "Validators"}
    return [{"name": name, "label": labels[name], "steps": list(getattr(owner, name) or []),
             "entries": [{"step": step, "problems": []} for step in getattr(owner, name) or []]} for name in names]


def step_editor(request, *, owner, names: tuple[str, ...], os_type: str, department: bool, save, done_url: str,
                all_names: dict[str, tuple[str, ...]] | None = None, check_steps=None):
    """Handle one step-editor request (add, edit, reorder, remove) for the lists `names` of `owner`.

    Returns ("redirect", response) after a change, or ("render", context) to show the editor
    (with the open form and its errors when a save was refused). `save(list_name, steps)`
    stores a list through the owner's service. `check_steps(list_name, steps, index)`, when
    given, returns more problems of the step at `index` of the new list (paths from the step,
    `name` for its name), checked before anything is saved.
    """
    policy = preflight.policy_rules()
    lists = _editor_lists(owner, names)
    context: dict = {"lists": lists, "os_type": os_type, "editor": None, "editor_problems": [],
                     "step_types": forms.step_types(wizard.LIST_KIND[names[0]], os_type)}
    source = request.POST if request.method == "POST" else request.GET
    list_name = source.get("list", "")
    if request.method == "GET":
        if list_name in names and (source.get("add") or source.get("edit") not in (None, "")):
            context["editor"] = _open_editor(owner, list_name, source, os_type)
        return "render", context
    op = request.POST.get("op", "")
    if list_name not in names:
        context["editor_problems"] = [Problem("steps.list", "list", "Which list? The page is out of date; reload it.")]
        return "render", context
    steps = list(getattr(owner, list_name) or [])
    try:
        index = wizard.parse_index(request.POST.get("index"))
        if op == "save":
            kind = wizard.LIST_KIND[list_name]
            step_type = request.POST.get("type", "")
            allowed = forms.step_types(kind, os_type)
            form_class = (forms.CUSTOMIZER_FORMS if kind == "customizer" else forms.VALIDATOR_FORMS).get(step_type)
            if form_class is None or step_type not in allowed:
                context["editor_problems"] = [Problem("steps.type", "type",
                                                      f"Choose one of {', '.join(allowed)} for this image.")]
                return "render", context
            form = form_class(request.POST)
            editor = {"list": list_name, "index": "" if index is None else index, "type": step_type, "form": form}
            context["editor"] = editor
            if not form.is_valid():
                return "render", context
            item = form.to_step()
            problems = validation.check_step(item, "step", kind=kind, os_type=os_type, policy=policy,
                                             department=department)
            others = [s for name in (all_names or {}).get(kind, names) for i, s in
                      enumerate(getattr(owner, name) or []) if not (name == list_name and i == index)]
            if not wizard.unique_name(others, item["name"]):
                problems.append(Problem("steps.name-taken", "step.name",
                                        f"Another step is already called '{item['name']}'; names must be unique."))
            if check_steps is not None and not schema.errors(problems):
                candidate = wizard.edit_list(steps, "save", index, item)
                problems += check_steps(list_name, candidate, len(steps) if index is None else index)
            errors = schema.errors(problems)
            if errors:
                _add_errors(form, errors)
                context["editor_problems"] = _unplaced(form, errors)
                return "render", context
            steps = wizard.edit_list(steps, "save", index, item)
        else:
            steps = wizard.edit_list(steps, op, index)
    except wizard.ListEditError as exc:
        context["editor_problems"] = [Problem("steps.index", "index", str(exc))]
        return "render", context
    save(list_name, steps)
    return "redirect", redirect(done_url)


def _open_editor(owner, list_name: str, source, os_type: str) -> dict | None:
    kind = wizard.LIST_KIND[list_name]
    table = forms.CUSTOMIZER_FORMS if kind == "customizer" else forms.VALIDATOR_FORMS
    if source.get("add"):
        step_type = source["add"]
        if step_type not in forms.step_types(kind, os_type):
            return None
        return {"list": list_name, "index": "", "type": step_type, "form": table[step_type]()}
    try:
        index = int(source.get("edit"))
        step = (getattr(owner, list_name) or [])[index]
    except (TypeError, ValueError, IndexError):
        return None
    step_type = step.get("type") if isinstance(step, dict) else None
    if step_type not in table:
        return None
    return {"list": list_name, "index": index, "type": step_type,
            "form": table[step_type](initial=table[step_type].initial_from(step))}


def _step_problems_by_position(gold_version, step: str) -> dict[str, dict[int, list[Problem]]]:
    """The step report's problems, by draft list and index (for showing them beside each step)."""
    report = preflight.check_gold_version(gold_version, lookups=False)
    found: dict[str, dict[int, list[Problem]]] = {}
    key = "customize" if step == "customize" else "validate"
    before = len(gold_version.customize_before if step == "customize" else gold_version.validators_before)
    for problem in wizard.for_step(report.problems, step):
        where = wizard.locate(problem.path, before, key=key)
        if where:
            found.setdefault(where[0], {}).setdefault(where[1], []).append(problem)
    return found


def _step_list(request, gold_version, step: str):
    names = wizard.STEP_LISTS[step]
    os_type = gold_version.gold_image.os_type
    url = _step_url(gold_version, step)
    if request.method == "POST" and request.POST.get("op") == "next":
        return _finish_list_step(request, gold_version, step)

    def save(list_name, steps):
        services.gold_version_update(actor=_actor(request), gold_version=gold_version, **{list_name: steps})

    kind = "customizer" if step == "customize" else "validator"
    outcome, value = step_editor(request, owner=gold_version, names=names, os_type=os_type, department=False,
                                 save=save, done_url=url, all_names={kind: names})
    if outcome == "redirect":
        return value
    by_position = _step_problems_by_position(gold_version, step)
    for item in value["lists"]:
        for index, entry in enumerate(item["entries"]):
            entry["problems"] = by_position.get(item["name"], {}).get(index, [])
    extra = {}
    if step == "validate":
        extra["options_form"] = forms.ValidateOptionsForm(initial=gold_version.validate_options)
    refused = request.method == "POST" and (value.get("editor_problems") or (
        value.get("editor") and value["editor"]["form"].is_bound and value["editor"]["form"].errors))
    return _render_step(request, gold_version, step, {**value, **extra, "editor_url": url},
                        status=422 if refused else 200)


def _finish_list_step(request, gold_version, step: str):
    changes = {}
    if step == "validate":
        options = forms.ValidateOptionsForm(request.POST)
        options.is_valid()
        changes["validate_options"] = options.to_options()
        gold_version = wizard.draft_with(gold_version, **changes)
    report = preflight.check_gold_version(gold_version, lookups=False)
    errors = schema.errors(wizard.for_step(report.problems, step))
    if errors:
        names = wizard.STEP_LISTS[step]
        value = {"lists": _editor_lists(gold_version, names), "os_type": gold_version.gold_image.os_type,
                 "step_types": forms.step_types("customizer" if step == "customize" else "validator",
                                                gold_version.gold_image.os_type),
                 "editor": None, "editor_problems": [], "problems": errors,
                 "editor_url": _step_url(gold_version, step)}
        if step == "validate":
            value["options_form"] = forms.ValidateOptionsForm(initial=gold_version.validate_options)
        return _render_step(request, gold_version, step, value, status=422)
    return _save(request, gold_version, step, **changes)


def _step_customize(request, gold_version):
    return _step_list(request, gold_version, "customize")


def _step_validate(request, gold_version):
    return _step_list(request, gold_version, "validate")


# Distribute -------------------------------------------------------------------------------------


def _target_editor(request, gold_version, targets: list) -> tuple[str, str, object | None]:
    """The target type, index ("" for a new one) and form the page opens (`?add=` or `?edit=`)."""
    if (edit := request.GET.get("edit")) is not None:
        try:
            index = wizard.parse_index(edit)
            target = targets[index] if index is not None else None
        except (wizard.ListEditError, IndexError):
            target = None
        kind = target.get("type") if isinstance(target, dict) else None
        if kind in forms.TARGET_FORMS:
            return kind, str(index), forms.TARGET_FORMS[kind](initial=forms.TARGET_FORMS[kind].initial_from(target))
    wanted = request.GET.get("add", "")
    if wanted not in forms.TARGET_FORMS:
        return "", "", None
    initial = {"runOutputName": f"{wanted.lower()}-{len(targets) + 1}", "location": gold_version.location}
    if wanted == "SharedImage":
        initial[forms.region_field(0, "name")] = gold_version.location
    return wanted, "", forms.TARGET_FORMS[wanted](initial=initial)


def _step_distribute(request, gold_version):
    url = _step_url(gold_version, "distribute")
    targets = list(gold_version.distribute or [])
    definitions, note = preflight.gallery_definitions()
    disks = forms.DataDisksForm(request.POST if request.POST.get("op") == "next" else None,
                                initial=forms.DataDisksForm.initial_from(gold_version.extra_properties),
                                policy=preflight.policy_rules()) if wizard.data_disks_allowed() else None
    add, index, form = _target_editor(request, gold_version, targets)
    context = {"targets": targets, "definitions": definitions, "catalog_note": note, "form": form, "add": add,
               "index": index, "disks_form": disks}
    if request.method == "GET":
        return _render_step(request, gold_version, "distribute", context)
    op = request.POST.get("op", "")
    if op == "next":
        return _finish_distribute(request, gold_version, context, disks)
    if op in ("remove", "up", "down"):
        try:
            targets = wizard.edit_list(targets, op, wizard.parse_index(request.POST.get("index")))
        except wizard.ListEditError as exc:
            return _render_step(request, gold_version, "distribute",
                                {**context, "problems": [Problem("distribute.index", "index", str(exc))]}, status=422)
        services.gold_version_update(actor=_actor(request), gold_version=gold_version, distribute=targets)
        return redirect(url)
    wanted = request.POST.get("target_type", "")
    context.update(add=wanted, index=request.POST.get("index", ""))
    if wanted not in forms.TARGET_FORMS:
        return _render_step(request, gold_version, "distribute",
                            {**context, "problems": [Problem("distribute.type", "target_type",
                                                             "Choose a gallery, managed image or VHD target.")]},
                            status=422)
    if wanted == "SharedImage" and (op == "add-region" or op.startswith("remove-region-")):
        # Region rows are added and removed by submitting the form: shown again, nothing saved.
        context["form"] = forms.SharedImageTargetForm(initial=forms.SharedImageTargetForm.edit_rows(request.POST, op))
        return _render_step(request, gold_version, "distribute", context)
    form = context["form"] = forms.TARGET_FORMS[wanted](request.POST)
    if not form.is_valid():
        return _render_step(request, gold_version, "distribute", context, status=422)
    try:
        position = wizard.parse_index(request.POST.get("index"))
        changed = wizard.edit_list(targets, "save", position, form.to_target())
    except wizard.ListEditError as exc:
        return _render_step(request, gold_version, "distribute",
                            {**context, "problems": [Problem("distribute.index", "index", str(exc))]}, status=422)
    prefix = f"properties.distribute[{len(targets) if position is None else position}]"
    problems = [p for p in preflight.check_gold_version(wizard.draft_with(gold_version, distribute=changed)).problems
                if p.path == prefix or p.path.startswith((prefix + ".", prefix + "["))]
    errors = schema.errors(problems)
    if errors:
        _add_errors(form, errors, wizard.target_field)
        return _render_step(request, gold_version, "distribute",
                            {**context, "problems": _unplaced(form, errors, wizard.target_field)}, status=422)
    services.gold_version_update(actor=_actor(request), gold_version=gold_version, distribute=changed)
    for warning in problems:
        messages.warning(request, warning.message)
    return redirect(url)


def _finish_distribute(request, gold_version, context, disks):
    """Continue: the data disks are saved with the step, once every distribute check passes."""
    changes = {}
    if disks is not None:
        if not disks.is_valid():
            return _render_step(request, gold_version, "distribute", context, status=422)
        changes["extra_properties"] = disks.to_extra_properties(gold_version.extra_properties)
    report = preflight.check_gold_version(wizard.draft_with(gold_version, **changes))
    errors = schema.errors(wizard.for_step(report.problems, "distribute"))
    if errors:
        if disks is not None:
            _add_errors(disks, errors)
        problems = _unplaced(disks, errors) if disks is not None else errors
        return _render_step(request, gold_version, "distribute", {**context, "problems": problems}, status=422)
    return _save(request, gold_version, "distribute", **changes)


# Build VM and identity --------------------------------------------------------------------------------


def _buildvm_form(request, gold_version, policy):
    """The Build VM form with the region's sizes that fit the image (and a note when they
    cannot be listed), bound to the POST or initialised from the draft."""
    facts = None
    if gold_version.source and gold_version.location:
        facts, _ = preflight.source_facts(gold_version.source, gold_version.location,
                                          subscription=_subscription(gold_version))
    sizes, note = preflight.vm_size_choices(gold_version.location, subscription=_subscription(gold_version),
                                            generation=gold_version.hyper_v_generation,
                                            security_type=gold_version.security_type,
                                            architecture=facts.architecture if facts and facts.found else "")
    # A Goldsmith-named staging group is named per build (compose.staging_group); the draft keeps
    # only that choice and the policy's prefix.
    staging = compose.goldsmith_named(policy.staging_resource_group_prefix)
    example = compose.staging_group(staging, gold_slug=gold_version.gold_image.slug,
                                    subscription=_subscription(gold_version), build_id=None)
    options = {"sizes": sizes, "size_note": note, "goldsmith_staging": staging, "staging_example": example}
    if request.method == "POST":
        return forms.BuildVmForm(request.POST, **options)
    initial = forms.BuildVmForm.initial_from(gold_version, sizes=sizes, identity=settings.AZURE_TEMPLATE_IDENTITY)
    return forms.BuildVmForm(initial=initial, **options)


def _step_buildvm(request, gold_version):
    policy = preflight.policy_rules()
    context = {"policy": policy}
    form = _buildvm_form(request, gold_version, policy)
    if request.method == "GET":
        return _render_step(request, gold_version, "buildvm", {**context, "form": form})
    valid = form.is_valid()
    # The rules run on what the form could read even when a field was refused, so one submit
    # reports every problem (a timeout out of range and a size too small for the image together).
    # A field the form refused keeps only the form's message.
    changes = form.to_fields(gold_version)
    candidate = wizard.draft_with(gold_version, **changes)
    problems = wizard.for_step(preflight.check_gold_version(candidate).problems, "buildvm")
    refused = set(form.errors)
    errors = [problem for problem in schema.errors(problems)
              if wizard.field_for(problem.path, form.fields) not in refused]
    if errors or not valid:
        _add_errors(form, errors)
        return _render_step(request, gold_version, "buildvm",
                            {**context, "form": form, "problems": _unplaced(form, errors)}, status=422)
    return _save(request, gold_version, "buildvm", **changes)


# Review and publish -----------------------------------------------------------------------------------


def _review_context(gold_version) -> dict:
    report = preflight.review_report(gold_version)
    # Where the build runs (regions, sizes, roles, Azure Policy, staging) is checked again by every
    # build and does not hold publishing up, as in services.gold_version_publish.
    environment = [p for p in report.errors if validation.group_of(p) in preflight.ENVIRONMENT_GROUPS]
    return {"template": selectors.baseline(gold_version), "filled": selectors.filled_by_policy(gold_version),
            "report": report,
            "checks": report.checks, "errors": [p for p in report.errors if p not in environment],
            "environment_errors": environment, "warnings": [p for p in report.problems if p.severity != "error"]}


def _step_review(request, gold_version):
    if request.method == "POST":
        return wizard_publish(request, gold_version.gold_image.slug, gold_version.version)
    return _render_step(request, gold_version, "review", _review_context(gold_version))


@login_required
@require_POST
def wizard_publish(request, slug, version):
    """Publish the draft once every check passes (the catalog service re-checks the schema)."""
    gold_version = _draft(request, slug, version)
    if not gold_version.is_draft:
        return _not_a_draft(request, gold_version)
    if wizard.step_index(gold_version.wizard_step) < wizard.step_index("buildvm"):
        messages.info(request, "Go through every step before publishing.")
        return redirect(_step_url(gold_version, wizard.reachable(gold_version.wizard_step)[-1]))
    try:
        publish_request = approvals.publish_request_create(
            actor=_actor(request), target=gold_version, comment=request.POST.get("reason", "").strip()[:500])
    except services.ServiceError as exc:
        context = _review_context(gold_version)
        context["problems"] = exc.problems or [Problem("catalog", "", exc.message)]
        return _render_step(request, gold_version, "review", context, status=422)
    messages.success(request, f"Publishing {gold_version} is requested: another member of the security team "
                              "approves it (four eyes).")
    url = reverse("builds:approval-detail", args=[publish_request.uuid])
    if htmx.is_htmx(request):
        # The boosted wizard would swap only its own #wizard out of the request page (which has
        # none) and keep the review's address: load the request page whole, address and all.
        return HttpResponse(status=200, headers={"HX-Redirect": url})
    return redirect(url)


_HANDLERS = {"source": _step_source, "security": _step_security, "customize": _step_customize,
             "validate": _step_validate, "distribute": _step_distribute, "buildvm": _step_buildvm,
             "review": _step_review}
