"""One job sends an event's deliveries: claimed row by row, over one connection per checked
address, each request still passing the SSRF guard; reconciling never sends a pair twice."""

from __future__ import annotations

import datetime as dt

import django_rq
from django.utils import timezone

from notify import delivery, jobs, queue
from notify.models import Delivery, OutboxEvent
from tests.notify.test_webhooks import fail_build, webhook


def test_the_fanout_job_sends_every_delivery_of_the_event_over_one_connection(world, receiver):
    endpoints = [webhook(world, receiver)[0] for _ in range(3)]
    world.bob.email = ""
    world.bob.save()
    fail_build(world)
    event = OutboxEvent.objects.get()
    assert jobs.event_fanout(event.pk) == {"delivered": 3}
    keys = {request["headers"]["X-Goldsmith-Idempotency-Key"] for request in receiver.requests}
    assert keys == {row.idempotency_key for row in Delivery.objects.filter(endpoint__in=endpoints)}
    assert len({request["client_port"] for request in receiver.requests}) == 1
    assert set(Delivery.objects.values_list("status", "attempts")) == {("delivered", 1)}


def test_a_second_send_job_for_the_same_event_claims_nothing(world, receiver):
    webhook(world, receiver)
    fail_build(world)
    event = OutboxEvent.objects.get()
    jobs.event_fanout(event.pk)
    assert jobs.event_send(event.pk) == {}
    assert jobs.event_fanout(event.pk) == {}
    assert len(receiver.requests) == 1


def test_a_reused_connection_does_not_skip_the_guard(receiver, settings):
    with delivery.Sender() as sender:
        assert sender.post(receiver.url, b"{}", {}).ok
        settings.NOTIFY_ALLOW_LOOPBACK_HTTP = False  # now loopback http is refused
        refused = sender.post(receiver.url, b"{}", {})
    assert not refused.ok and refused.permanent and "https" in refused.error
    assert len(receiver.requests) == 1


def test_a_failed_delivery_is_retried_by_a_send_job_for_its_event_when_due(world, receiver,
                                                                          django_capture_on_commit_callbacks):
    webhook(world, receiver)
    world.bob.email = ""
    world.bob.save()
    receiver.statuses = [503]
    fail_build(world)
    event = OutboxEvent.objects.get()
    django_rq.get_connection(queue.QUEUE).flushdb()
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.event_fanout(event.pk) == {"pending": 1}
    row = Delivery.objects.get()
    job_id = queue.send_job_id(event.uuid, f"r{int(row.next_attempt_at.timestamp())}")
    try:
        assert queue.waiting(job_id)  # scheduled for the due second
    finally:
        django_rq.get_connection(queue.QUEUE).flushdb()


def test_reconcile_sends_what_a_killed_holder_left_once(world, receiver, settings):
    webhook(world, receiver)
    world.bob.email = ""
    world.bob.save()
    fail_build(world)
    event = OutboxEvent.objects.get()
    delivery.fanout(event.pk)
    claimed, _ = delivery._claim(list(Delivery.objects.values_list("pk", flat=True)))  # then "killed"
    assert len(claimed) == 1

    past = timezone.now() - dt.timedelta(minutes=5)
    Delivery.objects.update(lease_until=past, created_at=past)
    connection = django_rq.get_connection(queue.QUEUE)
    connection.flushdb()
    try:
        assert delivery.reconcile()["deliveries"] == 1
        jobs.event_send(event.pk)
        jobs.event_send(event.pk)
    finally:
        connection.flushdb()
    assert len(receiver.requests) == 1
    assert Delivery.objects.get().attempts == 2


def _fanout_jobs(rq_queue) -> list[str]:
    return [job_id for job_id in rq_queue.job_ids if job_id.startswith("notify-fanout-")]


def test_a_burst_of_events_wakes_one_pump_and_it_sends_them_all(world, receiver, django_capture_on_commit_callbacks):
    webhook(world, receiver)
    world.bob.email = ""
    world.bob.save()
    connection = django_rq.get_connection(queue.QUEUE)
    rq_queue = django_rq.get_queue(queue.QUEUE)
    connection.flushdb()
    try:
        for _ in range(15):  # each in its own transaction, as builds end
            with django_capture_on_commit_callbacks(execute=True):
                fail_build(world)
        (pump_job,) = _fanout_jobs(rq_queue)  # the first woke a pump; the others found it waiting

        queue.pump_started(pump_job)  # it starts: what is committed from now on wakes another
        with django_capture_on_commit_callbacks(execute=True):
            fail_build(world)
        assert len(_fanout_jobs(rq_queue)) == 2

        first = OutboxEvent.objects.order_by("pk").first()
        assert delivery.pump(first.pk) == {"delivered": 16}  # more than one batch of events
    finally:
        connection.flushdb()
    assert len(receiver.requests) == 16
    assert not OutboxEvent.objects.filter(fanned_out_at__isnull=True).exists()


def test_a_mark_naming_a_pump_that_is_not_waiting_does_not_hold_events_back(world, receiver,
                                                                              django_capture_on_commit_callbacks):
    connection = django_rq.get_connection(queue.QUEUE)
    rq_queue = django_rq.get_queue(queue.QUEUE)
    connection.flushdb()
    try:
        connection.set(queue.PUMP_MARK, "notify-fanout-lost")  # its job was lost with a worker
        with django_capture_on_commit_callbacks(execute=True):
            fail_build(world)
        event = OutboxEvent.objects.get()
        assert _fanout_jobs(rq_queue) == [queue.fanout_job_id(event)]
        assert connection.get(queue.PUMP_MARK) == queue.fanout_job_id(event).encode()
    finally:
        connection.flushdb()


def test_one_chunk_records_each_answer_with_its_own_status_and_latency(world, receiver):
    endpoints = [webhook(world, receiver)[0] for _ in range(3)]
    world.bob.email = ""
    world.bob.save()
    receiver.statuses = [200, 202, 503]
    fail_build(world)
    event = OutboxEvent.objects.get()
    delivery.fanout(event.pk)
    connection = django_rq.get_connection(queue.QUEUE)
    try:
        assert delivery.send_event(event.pk) == {"delivered": 2, "pending": 1}
    finally:
        connection.flushdb()
    answered = {request["headers"]["X-Goldsmith-Idempotency-Key"]: status
                for request, status in zip(receiver.requests, [200, 202, 503], strict=True)}
    rows = {row.idempotency_key: row for row in Delivery.objects.filter(endpoint__in=endpoints)}
    assert {key: rows[key].status_code for key in answered} == answered
    for key, status in answered.items():
        row = rows[key]
        assert row.latency_ms is not None and row.lease_until is None
        if status < 300:
            assert (row.status, row.response_excerpt, row.error) == ("delivered", '{"ok": true}', "")
            assert row.delivered_at is not None
        else:
            assert (row.status, row.error, row.delivered_at) == ("pending", "HTTP 503", None)
            assert row.next_attempt_at is not None
