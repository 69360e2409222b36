"""The build policy page (security team changes it; editors and auditors read it) and the
template check page (paste a template, see every problem, as `manage.py checktemplate`)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from builds import access, importer, policies, preflight, schema, services, validation
from builds.schema import Problem
from web import forms, htmx
from web.views_wizard import _add_errors, _unplaced

READERS = (access.SECURITY, access.EDITOR, access.AUDITOR)


@login_required
@require_http_methods(["GET", "POST"])
def policy_page(request, name=preflight.DEFAULT_POLICY):
    """The current rules and their history; the security team changes them here (POST)."""
    roles = access.require(request.user, *READERS)
    history = policies.policy_history(name)
    if not history and name != preflight.DEFAULT_POLICY and request.method == "GET":
        raise Http404("No such policy.")
    current = history[0] if history else None
    rules = validation.PolicyRules.from_json(current.rules if current else {}).as_json()
    form = forms.PolicyForm(initial=forms.PolicyForm.initial_from(rules)) if roles.security else None
    problems: list[Problem] = []
    status = 200
    if request.method == "POST":
        access.require(request.user, access.SECURITY)
        form = forms.PolicyForm(request.POST)
        if form.is_valid():
            try:
                saved = policies.policy_update(actor=request.user, name=name, rules=form.to_rules(),
                                               comment=form.cleaned_data.get("comment", ""))
            except services.ServiceError as exc:
                problems = exc.problems or [Problem("policy", "", exc.message)]
                _add_errors(form, problems)
            else:
                if current is not None and saved.pk == current.pk:
                    messages.info(request, "Nothing changed.")
                else:
                    messages.success(request, f"Saved as version {saved.version}.")
                url = reverse("builds:policy") if name == preflight.DEFAULT_POLICY else \
                    reverse("builds:policy-named", args=[name])
                return redirect(url)
        status = 422
    return render(request, "builds/policy.html", {
        "name": name, "current": current, "history": history, "rules": rules, "form": form,
        "problems": _unplaced(form, problems) if form else [], "can_change": roles.security,
        "names": policies.policy_names()}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def checktemplate_page(request):
    """Paste any Image Builder template and see what Goldsmith (and Azure) would refuse."""
    access.require(request.user, *READERS)
    names = policies.policy_names()
    form = forms.CheckTemplateForm(request.POST or None, policies=names, initial={"policy": preflight.DEFAULT_POLICY})
    context: dict = {"form": form, "checked": False}
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        context["checked"] = True
        try:
            parsed = importer.parse(importer.load(data["template"]))
        except importer.ImportError_ as exc:
            problems = exc.problems or [Problem("import.unreadable", "template", str(exc))]
            context.update(problems=problems, errors=schema.errors(problems), form_name="", checks=[])
        else:
            report = preflight.body_report(parsed.body, policy=data["policy"] or None, lookups=not data["offline"],
                                           os_type=importer.guess_os_type(parsed.body))
            problems = parsed.problems + report.problems
            context.update(problems=problems, errors=schema.errors(problems), form_name=parsed.form,
                           checks=validation.summarize(problems, report.ran))
        if context["errors"]:
            status = 422
    elif request.method == "POST":
        status = 422
    return htmx.render(request, "builds/checktemplate.html", context, status=htmx.error_status(request, status),
                       fragment="builds/_checktemplate_result.html" if context["checked"] else None)
