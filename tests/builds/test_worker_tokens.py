"""The worker asks Entra ID for tokens once; the jobs it forks inherit them (builds/worker.py).

A real `manage.py rqworker` runs every job of three builds, the sweeps included, against the
emulator; its Entra ID log says how often the worker's processes asked for a token.
"""

from __future__ import annotations

import time

import django_rq
import pytest

from builds import azure, jobs
from builds.models import Build
from tests.builds.test_orchestration_faults import request_builds

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN_OPERATIONS = ("Entra_Token", "Entra_TokenV1")


def _finish_in_the_worker(builds, timeout: float = 90) -> None:
    """Enqueue the sweep for the worker (not run here) until every build has ended."""
    queue = django_rq.get_queue("builds")
    deadline = time.monotonic() + timeout
    while not all(Build.objects.get(pk=b.pk).is_terminal for b in builds):
        assert time.monotonic() < deadline, [Build.objects.get(pk=b.pk).state for b in builds]
        if queue.count == 0:
            queue.enqueue(jobs.builds_sweep)
        time.sleep(0.3)


def test_forked_jobs_use_the_tokens_the_worker_fetched_before_forking(azure_emulator, alice, rq_worker):
    azure_emulator.set_time_scale(20000)
    builds = request_builds(alice, 3)  # this process's own look-ups come before the count starts
    since = azure_emulator.last_seq()

    _finish_in_the_worker(builds)

    assert all(Build.objects.get(pk=b.pk).state == Build.State.SUCCEEDED for b in builds), rq_worker.log()
    finished = django_rq.get_queue("builds").finished_job_registry.count
    finished += django_rq.get_queue("default").finished_job_registry.count
    assert finished >= 3 * len(builds)  # request, submit twice, clean-up... each in its own fork
    tokens = [r for r in azure_emulator.requests(since) if r["operation"] in TOKEN_OPERATIONS]
    # One per scope the jobs use (ARM's and Storage's), fetched by the worker before its first fork.
    assert len(tokens) <= len((azure.ARM_SCOPE, azure.STORAGE_SCOPE)), (len(tokens), finished)
    assert "sharing Entra ID tokens" not in rq_worker.log()  # no warning: the fetch worked


def _token_requests(emulator, since: int) -> int:
    return len([r for r in emulator.requests(since) if r["operation"] in TOKEN_OPERATIONS])


def test_the_worker_renews_a_token_near_its_end_before_the_job_would(azure_emulator):
    from azure.core.credentials import AccessToken

    since = azure_emulator.last_seq()
    azure.share_tokens()
    assert _token_requests(azure_emulator, since) == len(azure.JOB_SCOPES)
    credential = azure._shared_credential()
    fetched = credential.get_token(azure.ARM_SCOPE)
    azure.share_tokens()  # fresh: nothing to do
    assert _token_requests(azure_emulator, since) == len(azure.JOB_SCOPES)

    # Eight minutes left: still good for a job, due for renewal in the worker.
    azure._inherited[azure.ARM_SCOPE] = AccessToken(fetched.token, int(time.time()) + 480)
    assert credential.get_token(azure.ARM_SCOPE).token == fetched.token
    assert _token_requests(azure_emulator, since) == len(azure.JOB_SCOPES)
    azure.share_tokens()
    assert _token_requests(azure_emulator, since) == len(azure.JOB_SCOPES) + 1  # that scope alone
    assert azure._inherited[azure.ARM_SCOPE].expires_on > time.time() + 3000

    # Four minutes left: a job asks Entra ID itself rather than use a token about to expire.
    azure._inherited[azure.ARM_SCOPE] = AccessToken("nearly-expired", int(time.time()) + 240)
    assert credential.get_token(azure.ARM_SCOPE).token != "nearly-expired"
    # A claims challenge always goes to Entra ID.
    assert credential.get_token(azure.ARM_SCOPE, claims='{"access_token":{}}').token


def test_a_failed_fetch_is_logged_without_secrets_and_jobs_ask_for_themselves(azure_emulator, settings, caplog):
    azure_emulator.add_fault("Entra_Token*", 503, count=1)  # the worker does not retry: the job is waiting
    since = azure_emulator.last_seq()

    azure.share_tokens()  # never raises: the job can still ask for itself

    assert azure._inherited == {}
    warnings = [r.getMessage() for r in caplog.records if r.name == "builds.azure"]
    assert any("Not sharing Entra ID tokens" in message for message in warnings), warnings
    assert not any(settings.AZURE_CLIENT_SECRET in message for message in warnings)
    asked = _token_requests(azure_emulator, since)
    assert asked >= 1
    azure.share_tokens()  # within a minute of the failure: no new attempt
    assert _token_requests(azure_emulator, since) == asked
    assert azure._shared_credential().get_token(azure.ARM_SCOPE).token  # the fault has passed
    assert _token_requests(azure_emulator, since) == asked + 1
