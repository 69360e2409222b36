"""Periodic jobs, for `python manage.py rqcron builds.cron` (the scheduler process).

It also registers notify/'s: the one scheduler process runs them all.
"""

from django.conf import settings
from rq import cron

from builds import jobs, queue
from notify import jobs as notify_jobs

# Following and re-driving builds go on the builds queue, which workers serve first: a sweep is
# never held back by housekeeping (clean-ups) or notifications queued on default, so a build's
# end, and a rollout wave's, is seen within one period.
cron.register(jobs.builds_sweep, queue_name=queue.QUEUE, interval=settings.BUILD_SWEEP_SECONDS,
              job_timeout=300, result_ttl=600)
cron.register(jobs.builds_reconcile, queue_name=queue.QUEUE, interval=settings.BUILD_RECONCILE_SECONDS,
              job_timeout=300, result_ttl=600)
# Sessions live in the database; expired ones are never deleted otherwise.
cron.register(jobs.sessions_clear, queue_name="default", cron="17 3 * * *", job_timeout=600, result_ttl=600)
# Notifications: deliveries a lost job left behind, and the audit chain's periodic check.
cron.register(notify_jobs.notify_reconcile, queue_name="default", interval=settings.NOTIFY_RECONCILE_SECONDS,
              job_timeout=300, result_ttl=600)
cron.register(notify_jobs.audit_verify, queue_name="default", cron="41 * * * *", job_timeout=1800, result_ttl=3600)
# Kept build logs older than BUILD_LOG_RETENTION_DAYS.
cron.register(jobs.build_logs_prune, queue_name="default", cron="37 3 * * *", job_timeout=1800, result_ttl=600)
# Revoked versions past the policy's delete_revoked_after_days: one deletion request each.
cron.register(jobs.revoked_deletions_request, queue_name="default", cron="29 * * * *", job_timeout=600,
              result_ttl=600)
# The source watch: newer or deprecated source images of gold images that follow "latest".
cron.register(jobs.source_watch, queue_name="default", interval=settings.SOURCE_WATCH_HOURS * 3600, job_timeout=900,
              result_ttl=3600)
# Patch schedules: each schedule keeps its own cron expression and time zone in the database, so
# one job a minute fires the due ones (builds/schedules.py) instead of one registration each.
cron.register(jobs.schedules_fire, queue_name="default", cron="* * * * *", job_timeout=600, result_ttl=600)
