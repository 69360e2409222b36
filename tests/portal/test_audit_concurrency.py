"""Many writers appending at once leave one unforked chain.

On PostgreSQL, threads with their own connections append concurrently (the advisory lock
serialises them); some of their transactions roll back, which must leave no gap. SQLite
admits a single writer (and the test database is in memory, shared by threads only through
a cache that refuses concurrent writes), so there the writers take turns in one thread.
"""

from __future__ import annotations

import random
import threading

import pytest
from django.db import connection, connections, transaction

from portal import audit
from portal.models import AuditEvent

WRITERS = 8
EVENTS_EACH = 25


class Rollback(Exception):
    pass


def write(writer: int, results: dict, barrier: threading.Barrier | None) -> None:
    rng = random.Random(writer)
    committed = 0
    try:
        if barrier:
            barrier.wait(timeout=30)
        for number in range(EVENTS_EACH):
            try:
                with transaction.atomic():
                    audit.record("test.write", actor=f"writer{writer}", label=f"{writer}/{number}",
                                 changes={"n": [None, number]})
                    if rng.random() < 0.2:
                        raise Rollback  # the change failed: its event must vanish without a trace
                committed += 1
            except Rollback:
                pass
        results[writer] = committed
    except Exception as error:  # reported by the test, not swallowed
        results[writer] = error
    finally:
        if barrier:
            connections.close_all()


def assert_one_chain(results: dict) -> None:
    errors = [value for value in results.values() if isinstance(value, Exception)]
    assert not errors, errors
    total = sum(results.values())
    ids = list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
    assert ids == list(range(1, total + 1))
    prevs = list(AuditEvent.objects.values_list("prev_hash", flat=True))
    assert len(set(prevs)) == len(prevs), "two events claim the same predecessor: the chain forked"
    times = list(AuditEvent.objects.order_by("id").values_list("at", flat=True))
    assert times == sorted(times)
    verdict = audit.verify_chain()
    assert verdict.ok, verdict.reason
    assert verdict.checked == total


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_leave_one_chain():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite admits one writer; see test_interleaved_writers_leave_one_chain")
    results: dict = {}
    barrier = threading.Barrier(WRITERS)
    threads = [threading.Thread(target=write, args=(writer, results, barrier)) for writer in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == WRITERS
    assert_one_chain(results)


def test_interleaved_writers_leave_one_chain(db):
    """The single-writer case (SQLite; also run on PostgreSQL): writers' transactions take turns."""
    results: dict = {}
    for writer in range(WRITERS):
        write(writer, results, None)
    assert_one_chain(results)
