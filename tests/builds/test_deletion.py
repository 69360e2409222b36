"""Deleting revoked gallery image versions after the policy's grace period
(delete_revoked_after_days): the scheduler's job asks once per version on behalf of the person
who revoked it, a second security-team member approves, and the delete fan-out deletes every
gallery image version exactly once, also when the worker dies in the middle."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from builds import approvals, azure, jobs, policies, queue, release, services
from builds.models import ArtifactState, Build, PublishRequest, ReleaseStep
from portal.models import AuditEvent
from tests import factories
from tests.support.build_rows import make_build
from tests.support.gallery import make_gallery_versions
from tests.support.workers import WorkerProcess, run_sweeps

DELETE = "GalleryImageVersions_Delete"
DAY = dt.timedelta(days=1)


def built_from(gold_version, ids, user):
    for version_id in ids:
        make_build(gold_version, requested_by=user, state=Build.State.SUCCEEDED, phases=("Queued",),
                   outputs=[{"name": "gallery", "artifact_id": version_id}])


def deletes(emulator, since: int = 0) -> dict[str, int]:
    """Accepted DELETEs of gallery image versions per version name (the emulator's request log)."""
    counted: dict[str, int] = {}
    for entry in emulator.requests(since):
        if entry["operation"] == DELETE and 200 <= entry["status"] < 300:
            name = entry["path"].split("/versions/")[1].split("?")[0]
            counted[name] = counted.get(name, 0) + 1
    return counted


def revoked(alice, emulator, count, capture, *, days=30):
    policies.policy_update(actor=alice, rules={"delete_revoked_after_days": days})
    gold_version = factories.make_gold_version(actor=alice)
    ids = make_gallery_versions(emulator, count)
    built_from(gold_version, ids, alice)
    with capture(execute=False):
        gold_version = services.gold_version_revoke(actor=alice, gold_version=gold_version, reason="CVE-2026-0002")
    release.apply(gold_version.pk, "revoke", 1)
    return gold_version, ids


def delete_all(gold_version) -> release.Progress:
    """Run the delete fan-out until nothing is pending (what the self-scheduling job does)."""
    for _ in range(100):
        progress = release.apply(gold_version.pk, "delete", 1)
        if progress.retry_in is None:
            return progress
    raise AssertionError("the deletion never finished")


@pytest.mark.django_db
def test_it_asks_after_the_grace_period_once_and_a_second_person_deletes_each_version_once(
        alice, frank, azure_emulator, django_capture_on_commit_callbacks):
    gold_version, ids = revoked(alice, azure_emulator, 3, django_capture_on_commit_callbacks)

    assert approvals.deletion_requests_due(now=gold_version.revoked_at + 29 * DAY) == []
    (request,) = approvals.deletion_requests_due(now=gold_version.revoked_at + 31 * DAY)
    assert approvals.deletion_requests_due(now=gold_version.revoked_at + 40 * DAY) == []  # once per version

    assert (request.kind, request.state, request.author) == ("deletion", "pending", alice)
    event = AuditEvent.objects.get(action="publish_request.create", object_id=str(request.uuid))
    assert event.actor_name.startswith("worker:")
    assert event.changes["author"] == [None, "alice"]
    assert event.changes["resource_ids"] == [None, sorted(ids)]
    assert request in approvals.pending_for(frank)
    with pytest.raises(approvals.NotAllowed, match="four eyes"):
        approvals.publish_request_approve(actor=alice, request=request)

    mark = azure_emulator.last_seq()
    with django_capture_on_commit_callbacks(execute=False):
        assert approvals.publish_request_approve(actor=frank, request=request).state == "approved"
    planned = AuditEvent.objects.get(action="gold_version.delete_artifacts")
    assert planned.changes["resource_ids"] == [sorted(ids), None]
    assert planned.changes["approved_by"] == [None, ["frank"]]
    progress = delete_all(gold_version)

    assert progress.failed == 0
    assert deletes(azure_emulator, mark) == {"1.0.0": 1, "1.0.1": 1, "1.0.2": 1}
    for version_id in ids:
        assert azure.gallery_version_state(version_id) is None  # GET answers 404
    assert ArtifactState.objects.filter(deleted_at__isnull=False).count() == 3
    events = AuditEvent.objects.filter(action="artifact.delete").order_by("id")
    assert sorted(event.object_label for event in events) == sorted(ids)
    assert all(event.changes["resource_id"][1] is None and event.changes["delete_sent"] == [None, True]
               for event in events)
    # A repeated job, or the scheduler again: nothing more is asked or sent.
    ReleaseStep.objects.filter(action="delete").update(state=ReleaseStep.State.PENDING)
    mark = azure_emulator.last_seq()
    delete_all(gold_version)
    assert deletes(azure_emulator, mark) == {}
    assert approvals.deletion_requests_due(now=gold_version.revoked_at + 90 * DAY) == []


@pytest.mark.django_db
def test_the_approver_sees_the_resource_ids_and_approves_on_the_page(client, alice, frank, azure_emulator,
                                                                      django_capture_on_commit_callbacks):
    gold_version, ids = revoked(alice, azure_emulator, 2, django_capture_on_commit_callbacks, days=1)
    (request,) = approvals.deletion_requests_due(now=gold_version.revoked_at + 2 * DAY)
    client.force_login(frank)
    page = client.get(reverse("builds:approval-detail", args=[request.uuid])).content.decode()
    assert all(version_id in page for version_id in ids)
    assert "Approve and delete" in page
    assert "content changed" not in page
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("builds:approval-decide", args=[request.uuid]), {"verdict": "approve"},
                               follow=True)
    assert "having its gallery image versions deleted" in response.content.decode()
    assert ReleaseStep.objects.filter(action="delete", state="pending").count() == 2
    delete_all(gold_version)
    client.force_login(alice)
    page = client.get(reverse("builds:gold-detail", args=[gold_version.gold_image.slug])).content.decode()
    assert page.count('<span class="badge mark-revoked">deleted</span>') == 2


