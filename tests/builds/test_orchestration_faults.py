"""Faults: dead workers, a flushed Redis, a failing and throttling Azure. No build is lost or doubled.

Real `manage.py rqworker` processes run the jobs against the emulator; this process plays
the scheduler (sweep and reconcile). After every fault, each build must reach the state the
emulator reports, with exactly one accepted template PUT and at most one accepted run, and
no request may leave inside a Retry-After window.
"""

from __future__ import annotations

import datetime as dt

import django_rq
import pytest

from builds import azure, jobs, queue, services
from builds.models import Build
from tests import factories
from tests.support.workers import WorkerProcess, run_sweeps

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
RG = "goldsmith-images"
SUB = "22222222-2222-2222-2222-222222222222"


@pytest.fixture
def quick_recovery(settings, worker_env):
    """Short leases (a dead worker's build is taken over after 2 s), short backoff and throttle
    floor, and templates kept after the build so the test can compare with what Azure says.

    The backoff is capped at 4 s: with a quarter of all requests failing, an unlucky build meets
    eight failures in a row now and then, and its next try would otherwise be minutes away."""
    values = {"BUILD_LEASE_SECONDS": 2, "BUILD_RETRY_BASE_SECONDS": 1, "BUILD_RETRY_MAX_SECONDS": 4,
              "AZURE_THROTTLE_MIN_SECONDS": 2, "BUILD_TEMPLATE_RETENTION_HOURS": 24}
    for name, value in values.items():
        setattr(settings, name, value)
        worker_env[name] = str(value)
    return worker_env


def request_builds(actor, count=1):
    gold_version = factories.make_gold_version(actor=actor)
    return [services.build_request(actor=actor, gold_version=gold_version) for _ in range(count)]


def assert_converged(emulator, builds):
    """Every build matches the emulator's truth, with one PUT and at most one run."""
    log = emulator.requests()
    for build in builds:
        build = Build.objects.get(pk=build.pk)
        mine = [r for r in log if r.get("template") == build.template_name and 200 <= r["status"] < 300]
        puts = [r for r in mine if r["operation"] == "VirtualMachineImageTemplates_CreateOrUpdate"]
        runs = [r for r in mine if r["operation"] == "VirtualMachineImageTemplates_Run"]
        assert len(puts) == 1, f"{build.template_name}: {len(puts)} template PUTs"
        assert len(runs) <= 1, f"{build.template_name}: {len(runs)} runs"
        # Read Azure's truth through the control API: an ARM read here would itself be a request
        # inside a Retry-After window the portal was told about.
        internals = emulator.control("GET", f"imagebuilder/templates/{SUB}/{RG}/{build.template_name}").json()
        run_state = internals["rendered"]["properties"]["lastRunStatus"]["runState"]
        expected = {"Succeeded": "succeeded", "Failed": "failed", "Canceled": "canceled",
                    "PartiallySucceeded": "partially_succeeded"}[run_state]
        assert build.state == expected, f"{build.template_name}: {build.state}, Azure says {run_state}"


def assert_retry_after_honoured(emulator, tolerance=0.25):
    """No ARM request from the worker identity inside the window a 429/503 Retry-After opened.

    A request already on the wire when the throttling answer left cannot have seen it, hence
    the small tolerance.
    """
    log = [r for r in emulator.requests() if r["path"].lower().startswith("/subscriptions/")]
    windows = []
    for entry in log:
        if entry["status"] in (429, 503) and entry.get("retryAfter"):
            # The window opens when the answer left (the log's time is the arrival).
            start = _time(entry["time"]) + dt.timedelta(milliseconds=entry.get("durationMs") or 0)
            windows.append((start + dt.timedelta(seconds=tolerance),
                            start + dt.timedelta(seconds=float(entry["retryAfter"])), entry))
    for entry in log:
        moment = _time(entry["time"])
        for start, end, opened in windows:
            assert not (start < moment < end and entry["seq"] > opened["seq"]), (
                f"request {entry} inside the Retry-After window of {opened} (until {end})")


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")[:26] + "+00:00")


def finish_all(builds, timeout=90):
    try:
        run_sweeps(lambda: all(Build.objects.get(pk=b.pk).is_terminal for b in builds), timeout=timeout,
                   interval=0.2)
    except AssertionError as error:  # say where each build stands, for a failure seen only in CI
        raise AssertionError(f"{error}\n" + "\n".join(_where(b) for b in builds)) from None


def _where(build) -> str:
    build = Build.objects.get(pk=build.pk)
    job = django_rq.get_queue("builds").fetch_job(jobs.submit_job_id(build))
    return (f"{build.template_name}: {build.state}/{build.sub_state} attempts={build.attempts} "
            f"error={build.error_code!r} lease_until={build.lease_until} next_attempt_at={build.next_attempt_at} "
            f"job={job.get_status() if job else None} now={dt.datetime.now(dt.UTC)}")


# Every step boundary of submit, killing the work-horse alone or the whole worker.
BOUNDARIES = ["submit.claimed", "submit.template_created", "submit.provisioned", "submit.run_started"]


