"""Rollout pages: the list (with the form that plans a rollout), a rollout's page (its plan
before it starts, then per wave and per layer the state, build links, failures and time left,
refreshed by htmx while it runs), its actions, and the one-click draft for a layer whose range
excludes the new gold version. The services are builds/rollouts.py's."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from builds import access, approvals, rollouts, services
from builds.models import RolloutItem
from web import htmx

POLL_SECONDS = 3  # how often a running rollout's page refreshes its live fragment


class RolloutForm(forms.Form):
    gold_image = forms.SlugField(label="Gold image")
    version = forms.CharField(max_length=32, label="Version")
    canary = forms.IntegerField(min_value=0, max_value=1000, initial=1, label="Canary wave")
    wave_size = forms.IntegerField(min_value=1, max_value=1000, initial=10, label="Wave size")
    max_failure_rate = forms.FloatField(min_value=0, max_value=1, initial=0.2, label="Stop above failure rate")
    channel = forms.SlugField(required=False, label="Promote to channel after success (a request)")


@login_required
@require_GET
def rollout_list(request):
    access.require(request.user, access.SECURITY, access.EDITOR, access.AUDITOR)
    rows = rollouts.visible(request.user)[:100]
    form = RolloutForm(initial={"gold_image": request.GET.get("gold_image", ""),
                                "version": request.GET.get("version", "")})
    return htmx.render(request, "builds/rollouts/list.html", {
        "rollouts": rows, "form": form, "may_start": access.roles_of(request.user).security})


@login_required
@require_POST
def rollout_create(request):
    access.require(request.user, access.SECURITY)
    form = RolloutForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        gold_version = access.get_gold_version(request.user, data["gold_image"], data["version"], need="build")
        try:
            rollout = rollouts.rollout_create(
                actor=request.user, gold_version=gold_version, canary_size=data["canary"],
                wave_size=data["wave_size"], max_failure_rate=data["max_failure_rate"], channel=data["channel"])
        except services.ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            return redirect("builds:rollout-detail", rollout_uuid=rollout.uuid)
    return htmx.render(request, "builds/rollouts/list.html", {
        "rollouts": rollouts.visible(request.user)[:100], "form": form, "may_start": True}, status=422)


def _context(request, rollout) -> dict:
    return {"rollout": rollout, "summary": rollouts.describe(rollout, request.user),
            "may_act": access.roles_of(request.user).security, "poll_seconds": POLL_SECONDS}


@login_required
@require_GET
def rollout_detail(request, rollout_uuid):
    rollout = rollouts.get_rollout(request.user, rollout_uuid)
    return htmx.render(request, "builds/rollouts/detail.html", _context(request, rollout),
                       fragment="builds/rollouts/_live.html")


@login_required
@require_POST
def rollout_action(request, rollout_uuid, action):
    rollout = rollouts.get_rollout(request.user, rollout_uuid, need="change")
    service = {"start": rollouts.rollout_start, "pause": rollouts.rollout_pause,
               "resume": rollouts.rollout_resume, "cancel": rollouts.rollout_cancel}.get(action)
    if service is None:
        return redirect("builds:rollout-detail", rollout_uuid=rollout.uuid)
    try:
        service(actor=request.user, rollout=rollout)
    except approvals.NotAllowed as exc:
        access.deny(request.user, exc.message, obj=rollout)
    except services.ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("builds:rollout-detail", rollout_uuid=rollout.uuid)


@login_required
@require_POST
def rollout_prepare_draft(request, rollout_uuid, item_id):
    rollout = rollouts.get_rollout(request.user, rollout_uuid)
    item = rollouts.entries(rollout, request.user).filter(pk=item_id, kind=RolloutItem.Kind.NEEDS_ACTION).first()
    if item is None:
        raise Http404("No such entry in this rollout.")
    try:
        draft = rollouts.rollout_prepare_draft(actor=request.user, item=item)
    except approvals.NotAllowed as exc:
        access.deny(request.user, exc.message, obj=rollout, department=item.department_id)
    except services.ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Draft {draft} prepared: review it and ask for its publication.")
    return redirect("builds:rollout-detail", rollout_uuid=rollout.uuid)
