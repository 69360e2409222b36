"""Which builds are stuck: one definition for the operator page (builds/ops.py), the funnel
(builds/access.py: the admin role may cancel a stuck build, nothing else) and the cancel service.

A build is stuck when

- it has been canceling for over BUILD_CANCEL_STUCK_MINUTES (since the cancel was asked), or
  the sweep already reported it stuck (`stuck_reported`);
- it is pending or submitting and its submit job's lease has expired (the job died or hangs),
  or no job ever took it for over BUILD_LEASE_SECONDS with no retry due (no worker runs).

A build waiting for a retry (`next_attempt_at` in the future) or held by a live lease is not.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from builds.models import Build

State = Build.State


def stuck_q(now: dt.datetime | None = None) -> Q:
    """A Q selecting the stuck builds at `now`."""
    now = now or timezone.now()
    cancel_cutoff = now - dt.timedelta(minutes=settings.BUILD_CANCEL_STUCK_MINUTES)
    lease_cutoff = now - dt.timedelta(seconds=settings.BUILD_LEASE_SECONDS)
    canceling = Q(state=State.CANCELING) & (
        Q(stuck_reported=True) | Q(cancel_requested_at__lt=cancel_cutoff)
        | Q(cancel_requested_at__isnull=True, updated_at__lt=cancel_cutoff))
    no_retry_due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    waiting = Q(state__in=(State.PENDING, State.SUBMITTING)) & (
        Q(lease_until__lt=now) | (Q(lease_until__isnull=True, created_at__lt=lease_cutoff) & no_retry_due))
    return canceling | waiting


def stuck_builds():
    """The stuck builds, longest waiting first."""
    return Build.objects.filter(stuck_q()).order_by("created_at")


def is_stuck(build: Build, now: dt.datetime | None = None) -> bool:
    """Whether `build` is stuck now (read from the database, so the answer matches the page's)."""
    return Build.objects.filter(pk=build.pk).filter(stuck_q(now)).exists()


def reason(build: Build) -> str:
    """Why the build counts as stuck, in words for the operator page."""
    if build.state == State.CANCELING:
        return f"canceling for over {settings.BUILD_CANCEL_STUCK_MINUTES} minutes"
    if build.lease_until is not None:
        return "its submit job's lease expired"
    return "no worker has taken it"