@pytest.mark.parametrize("target", ["horse", "worker"])
@pytest.mark.parametrize("point", BOUNDARIES)
def test_a_worker_killed_at_any_step_boundary_loses_and_doubles_nothing(point, target, azure_emulator, alice,
                                                                       quick_recovery, tmp_path):
    azure_emulator.set_time_scale(20000)
    for attempt in range(2):  # the same fault again, on a fresh build
        crashing = WorkerProcess({**quick_recovery, "GOLDSMITH_FAULT_POINTS": f"{point}:{target}"},
                                 tmp_path / f"crash-{attempt}.log").start()
        (build,) = request_builds(alice)
        # The crashing worker takes the job and dies at the point.
        azure_emulator.wait_for(lambda worker=crashing: _died(worker), timeout=30)
        crashing.stop()
        healthy = WorkerProcess(quick_recovery, tmp_path / f"healthy-{attempt}.log").start()
        try:
            finish_all([build])
        finally:
            healthy.stop()
        assert Build.objects.get(pk=build.pk).state == Build.State.SUCCEEDED
        assert_converged(azure_emulator, [build])


def _died(worker: WorkerProcess) -> bool:
    """The whole worker exited, or its work-horse was killed (RQ then records the job as failed)."""
    return worker.proc.poll() is not None or django_rq.get_queue("builds").failed_job_registry.count > 0


def test_redis_flushed_mid_flight_loses_no_build(azure_emulator, alice, quick_recovery, rq_worker):
    azure_emulator.set_time_scale(3000)
    builds = request_builds(alice, 4)
    azure_emulator.wait_for(lambda: Build.objects.filter(state=Build.State.RUNNING).exists(), timeout=30)
    django_rq.get_connection("builds").flushall()
    finish_all(builds)
    assert_converged(azure_emulator, builds)
    assert all(Build.objects.get(pk=b.pk).state == Build.State.SUCCEEDED for b in builds)


def test_server_errors_and_dropped_connections_fail_no_build(azure_emulator, alice, quick_recovery, rq_worker):
    azure_emulator.set_time_scale(5000)
    azure_emulator.freeze()  # requested (and checked against the catalog) before the faults begin
    builds = request_builds(alice, 5)
    azure_emulator.add_fault("*", 500, rate=0.1)
    azure_emulator.add_fault("*", 503, rate=0.1)
    azure_emulator.add_fault("*", drop=True, rate=0.05)
    azure_emulator.unfreeze()
    finish_all(builds, timeout=150)
    azure_emulator.clear_faults()
    assert_converged(azure_emulator, builds)
    assert all(Build.objects.get(pk=b.pk).state == Build.State.SUCCEEDED for b in builds)
    assert any(r["status"] in (500, 503, 0) for r in azure_emulator.requests())


def test_a_429_storm_is_waited_out_without_a_request_inside_retry_after(azure_emulator, alice, quick_recovery,
                                                                        rq_worker):
    azure_emulator.set_time_scale(5000)
    azure_emulator.freeze()  # requested (and checked against the catalog) before the storm begins
    builds = request_builds(alice, 3)
    azure_emulator.add_fault("*", 429, rate=0.2, retry_after=2)
    azure_emulator.unfreeze()
    finish_all(builds, timeout=240)
    azure_emulator.clear_faults()
    assert_converged(azure_emulator, builds)
    assert all(Build.objects.get(pk=b.pk).state == Build.State.SUCCEEDED for b in builds)
    assert any(r["status"] == 429 for r in azure_emulator.requests())
    assert_retry_after_honoured(azure_emulator)
    assert azure.gate_remaining("22222222-2222-2222-2222-222222222222") < 3


@pytest.fixture
def long_lease(settings, worker_env):
    """The production lease (300 s): a dead worker's build must not wait for it to run out.
    Templates are kept after the build, so the test can compare with what Azure says."""
    for name, value in {"BUILD_LEASE_SECONDS": 300, "BUILD_TEMPLATE_RETENTION_HOURS": 24}.items():
        setattr(settings, name, value)
        worker_env[name] = str(value)
    return worker_env


@pytest.mark.parametrize(("target", "within"), [("horse", 15), ("worker", queue.WORKER_SILENT_SECONDS + 20)])
def test_a_build_whose_worker_died_resumes_long_before_its_lease_runs_out(target, within, azure_emulator, alice,
                                                                          long_lease, tmp_path):
    azure_emulator.set_time_scale(20000)
    crashing = WorkerProcess({**long_lease, "GOLDSMITH_FAULT_POINTS": f"submit.template_created:{target}"},
                             tmp_path / "crash.log").start()
    (build,) = request_builds(alice)
    azure_emulator.wait_for(lambda: _died(crashing), timeout=30)
    crashing.stop()
    held = Build.objects.get(pk=build.pk)
    assert held.lease_until is not None  # the dead job still holds the build for 300 s
    healthy = WorkerProcess(long_lease, tmp_path / "healthy.log").start()
    try:
        died_at = dt.datetime.now(dt.UTC)
        finish_all([build], timeout=within)
    finally:
        healthy.stop()
    assert dt.datetime.now(dt.UTC) - died_at < dt.timedelta(seconds=within)
    assert Build.objects.get(pk=build.pk).state == Build.State.SUCCEEDED
    assert_converged(azure_emulator, [build])
