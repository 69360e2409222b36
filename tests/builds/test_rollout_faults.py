"""A 30-build rollout survives a worker killed mid-wave and a Redis flush: every layer is built
exactly once, every build converges to the emulator's truth, and the rollout completes.

Real `manage.py rqworker` processes run the advance and submit jobs; this process plays the
scheduler (sweep and reconcile, which nudge the rollout).
"""

from __future__ import annotations

import pytest

from builds import rollouts
from builds.models import Build, Rollout, RolloutItem, RolloutWave
from tests import factories
from tests.builds.test_orchestration_faults import assert_converged
from tests.support.workers import WorkerProcess, flush_redis, run_sweeps

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def quick(settings, worker_env):
    values = {"BUILD_LEASE_SECONDS": 2, "BUILD_RETRY_BASE_SECONDS": 1, "BUILD_RETRY_MAX_SECONDS": 4,
              "BUILD_TEMPLATE_RETENTION_HOURS": 24, "ROLLOUT_LEASE_SECONDS": 3}
    for name, value in values.items():
        setattr(settings, name, value)
        worker_env[name] = str(value)
    return worker_env


def wave_state(rollout, number):
    return RolloutWave.objects.get(rollout=rollout, number=number).state


def test_a_killed_worker_and_a_redis_flush_lose_and_double_nothing(azure_emulator, alice, web, quick, tmp_path):
    azure_emulator.set_time_scale(20000)
    gold = factories.make_gold_image("ubuntu", actor=alice)
    factories.make_gold_version(gold, "1.0.0", actor=alice)
    new = factories.make_gold_version(gold, "1.1.0", actor=alice)
    for index in range(30):
        factories.make_layer_version(factories.make_layer(web, gold, f"app{index:02}"), "1.0.0", accepts="^1")
    rollout = rollouts.rollout_create(actor=alice, gold_version=new, canary_size=3, wave_size=9)
    assert [w.items.count() for w in rollout.waves.order_by("number")] == [3, 9, 9, 9]

    # A worker that dies (whole: work-horse and parent) right after requesting the canary's first
    # build, the other two not yet requested.
    crashing = WorkerProcess({**quick, "GOLDSMITH_FAULT_POINTS": "rollout.requested:worker"},
                             tmp_path / "crashing.log").start()
    rollouts.rollout_start(actor=alice, rollout=rollout)
    run_sweeps(lambda: crashing.proc.poll() is not None, timeout=60, interval=0.2)
    crashing.proc = None
    requested = RolloutItem.objects.filter(wave__number=0, build__isnull=False).count()
    assert requested == 1  # killed mid-wave

    worker = WorkerProcess(quick, tmp_path / "worker-2.log").start()
    try:
        run_sweeps(lambda: wave_state(rollout, 2) == "running", timeout=90, interval=0.2)
        flush_redis()  # queues, scheduled retries and gates lost mid-wave
        run_sweeps(lambda: Rollout.objects.get(pk=rollout.pk).is_terminal, timeout=180, interval=0.2)
    finally:
        worker.stop()

    rollout.refresh_from_db()
    assert rollout.state == Rollout.State.SUCCEEDED, rollout.stop_reason
    items = RolloutItem.objects.filter(rollout=rollout, kind=RolloutItem.Kind.BUILD)
    assert items.count() == 30
    assert items.filter(build__isnull=True).count() == 0
    assert Build.objects.count() == 30  # nothing requested twice
    assert set(Build.objects.values_list("state", flat=True)) == {"succeeded"}
    assert sorted(set(items.values_list("layer_id", flat=True))) == sorted(items.values_list("layer_id", flat=True))
    assert list(rollout.waves.values_list("state", flat=True)) == ["succeeded"] * 4
    assert_converged(azure_emulator, list(Build.objects.all()))
