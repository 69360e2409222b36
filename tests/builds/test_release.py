"""The release fan-out (builds/release.py): deprecation, revocation and production promotions
reach every gallery image version built from the gold version, each changed exactly once, also
when the worker is killed in the middle."""

from __future__ import annotations

import datetime as dt

import pytest

from builds import approvals, jobs, queue, release, services
from builds.models import ArtifactState, Build, ReleaseStep
from portal.models import AuditEvent
from tests import factories
from tests.support.build_rows import make_build
from tests.support.gallery import PATCH, make_gallery_versions, profile_of
from tests.support.workers import WorkerProcess, run_sweeps


def built_from(gold_version, ids, user):
    for version_id in ids:
        make_build(gold_version, requested_by=user, state=Build.State.SUCCEEDED, phases=("Queued",),
                   outputs=[{"name": "gallery", "artifact_id": version_id}])


def patches(emulator, since: int = 0) -> dict[str, int]:
    counted: dict[str, int] = {}
    for entry in emulator.requests(since):
        if entry["operation"] == PATCH and 200 <= entry["status"] < 300:
            name = entry["path"].split("/versions/")[1].split("?")[0]
            counted[name] = counted.get(name, 0) + 1
    return counted


@pytest.mark.django_db
def test_revocation_excludes_every_version_once_and_a_repeat_patches_nothing(alice, azure_emulator,
                                                                            django_capture_on_commit_callbacks):
    gold_version = factories.make_gold_version(actor=alice)
    ids = make_gallery_versions(azure_emulator, 3)
    built_from(gold_version, ids, alice)
    mark = azure_emulator.last_seq()
    with django_capture_on_commit_callbacks(execute=False):
        services.gold_version_revoke(actor=alice, gold_version=gold_version, reason="CVE-2026-0001")
    assert AuditEvent.objects.filter(action="gold_version.revoke").get().changes["gallery_versions"] == [None, 3]

    progress = release.apply(gold_version.pk, "revoke", 1)

    assert (progress.done, progress.patched) == (3, 3)
    assert patches(azure_emulator, mark) == {"1.0.0": 1, "1.0.1": 1, "1.0.2": 1}
    for version_id in ids:
        profile = profile_of(azure_emulator, version_id)
        assert profile["excludeFromLatest"] is True
        assert profile["endOfLifeDate"]
    states = ArtifactState.objects.all()
    assert [state.exclude_from_latest for state in states] == [True, True, True]
    assert AuditEvent.objects.filter(action="artifact.release").count() == 3
    # Again (a duplicate job): nothing pending, nothing sent.
    ReleaseStep.objects.update(state=ReleaseStep.State.PENDING)
    mark = azure_emulator.last_seq()
    assert release.apply(gold_version.pk, "revoke", 1).patched == 0
    assert patches(azure_emulator, mark) == {}


@pytest.mark.django_db
def test_deprecation_sets_the_end_of_life_date_and_keeps_latest(alice, azure_emulator,
                                                               django_capture_on_commit_callbacks, settings):
    settings.RELEASE_DEPRECATION_EOL_DAYS = 10
    gold_version = factories.make_gold_version(actor=alice)
    (version_id,) = make_gallery_versions(azure_emulator, 1)
    built_from(gold_version, [version_id], alice)
    with django_capture_on_commit_callbacks(execute=False):
        gold_version = services.gold_version_deprecate(actor=alice, gold_version=gold_version, reason="superseded")
    release.apply(gold_version.pk, "deprecate", 1)
    profile = profile_of(azure_emulator, version_id)
    assert not profile.get("excludeFromLatest")
    expected = gold_version.deprecated_at + dt.timedelta(days=10)
    assert release._same_time(profile["endOfLifeDate"], expected)


@pytest.mark.django_db
def test_a_production_promotion_puts_the_new_version_in_latest_and_takes_the_old_out(
        alice, frank, azure_emulator, django_capture_on_commit_callbacks):
    old = factories.make_gold_version(actor=alice)
    new = factories.make_gold_version(old.gold_image, "1.1.0", actor=alice)
    old_id, new_id = make_gallery_versions(azure_emulator, 2)
    built_from(old, [old_id], alice)
    built_from(new, [new_id], alice)
    for version in (old, new):
        with django_capture_on_commit_callbacks(execute=False):
            request = approvals.promotion_request_create(actor=alice, gold_version=version, channel="production")
            approvals.publish_request_approve(actor=frank, request=request)
    steps = list(ReleaseStep.objects.filter(state="pending").order_by("pk")
                 .values_list("gold_version", "action", "round"))
    assert len(steps) == 2  # the old version's pending promotion gave way to its demotion
    for step in dict.fromkeys(steps):
        release.apply(*step)
    assert profile_of(azure_emulator, old_id)["excludeFromLatest"] is True
    assert profile_of(azure_emulator, new_id).get("excludeFromLatest") is False


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("target", "within"), [("horse", 60), ("worker", queue.WORKER_SILENT_SECONDS + 45)])
def test_a_worker_killed_mid_revocation_resumes_and_patches_each_version_once(alice, azure_emulator, worker_env,
                                                                             tmp_path, target, within):
    """`horse`: the work-horse dies (RQ marks the job failed at once). `worker`: the whole worker
    dies with its horse, the job stays "started" in Redis, and only the worker's silence (no
    heartbeat for WORKER_SILENT_SECONDS) tells the reconcile that nobody runs it any more."""
    gold_version = factories.make_gold_version(actor=alice)
    ids = make_gallery_versions(azure_emulator, 4)
    built_from(gold_version, ids, alice)
    mark = azure_emulator.last_seq()
    crashing = WorkerProcess({**worker_env, "GOLDSMITH_FAULT_POINTS": f"release.patched:{target}"},
                             tmp_path / "crash.log").start()
    try:
        services.gold_version_revoke(actor=alice, gold_version=gold_version, reason="key leak")
        # The worker dies right after its first PATCH, before it marks the step done.
        azure_emulator.wait_for(lambda: ReleaseStep.objects.filter(patched=True).exists(), timeout=30)
        azure_emulator.wait_for(lambda: crashing.proc.poll() is not None if target == "worker"
                                else crashing_failed(), timeout=30)
    finally:
        crashing.stop()
    assert ReleaseStep.objects.filter(state=ReleaseStep.State.DONE).count() == 0
    healthy = WorkerProcess(worker_env, tmp_path / "healthy.log").start()
    try:
        # The scheduler's reconcile (jobs.builds_reconcile) re-enqueues the fan-out whose job died.
        run_sweeps(lambda: jobs.builds_reconcile() is None or not ReleaseStep.objects.filter(
            state=ReleaseStep.State.PENDING).exists(), timeout=within, interval=0.5)
    finally:
        healthy.stop()
    assert ReleaseStep.objects.filter(state=ReleaseStep.State.DONE).count() == 4
    assert patches(azure_emulator, mark) == {"1.0.0": 1, "1.0.1": 1, "1.0.2": 1, "1.0.3": 1}
    for version_id in ids:
        assert profile_of(azure_emulator, version_id)["excludeFromLatest"] is True


def crashing_failed() -> bool:
    import django_rq

    return django_rq.get_queue("builds").failed_job_registry.count > 0
