"""Periodic jobs, for `python manage.py rqcron builds.cron` (the scheduler process)."""

from django.conf import settings
from rq import cron

from builds import jobs

cron.register(jobs.builds_sweep, queue_name="default", interval=settings.BUILD_SWEEP_SECONDS,
              job_timeout=300, result_ttl=600)
cron.register(jobs.builds_reconcile, queue_name="default", interval=settings.BUILD_RECONCILE_SECONDS,
              job_timeout=300, result_ttl=600)
# Sessions live in the database; expired ones are never deleted otherwise.
cron.register(jobs.sessions_clear, queue_name="default", cron="17 3 * * *", job_timeout=600, result_ttl=600)
# Kept build logs older than BUILD_LOG_RETENTION_DAYS.
cron.register(jobs.build_logs_prune, queue_name="default", cron="37 3 * * *", job_timeout=1800, result_ttl=600)
