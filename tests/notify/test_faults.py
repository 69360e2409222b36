"""A worker killed between writing an event and delivering it, or Redis flushed: delivered once.

Real RQ worker processes (tests/support/workers.py) kill themselves at notify's fault points
(portal/faultpoints.py); the reconciler, run here as the scheduler would, recovers.
"""

from __future__ import annotations

import time

import pytest

from builds import lifecycle
from builds.models import Build
from notify import delivery, services
from notify.models import Delivery, OutboxEvent
from tests.support import build_rows
from tests.support.workers import WorkerProcess, flush_redis


@pytest.fixture
def notify_env(worker_env, settings, receiver):
    settings.NOTIFY_LEASE_SECONDS = 2
    worker_env.update({"DEBUG": "1", "NOTIFY_LEASE_SECONDS": "2", "NOTIFY_BASE_URL": "http://testserver"})
    return worker_env


def wait_for(condition, timeout=40.0, reconcile=False):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        if reconcile:
            delivery.reconcile()
        time.sleep(0.3)


@pytest.mark.parametrize("fault", ["notify.fanned_out:worker", "notify.claimed:horse", "notify.claimed:worker"])
def test_a_worker_killed_between_writing_and_delivering_delivers_once(world, receiver, notify_env, tmp_path, fault):
    world.bob.email = ""  # only the webhook here
    world.bob.save()
    endpoint, _ = services.endpoint_create(actor=world.bob, kind="webhook", url=receiver.url,
                                           event_types=["build.failed"], department=world.web)
    crashing = WorkerProcess({**notify_env, "GOLDSMITH_FAULT_POINTS": fault}, tmp_path / "crash.log").start()
    try:
        build = build_rows.running(world.gold_version, [world.web_layer_version], requested_by=world.bob)
        lifecycle.transition(build, state=Build.State.FAILED)
        wait_for(lambda: crashing.proc.poll() is not None or not _horse_alive(crashing, fault))
    finally:
        crashing.stop()
    worker = WorkerProcess(notify_env, tmp_path / "worker.log").start()
    try:
        wait_for(lambda: endpoint.deliveries.filter(status=Delivery.Status.DELIVERED).exists(), reconcile=True)
        time.sleep(3)  # past another lease: nothing else arrives
        delivery.reconcile()
        time.sleep(1)
    finally:
        worker.stop()
        flush_redis()
    assert len(receiver.requests) == 1, worker.log()


def _horse_alive(worker: WorkerProcess, fault: str) -> bool:
    """For a horse-only fault the worker lives on: done once the delivery was claimed and left."""
    if fault.endswith(":worker"):
        return True
    return not Delivery.objects.filter(attempts__gte=1, lease_until__isnull=False).exists()


def test_redis_flushed_after_the_change_loses_no_event(world, receiver, notify_env, tmp_path):
    world.bob.email = ""
    world.bob.save()
    endpoint, _ = services.endpoint_create(actor=world.bob, kind="webhook", url=receiver.url,
                                           event_types=["build.failed"], department=world.web)
    build = build_rows.running(world.gold_version, [world.web_layer_version], requested_by=world.bob)
    lifecycle.transition(build, state=Build.State.FAILED)
    flush_redis()  # the fan-out job is gone
    worker = WorkerProcess(notify_env, tmp_path / "worker.log").start()
    try:
        OutboxEvent.objects.update(occurred_at=OutboxEvent.objects.get().occurred_at.replace(year=2000))
        wait_for(lambda: endpoint.deliveries.filter(status=Delivery.Status.DELIVERED).exists(), reconcile=True)
    finally:
        worker.stop()
        flush_redis()
    assert len(receiver.requests) == 1
