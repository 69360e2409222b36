"""Figures for the operator page: queues, workers, the sweep's age and ARM's rate limits.

Reads only; Redis, Azure and the build counts are asked here so the page (web/views_portal.py)
asks nobody.
"""

from __future__ import annotations

import logging

import django_rq
from django.conf import settings
from django.db.models import Count
from rq import Worker
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from builds import azure, monitor, stuck
from builds.models import Build

log = logging.getLogger(__name__)
STUCK_ROWS = 50  # the operator page lists this many stuck builds


def operator_summary() -> dict:
    """Queue lengths, workers, sweep age, ARM rate limits and the Azure mode. Never raises:
    an operator page must render when Redis is down, which is when it is needed most."""
    summary: dict = {"queues": [], "workers": [], "redis_error": "", "sweep_age": None,
                     "sweep_seconds": settings.BUILD_SWEEP_SECONDS, "rate_limits": {}, "gate": 0.0,
                     "emulator": settings.AZURE_EMULATOR, "arm_endpoint": settings.AZURE_ARM_ENDPOINT,
                     "subscription": settings.AZURE_SUBSCRIPTION_ID, "resource_group": settings.AZURE_RESOURCE_GROUP,
                     "location": settings.AZURE_LOCATION}
    try:
        for name in settings.RQ_QUEUES:
            queue = django_rq.get_queue(name)
            summary["queues"].append({
                "name": name, "queued": queue.count,
                "started": StartedJobRegistry(queue=queue).count,
                "scheduled": ScheduledJobRegistry(queue=queue).count,
                "failed": FailedJobRegistry(queue=queue).count,
            })
        connection = django_rq.get_connection("builds")
        for worker in Worker.all(connection=connection):
            job = worker.get_current_job()
            summary["workers"].append({
                "name": worker.name, "state": worker.get_state(), "queues": ", ".join(worker.queue_names()),
                "heartbeat": worker.last_heartbeat, "job": job.func_name if job else "",
                "successful": worker.successful_job_count, "failed": worker.failed_job_count,
            })
    except Exception as exc:  # Redis unreachable: say so instead of failing the page
        log.warning("operator page could not read Redis", exc_info=True)
        summary["redis_error"] = f"{type(exc).__name__}: {exc}"
    try:
        summary["sweep_age"] = monitor.last_sweep_age()
        summary["rate_limits"] = azure.rate_limits(settings.AZURE_SUBSCRIPTION_ID)
        summary["gate"] = azure.gate_remaining(settings.AZURE_SUBSCRIPTION_ID)
    except Exception:
        log.warning("operator page could not read the sweep or rate-limit figures", exc_info=True)
    summary["sweep_late"] = (summary["sweep_age"] is None
                             or summary["sweep_age"] > 2 * settings.BUILD_SWEEP_SECONDS)
    return summary


def build_figures() -> dict:
    """Builds per state (`states`: value, label and count, every state), the stuck builds
    (`stuck`: how many; `stuck_builds`: the longest waiting, each with `stuck_reason`; the
    definition is builds/stuck.py's, the one the funnel uses to let the admin role cancel
    them) and `stuck_minutes`: someone should look at those in Azure."""
    counts = dict(Build.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    found = stuck.stuck_builds()
    rows = list(found.only("uuid", "state", "template_name", "created_at", "cancel_requested_at", "lease_until")
                [:STUCK_ROWS])
    for build in rows:
        build.stuck_reason = stuck.reason(build)
    return {
        "states": [(value, label, counts.get(value, 0)) for value, label in Build.State.choices],
        "stuck": found.count(),
        "stuck_builds": rows,
        "stuck_minutes": settings.BUILD_CANCEL_STUCK_MINUTES,
    }
