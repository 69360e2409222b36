"""On PostgreSQL the audit tables refuse UPDATE and DELETE; `audit.maintenance()` is the break glass."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from portal import audit
from portal.models import AuditCheckpoint, AuditEvent

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the append-only triggers exist on PostgreSQL only (SQLite is the single-user trial database); "
           "run with DATABASE_URL=postgres://...",
)


@pytest.fixture
def events(db):
    for number in range(3):
        audit.record("test.event", actor="system", label=f"event {number}")
    audit.checkpoint_create()


def refused(action) -> str:
    with pytest.raises(DatabaseError) as caught, transaction.atomic():
        action()
    return str(caught.value)


def test_it_refuses_to_update_an_event(events):
    message = refused(lambda: AuditEvent.objects.filter(id=2).update(object_label="changed"))
    assert "append-only" in message and "UPDATE" in message
    assert AuditEvent.objects.get(id=2).object_label == "event 1"


def test_it_refuses_to_delete_an_event(events):
    assert "DELETE" in refused(lambda: AuditEvent.objects.filter(id=3).delete())
    assert "DELETE" in refused(lambda: AuditEvent.objects.all().delete())
    assert AuditEvent.objects.count() == 4


def test_it_refuses_to_change_checkpoints(events):
    assert "append-only" in refused(lambda: AuditCheckpoint.objects.update(head_hash="0" * 64))
    assert "append-only" in refused(lambda: AuditCheckpoint.objects.all().delete())


def test_it_refuses_raw_sql_too(events):
    def raw():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE portal_auditevent SET actor_name = 'mallory'")

    assert "append-only" in refused(raw)


def test_inserting_still_works(events):
    assert audit.record("test.more", actor="system").id == 5


def test_break_glass_lifts_the_triggers_for_one_transaction_only(events):
    with pytest.raises(RuntimeError), transaction.atomic():
        with audit.maintenance():
            AuditEvent.objects.filter(id=1).update(object_label="allowed while the glass is broken")
        raise RuntimeError("roll the change back")
    assert AuditEvent.objects.get(id=1).object_label == "event 0"
    assert "append-only" in refused(lambda: AuditEvent.objects.filter(id=1).update(object_label="again"))

