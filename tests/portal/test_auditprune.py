"""`manage.py auditprune`: retention archives the oldest events, deletes them, and the rest still verifies."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from django.core.management import CommandError, call_command

from portal import audit
from portal.models import AuditEvent
from tests.support.audit import expect_one_event


@pytest.fixture
def trail(db):
    for number in range(10):
        audit.record("test.event", actor="system", label=f"event {number}")


def prune(tmp_path, through: int, *extra: str) -> str:
    out = io.StringIO()
    call_command("auditprune", "--through", str(through), "--archive", str(tmp_path / "archive.jsonl"),
                 "--reason", "retention ticket OPS-1", "--actor", "ops:jane", *extra, stdout=out)
    return out.getvalue()


def test_without_yes_it_only_prints_the_plan(trail, tmp_path):
    assert "would archive events #1 to #4" in prune(tmp_path, 4)
    assert AuditEvent.objects.count() == 10
    assert not (tmp_path / "archive.jsonl").exists()


def test_it_archives_deletes_and_anchors_what_remains(trail, tmp_path):
    anchor = AuditEvent.objects.get(id=4).hash
    with expect_one_event("audit.prune", actor="ops:jane") as caught:
        prune(tmp_path, 4, "--yes")
    assert list(AuditEvent.objects.values_list("id", flat=True)) == [5, 6, 7, 8, 9, 10, 11]
    archive = (tmp_path / "archive.jsonl").read_bytes()
    lines = [json.loads(line) for line in archive.decode().splitlines()]
    assert [line["id"] for line in lines] == [1, 2, 3, 4]
    assert lines[-1]["hash"] == anchor
    changes = caught.event.changes
    assert changes["pruned_through"] == [None, 4] and changes["anchor_hash"] == [None, anchor]
    assert changes["archive_sha256"] == [None, hashlib.sha256(archive).hexdigest()]
    assert changes["reason"] == [None, "retention ticket OPS-1"]
    verdict = audit.verify_chain()
    assert verdict.ok, verdict.reason
    assert verdict.first_id == 5 and "pruned by event #11" in verdict.notes[0]


def test_the_archive_verifies_on_its_own(trail, tmp_path):
    prune(tmp_path, 6, "--yes")
    prev = audit.GENESIS
    for line in (tmp_path / "archive.jsonl").read_text().splitlines():
        values = json.loads(line)
        import datetime as dt

        values["at"] = dt.datetime.fromisoformat(values["at"])
        assert values["prev_hash"] == prev
        assert audit.chain_hash(prev, audit.canonical_values(values)) == values["hash"]
        prev = values["hash"]


def test_deleting_the_oldest_events_without_a_prune_event_is_caught(trail):
    from tests.support.audit import tampered

    with tampered():
        AuditEvent.objects.filter(id__lte=3).delete()
        verdict = audit.verify_chain()
    assert not verdict.ok and verdict.bad_event_id == 4 and "#1 to #3 are missing" in verdict.reason


def test_a_forged_anchor_is_caught(trail, tmp_path):
    from tests.support.audit import tampered

    prune(tmp_path, 4, "--yes")
    with tampered():
        AuditEvent.objects.filter(id=5).update(prev_hash="a" * 64)
        verdict = audit.verify_chain()
    assert not verdict.ok and verdict.bad_event_id == 5


def test_old_checkpoints_are_reported_not_failed_after_a_prune(trail, tmp_path):
    old = audit.Checkpoint(2, AuditEvent.objects.get(id=2).hash)
    prune(tmp_path, 4, "--yes")
    verdict = audit.verify_chain(checkpoints=[old])
    assert verdict.ok
    assert any("predates the retained events" in note for note in verdict.notes)


def test_it_refuses_to_prune_the_head_or_an_existing_archive(trail, tmp_path):
    with pytest.raises(CommandError, match="between"):
        prune(tmp_path, 10, "--yes")
    (tmp_path / "archive.jsonl").write_text("")
    with pytest.raises(CommandError, match="exists already"):
        prune(tmp_path, 3, "--yes")


def test_it_refuses_to_prune_a_broken_chain(trail, tmp_path):
    from tests.support.audit import tampered

    with tampered():
        AuditEvent.objects.filter(id=7).update(actor_name="mallory")
        with pytest.raises(CommandError, match="broken chain"):
            prune(tmp_path, 3, "--yes")


@pytest.mark.django_db(transaction=True)
def test_break_glass_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match=r"inside transaction\.atomic"), audit.maintenance():
        pass