@pytest.mark.django_db
def test_it_never_asks_when_the_policy_keeps_revoked_versions(alice, azure_emulator,
                                                              django_capture_on_commit_callbacks):
    gold_version, _ = revoked(alice, azure_emulator, 1, django_capture_on_commit_callbacks, days=0)
    assert approvals.deletion_requests_due(now=gold_version.revoked_at + 3650 * DAY) == []
    assert jobs.revoked_deletions_request() == 0
    assert not PublishRequest.objects.filter(kind="deletion").exists()


@pytest.mark.django_db
def test_a_rejected_deletion_is_not_asked_again_and_deletes_nothing(alice, frank, azure_emulator,
                                                                    django_capture_on_commit_callbacks):
    gold_version, ids = revoked(alice, azure_emulator, 1, django_capture_on_commit_callbacks, days=1)
    (request,) = approvals.deletion_requests_due(now=gold_version.revoked_at + 2 * DAY)
    approvals.publish_request_reject(actor=frank, request=request, comment="legal hold")
    assert approvals.deletion_requests_due(now=gold_version.revoked_at + 9 * DAY) == []
    assert not ReleaseStep.objects.filter(action="delete").exists()
    assert azure.gallery_version_state(ids[0]) is not None


@pytest.mark.django_db
def test_a_version_still_deleting_is_read_again_and_one_already_gone_is_not_deleted(
        alice, frank, azure_emulator, django_capture_on_commit_callbacks):
    gold_version, ids = revoked(alice, azure_emulator, 2, django_capture_on_commit_callbacks, days=1)
    (request,) = approvals.deletion_requests_due(now=gold_version.revoked_at + 2 * DAY)
    with django_capture_on_commit_callbacks(execute=False):
        approvals.publish_request_approve(actor=frank, request=request)
    # Somebody deleted 1.0.0 in the portal meanwhile: it is done without a DELETE of ours.
    parts = ids[0].split("/")
    azure_emulator.compute_client().gallery_image_versions.begin_delete(parts[4], parts[8], parts[10],
                                                                        parts[12]).result()
    mark = azure_emulator.last_seq()
    azure_emulator.freeze()
    try:
        first = release.apply(gold_version.pk, "delete", 1)
        assert (first.done, first.patched, first.deleting) == (1, 1, 1)  # 1.0.1 is Deleting
        assert first.retry_in == release.DELETE_POLL_SECONDS
        again = release.apply(gold_version.pk, "delete", 1)
        assert (again.patched, again.deleting) == (0, 1)  # read, not sent again
    finally:
        azure_emulator.unfreeze()
    azure_emulator.advance(5)
    assert delete_all(gold_version).done == 1
    assert deletes(azure_emulator, mark) == {"1.0.1": 1}
    gone_first = AuditEvent.objects.get(action="artifact.delete", object_label=ids[0])
    assert gone_first.changes["delete_sent"] == [None, False]
    assert ArtifactState.objects.filter(deleted_at__isnull=False).count() == 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_deletion_finishes_the_rest_and_deletes_each_version_once(
        alice, frank, azure_emulator, worker_env, tmp_path):
    policies.policy_update(actor=alice, rules={"delete_revoked_after_days": 7})
    gold_version = factories.make_gold_version(actor=alice)
    ids = make_gallery_versions(azure_emulator, 4)
    built_from(gold_version, ids, alice)
    gold_version = services.gold_version_revoke(actor=alice, gold_version=gold_version, reason="key leak")
    release.apply(gold_version.pk, "revoke", 1)  # the revocation, in this process (no worker yet)
    (request,) = approvals.deletion_requests_due(now=gold_version.revoked_at + 8 * DAY)
    mark = azure_emulator.last_seq()
    crashing = WorkerProcess({**worker_env, "GOLDSMITH_FAULT_POINTS": "release.deleted:horse"},
                             tmp_path / "crash.log").start()
    try:
        approvals.publish_request_approve(actor=frank, request=request)
        # The work-horse dies right after its first DELETE, before it marks the step.
        azure_emulator.wait_for(lambda: deletes(azure_emulator, mark), timeout=30)
        azure_emulator.wait_for(lambda: queue_failed(), timeout=30)
    finally:
        crashing.stop()
    assert ReleaseStep.objects.filter(action="delete", state=ReleaseStep.State.DONE).count() == 0
    healthy = WorkerProcess(worker_env, tmp_path / "healthy.log").start()
    try:
        run_sweeps(lambda: jobs.builds_reconcile() is None or not ReleaseStep.objects.filter(
            state=ReleaseStep.State.PENDING).exists(), timeout=60, interval=0.5)
    finally:
        healthy.stop()
    assert ReleaseStep.objects.filter(action="delete", state=ReleaseStep.State.DONE).count() == 4
    assert deletes(azure_emulator, mark) == {"1.0.0": 1, "1.0.1": 1, "1.0.2": 1, "1.0.3": 1}
    for version_id in ids:
        assert azure.gallery_version_state(version_id) is None
    assert AuditEvent.objects.filter(action="artifact.delete").count() == 4


def queue_failed() -> bool:
    import django_rq

    return django_rq.get_queue(queue.QUEUE).failed_job_registry.count > 0
