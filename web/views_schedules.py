"""A gold image's patch schedule: set or delete it (security team; builds/schedules.py)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from builds import access, schedules, services
from builds.models import PatchSchedule


class ScheduleForm(forms.Form):
    cron = forms.CharField(label="Cron expression", max_length=100,
                           help_text="minute hour day-of-month month day-of-week; 0 3 * * 2#2 is 03:00 on the "
                                     "second Tuesday of each month.")
    time_zone = forms.CharField(label="Time zone", max_length=64, initial="UTC",
                                help_text="An IANA name, e.g. Europe/Berlin.")


def _security_gold_image(request, slug):
    gold_image = access.get_gold_image(request.user, slug)
    if not access.roles_of(request.user).security:
        access.deny(request.user, "only the security team sets patch schedules", obj=gold_image)
    return gold_image


@login_required
@require_POST
def schedule_set(request, slug):
    gold_image = _security_gold_image(request, slug)
    form = ScheduleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The schedule needs a cron expression and a time zone.")
        return redirect("builds:gold-detail", slug=gold_image.slug)
    try:
        schedules.schedule_set(actor=request.user, gold_image=gold_image, cron=form.cleaned_data["cron"],
                               time_zone=form.cleaned_data["time_zone"])
    except services.ServiceError as exc:
        messages.error(request, " ".join([str(exc), *(problem.message for problem in exc.problems)]))
    else:
        messages.success(request, "Patch schedule saved.")
    return redirect("builds:gold-detail", slug=gold_image.slug)


@login_required
@require_POST
def schedule_delete(request, slug):
    gold_image = _security_gold_image(request, slug)
    schedule = PatchSchedule.objects.filter(gold_image=gold_image).first()
    if schedule is not None:
        schedules.schedule_delete(actor=request.user, schedule=schedule)
        messages.success(request, "Patch schedule deleted.")
    return redirect("builds:gold-detail", slug=gold_image.slug)
