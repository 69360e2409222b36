"""Periodic jobs, for `python manage.py rqcron builds.cron` (the scheduler process)."""

from django.conf import settings
from rq import cron

from builds import jobs

cron.register(jobs.builds_sweep, queue_name="default", interval=settings.BUILD_SWEEP_SECONDS,
              job_timeout=300, result_ttl=600)
cron.register(jobs.builds_reconcile, queue_name="default", interval=settings.BUILD_RECONCILE_SECONDS,
              job_timeout=300, result_ttl=600)
