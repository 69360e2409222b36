"""Fan-out and delivery: what the notification jobs do (the workers' side of notify/).

- `fanout(event_id)`: claims the event (a conditional UPDATE of `fanned_out_at`) and, in the
  same transaction, creates one Delivery per endpoint that asked for the type and per user
  subscribed to it, both only when the access rules let them see the object
  (notify/visibility.py). Deliveries are unique per (event, endpoint) and (event, recipient).
- `pump(event_id)`, the fan-out job: fans the event out and sends its deliveries, then does the
  same for every event still waiting for its fan-out, oldest first, PUMP_BATCH at a time (one
  read of the audience per batch), for its time budget; then wakes the next pump if events are
  left (notify/queue.py says how a burst of events shares a few pumps).
- `send_event(event_id)`: sends an event's due deliveries in chunks of CHUNK: claims the chunk's
  rows with one conditional UPDATE ... RETURNING (pending, due, lease free), checks the
  recipient may still see the object, and posts it: a signed JSON webhook, a Teams card, a
  Slack message or an e-mail, over connections kept per checked address for the job (`Sender`),
  then records the chunk's outcomes in one transaction (its successes in one UPDATE). After its
  time budget (at most half a lease) the job enqueues its continuation while work remains; a
  chunk never outlives its lease (what is left is handed back unsent). `send(delivery_id)` is
  the same for one row. Success records status, latency and an excerpt of the answer. A
  failure is retried with exponential backoff (NOTIFY_RETRY_BASE_SECONDS, doubling up to an
  hour) until NOTIFY_RETRY_HOURS after the event; an endpoint failing NOTIFY_DISABLE_AFTER
  times in a row is disabled and its owner told.
- e-mail digests: a recipient's (N+1)-th message within NOTIFY_DIGEST_MINUTES (N =
  NOTIFY_DIGEST_THRESHOLD) and the ones after it are held and sent as one digest when the
  window closes (`send_digest`).
- `reconcile()`: the scheduler's safety net: wakes a pump when events wait for their fan-out
  and none is queued, enqueues a send job for events with due deliveries and no waiting job
  (Redis flushed, worker killed; a killed holder's lease expires after NOTIFY_LEASE_SECONDS)
  and due digests. A duplicate send job claims nothing and costs one query.

Receivers get `X-Goldsmith-Idempotency-Key` (the delivery's key, derived from the event and the
endpoint): a delivery whose worker died after the receiver answered but before the row was
marked delivered is sent again with the same key, so receivers drop it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from dataclasses import dataclass

import certifi
import urllib3
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail, signing
from django.db import connection, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from notify import payloads, queue, ssrf, visibility
from notify import signing as webhook_signing
from notify.events import absolute
from notify.models import Delivery, Endpoint, OutboxEvent, Preferences, Subscription
from portal import audit, faultpoints
from portal.access import Roles
from portal.models import Membership

log = logging.getLogger(__name__)
Status = Delivery.Status
UNSUBSCRIBE_SALT = "notify.unsubscribe"
_EXCERPT = 500


# --- Fan-out ------------------------------------------------------------------------------------


def idempotency_key(event: OutboxEvent, *, endpoint: Endpoint | None = None, recipient_id: int | None = None) -> str:
    target = f"e{endpoint.uuid.hex}" if endpoint is not None else f"u{recipient_id}"
    return f"{event.uuid.hex}.{target}"


def all_roles() -> dict[int, Roles]:
    """Every user's roles from two queries (roles_of reads them one user at a time), by the same
    rules: memberships, and superusers hold the admin role."""
    found: dict[int, dict] = defaultdict(lambda: {"security": False, "auditor": False, "admin": False,
                                                  "departments": set()})
    for user_id, role, department_id in Membership.objects.values_list("user_id", "role", "department_id"):
        entry = found[user_id]
        if role in ("security", "auditor", "admin"):
            entry[role] = True
        elif role == "editor" and department_id is not None:
            entry["departments"].add(department_id)
    for user_id in get_user_model().objects.filter(is_superuser=True).values_list("pk", flat=True):
        found[user_id]["admin"] = True
    return {user_id: Roles(security=e["security"], auditor=e["auditor"], admin=e["admin"],
                           editor_departments=frozenset(e["departments"]))
            for user_id, e in found.items()}


def subscriptions_of(users, roles: dict[int, Roles]) -> dict[int, set[tuple[str, str]]]:
    """user id -> the (event type, scope) pairs they receive: chosen ones, or their roles' defaults."""
    customized = set(Preferences.objects.filter(customized=True).values_list("user_id", flat=True))
    chosen: dict[int, set] = defaultdict(set)
    for user_id, event_type, scope in Subscription.objects.filter(user_id__in=customized).values_list(
            "user_id", "event_type", "scope"):
        chosen[user_id].add((event_type, scope))
    return {user.pk: chosen[user.pk] if user.pk in customized
            else visibility.default_subscriptions(roles.get(user.pk, Roles())) for user in users}


def recipients_for(event: OutboxEvent, users, roles: dict[int, Roles], subscriptions) -> list[int]:
    wanted = []
    for user in users:
        user_roles = roles.get(user.pk, Roles())
        if not visibility.roles_may_see(user_roles, event):
            continue
        if any(event_type == event.type and visibility.scope_matches(scope, user.pk, user_roles, event)
               for event_type, scope in subscriptions.get(user.pk, ())):
            wanted.append(user.pk)
    return wanted


@dataclass
class Audience:
    """Who may receive events, read once for a batch of events: enabled endpoints, active users
    with an e-mail address, everyone's roles and subscriptions. Read after the batch's events
    were committed, so it is what each event's own fan-out would have read."""

    roles: dict[int, Roles]
    endpoints: list[Endpoint]
    users: list
    subscriptions: dict[int, set[tuple[str, str]]]

    @classmethod
    def load(cls) -> Audience:
        roles = all_roles()
        users = list(get_user_model().objects.filter(is_active=True).exclude(email="").only("pk"))
        return cls(roles, list(Endpoint.objects.filter(enabled=True)), users, subscriptions_of(users, roles))


def fanout(event_id: int, audience: Audience | None = None) -> int:
    """Create the event's deliveries once; returns how many (0 when another job did it)."""
    with transaction.atomic():
        if not OutboxEvent.objects.filter(pk=event_id, fanned_out_at__isnull=True).update(fanned_out_at=timezone.now()):
            return 0
        event = OutboxEvent.objects.get(pk=event_id)
        audience = audience or Audience.load()
        rows = []
        for endpoint in audience.endpoints:
            if visibility.endpoint_receives(endpoint, event, audience.roles.get(endpoint.owner_id, Roles())):
                rows.append(Delivery(event=event, endpoint=endpoint, idempotency_key=idempotency_key(event, endpoint=endpoint)))
        for user_id in recipients_for(event, audience.users, audience.roles, audience.subscriptions):
            rows.append(Delivery(event=event, recipient_id=user_id,
                                 idempotency_key=idempotency_key(event, recipient_id=user_id)))
        Delivery.objects.bulk_create(rows, ignore_conflicts=True)
    faultpoints.reached("notify.fanned_out")
    return len(rows)


PUMP_BATCH = 10  # events fanned out together (one read of the audience), then sent


def pump(event_id: int) -> dict[str, int]:
    """Fan out and send the event, then every event still waiting for its fan-out, oldest first,
    in batches, for the job's time budget (half a lease, at most 30 s); wake the next pump when
    some are left. Returns counts by resulting status."""
    deadline = time.monotonic() + _budget()
    counts: dict[str, int] = defaultdict(int)
    batch = [event_id]
    with Sender() as sender:
        while batch:
            audience = Audience.load()
            for pk in batch:
                fanout(pk, audience)
            for pk in batch:
                for status, count in send_event(pk, sender=sender, deadline=deadline).items():
                    counts[status] += count
            if time.monotonic() > deadline:
                break
            batch = _waiting_events(PUMP_BATCH)
    left = OutboxEvent.objects.filter(fanned_out_at__isnull=True).order_by("pk").only("pk", "uuid").first()
    if left is not None:
        queue.enqueue_fanout(left, on_commit=False)
    return dict(counts)


def _waiting_events(limit: int) -> list[int]:
    return list(OutboxEvent.objects.filter(fanned_out_at__isnull=True).order_by("pk").values_list("pk", flat=True)[:limit])


def _budget() -> float:
    return min(30.0, settings.NOTIFY_LEASE_SECONDS / 2)


# --- Sending ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    excerpt: str = ""
    error: str = ""
    permanent: bool = False  # no point in retrying (the URL is refused)


CHUNK = 100  # deliveries claimed (and their outcomes recorded) together


def _free(now) -> Q:
    return Q(lease_until__isnull=True) | Q(lease_until__lt=now)


def _due(now) -> Q:
    return Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)


def _claim(delivery_ids) -> tuple[list[int], dt.datetime]:
    """Claim the rows that are pending, due and free with one conditional UPDATE ... RETURNING
    (PostgreSQL, and SQLite since 3.35): each row is won by exactly one job, and the chunk costs
    one statement; returns the ids this job won and the lease it holds them until."""
    ids = list(delivery_ids)
    now = timezone.now()
    lease = now + dt.timedelta(seconds=settings.NOTIFY_LEASE_SECONDS)
    if not ids:
        return [], lease
    quote, at = connection.ops.quote_name, connection.ops.adapt_datetimefield_value
    marks = ", ".join(["%s"] * len(ids))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(Delivery._meta.db_table)} SET lease_until = %s, attempts = attempts + 1 "  # noqa: S608
            f"WHERE id IN ({marks}) AND status = %s AND (next_attempt_at IS NULL OR next_attempt_at <= %s) "
            "AND (lease_until IS NULL OR lease_until < %s) RETURNING id",
            [at(lease), *ids, Status.PENDING, at(now), at(now)])
        won = sorted(row[0] for row in cursor.fetchall())
    return won, lease


class Sender:
    """HTTP connections for one job, kept per (scheme, name, port, checked address).

    Every request goes through the SSRF guard first; its checked address picks the pool, and a
    pool only ever connects to that address, so a reused connection never reaches an address
    the guard did not allow, and a name that now resolves elsewhere gets a new pool (checked).
    """

    def __init__(self):
        self.pools: dict[tuple, urllib3.HTTPConnectionPool] = {}

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
        self.pools.clear()

    def _pool(self, target: ssrf.Target) -> urllib3.HTTPConnectionPool:
        key = (target.scheme, target.host, target.port, target.address)
        pool = self.pools.get(key)
        if pool is None:
            timeout = urllib3.Timeout(connect=5, read=settings.NOTIFY_WEBHOOK_TIMEOUT_SECONDS)
            if target.scheme == "https":
                pool = urllib3.HTTPSConnectionPool(
                    target.address, target.port, server_hostname=target.host, assert_hostname=target.host,
                    cert_reqs="CERT_REQUIRED", ca_certs=settings.NOTIFY_CA_BUNDLE or certifi.where(),
                    timeout=timeout, retries=False, maxsize=1)
            else:
                pool = urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout, retries=False,
                                                  maxsize=1)
            self.pools[key] = pool
        return pool

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        """POST `body` to `url` after the SSRF guard, connecting to the address it checked."""
        try:
            target = ssrf.check(url)
        except ssrf.UnsafeURL as exc:
            return Outcome(False, error=str(exc), permanent=True)
        pool = self._pool(target)
        default_port = 443 if target.scheme == "https" else 80
        host = target.host if target.port == default_port else f"{target.host}:{target.port}"
        try:
            response = pool.urlopen("POST", target.path, body=body, redirect=False, preload_content=False,
                                    headers={"Host": host, "Content-Type": "application/json",
                                             "User-Agent": "Goldsmith-Notify/1", **headers})
            excerpt = response.read(_EXCERPT * 4).decode("utf-8", "replace")[:_EXCERPT]
            if response.length_remaining != 0:  # more than we read, or no length: do not reuse it
                response.close()
            response.release_conn()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:_EXCERPT])
        ok = 200 <= response.status < 300
        return Outcome(ok, response.status, excerpt, "" if ok else f"HTTP {response.status}")


def post(url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """One POST on a connection of its own (see Sender)."""
    with Sender() as sender:
        return sender.post(url, body, headers)


def _webhook_headers(delivery: Delivery, endpoint: Endpoint, body: bytes) -> dict[str, str]:
    headers = {"X-Goldsmith-Event": delivery.event.type, "X-Goldsmith-Idempotency-Key": delivery.idempotency_key,
               "X-Goldsmith-Delivery": str(delivery.uuid)}
    if endpoint.secret:
        headers[webhook_signing.HEADER] = webhook_signing.sign(endpoint.secret, body)
    return headers


def unsubscribe_url(user_id: int, event_type: str = "*", scope: str = "*") -> str:
    token = signing.dumps({"u": user_id, "t": event_type, "s": scope}, salt=UNSUBSCRIBE_SALT, compress=True)
    return absolute(reverse("notify:unsubscribe", args=[token]))


def _mail(to: str, subject: str, text: str, html: str, key: str, extra: dict[str, str] | None = None) -> Outcome:
    message = mail.EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [to], headers={
        "Message-ID": f"<{key}@goldsmith>", "X-Goldsmith-Idempotency-Key": key, **(extra or {})})
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except (OSError, mail.BadHeaderError) as exc:
        return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:_EXCERPT])
    return Outcome(True, excerpt="accepted by the mail server")


def _deliver(delivery: Delivery, sender: Sender) -> Outcome:
    body = delivery.event.body
    if delivery.recipient_id is not None:
        unsubscribe = unsubscribe_url(delivery.recipient_id, delivery.event.type)
        subject, text, html = payloads.email(body, unsubscribe)
        return _mail(delivery.recipient.email, subject, text, html, delivery.idempotency_key,
                     {"List-Unsubscribe": f"<{unsubscribe}>", "X-Goldsmith-Event": body["type"]})
    endpoint = delivery.endpoint
    if endpoint.kind == Endpoint.Kind.EMAIL:
        subject, text, html = payloads.email(body)
        return _mail(endpoint.url, subject, text, html, delivery.idempotency_key, {"X-Goldsmith-Event": body["type"]})
    if endpoint.kind == Endpoint.Kind.TEAMS:
        data = payloads.body_bytes(payloads.teams(body))
    elif endpoint.kind == Endpoint.Kind.SLACK:
        data = payloads.body_bytes(payloads.slack(body))
    else:
        data = payloads.body_bytes(body)
    return sender.post(endpoint.url, data, _webhook_headers(delivery, endpoint, data))


def backoff(attempts: int) -> float:
    return min(settings.NOTIFY_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), 3600)


def _still_allowed(delivery: Delivery, roles: dict[int, Roles]) -> bool:
    if delivery.endpoint_id is not None:
        endpoint = delivery.endpoint
        return endpoint.enabled and visibility.endpoint_receives(endpoint, delivery.event,
                                                                 roles.get(endpoint.owner_id, Roles()))
    user = delivery.recipient
    return (user.is_active and bool(user.email)
            and visibility.roles_may_see(roles.get(user.pk, Roles()), delivery.event))


def send(delivery_id: int) -> str:
    """Deliver one row once (claimed); returns the resulting status ("" when not claimed)."""
    with Sender() as sender:
        return dict(_send_chunk([delivery_id], sender)).get(delivery_id, "")


def send_event(event_id: int, *, generation: int = 0, sender: Sender | None = None,
               deadline: float | None = None) -> dict[str, int]:
    """Send the event's due deliveries, chunk by chunk, until the deadline (by default half a
    lease, at most 30 s, from now); enqueue the continuation while some are left. Returns counts
    by resulting status."""
    deadline = deadline if deadline is not None else time.monotonic() + _budget()
    counts: dict[str, int] = defaultdict(int)
    with Sender() as own:
        while True:
            now = timezone.now()
            ids = list(Delivery.objects.filter(event_id=event_id, status=Status.PENDING).filter(_due(now)).filter(
                _free(now)).order_by("pk").values_list("pk", flat=True)[:CHUNK])
            if not ids:
                return dict(counts)
            if time.monotonic() > deadline:
                break
            for _, status in _send_chunk(ids, sender or own):
                counts[status] += 1
    event = OutboxEvent.objects.only("pk", "uuid").get(pk=event_id)
    queue.enqueue_send(event.pk, event.uuid, f"c{generation + 1}", generation=generation + 1, on_commit=False)
    return dict(counts)


def _send_chunk(delivery_ids, sender: Sender) -> list[tuple[int, str]]:
    claimed, lease = _claim(delivery_ids)
    if not claimed:
        return []
    faultpoints.reached("notify.claimed")
    # Hand back what could not be sent before the lease ends (another job may then claim it).
    stop_at = time.monotonic() + settings.NOTIFY_LEASE_SECONDS * 0.8
    # The event is read once per chunk (prefetched), not decoded again for each of its deliveries.
    rows = list(Delivery.objects.filter(pk__in=claimed).select_related("endpoint", "recipient")
                .prefetch_related("event").order_by("pk"))
    roles = all_roles()
    done: list[tuple[int, str]] = []
    sent: list[tuple[Delivery, Outcome, int]] = []
    for index, delivery in enumerate(rows):
        if time.monotonic() > stop_at:
            Delivery.objects.filter(pk__in=[row.pk for row in rows[index:]], lease_until=lease).update(
                lease_until=None, attempts=F("attempts") - 1)
            break
        if not _still_allowed(delivery, roles):
            reason = "the endpoint is disabled" if delivery.endpoint_id and not delivery.endpoint.enabled else \
                "the recipient may no longer see this object"
            Delivery.objects.filter(pk=delivery.pk).update(status=Status.SKIPPED, lease_until=None, error=reason)
            done.append((delivery.pk, Status.SKIPPED))
            continue
        if delivery.recipient_id is not None and _hold_for_digest(delivery):
            done.append((delivery.pk, Status.HELD))
            continue
        started = time.monotonic()
        outcome = _deliver(delivery, sender)
        sent.append((delivery, outcome, int((time.monotonic() - started) * 1000)))
    if sent:
        faultpoints.reached("notify.sent")
        with transaction.atomic():  # one commit for the chunk's outcomes
            done.extend(_record_outcomes(sent))
    return done


def _record_outcomes(sent: list[tuple[Delivery, Outcome, int]]) -> list[tuple[int, str]]:
    """The chunk's successes in one UPDATE per distinct answer (usually one), and one for their
    endpoints' failure counts; each failure through record_outcome (its retry, its endpoint's count)."""
    now = timezone.now()
    answers: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
    done = []
    for delivery, outcome, latency in sent:
        if outcome.ok:
            answers[(outcome.status_code, outcome.excerpt[:_EXCERPT])].append((delivery.pk, latency))
            done.append((delivery.pk, Status.DELIVERED))
        else:
            done.append((delivery.pk, record_outcome(delivery, outcome, latency)))
    for (status_code, excerpt), latencies in answers.items():
        _mark_delivered(latencies, now, status_code, excerpt)
    endpoints = {delivery.endpoint_id for delivery, outcome, _ in sent if outcome.ok and delivery.endpoint_id}
    if endpoints:
        Endpoint.objects.filter(pk__in=endpoints, consecutive_failures__gt=0).update(consecutive_failures=0)
    return done


def _mark_delivered(latencies: list[tuple[int, int]], now: dt.datetime, status_code: int | None, excerpt: str) -> None:
    """One UPDATE for rows that got the same answer, each with its own latency (a CASE on the id:
    Django's bulk_update builds the same statement through expressions, 200 times slower here)."""
    quote, at = connection.ops.quote_name, connection.ops.adapt_datetimefield_value
    cases = " ".join(["WHEN %s THEN %s"] * len(latencies))
    marks = ", ".join(["%s"] * len(latencies))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(Delivery._meta.db_table)} SET status = %s, delivered_at = %s, lease_until = NULL, "  # noqa: S608
            f"status_code = %s, response_excerpt = %s, error = '', latency_ms = CASE id {cases} END "
            f"WHERE id IN ({marks})",
            [Status.DELIVERED, at(now), status_code, excerpt,
             *[value for pair in latencies for value in pair], *[pk for pk, _ in latencies]])


def record_outcome(delivery: Delivery, outcome: Outcome, latency_ms: int) -> str:
    now = timezone.now()
    fields = {"lease_until": None, "latency_ms": latency_ms, "status_code": outcome.status_code,
              "response_excerpt": outcome.excerpt[:_EXCERPT], "error": outcome.error[:_EXCERPT]}
    with transaction.atomic():
        if outcome.ok:
            Delivery.objects.filter(pk=delivery.pk).update(status=Status.DELIVERED, delivered_at=now, **fields)
            if delivery.endpoint_id:
                Endpoint.objects.filter(pk=delivery.endpoint_id).update(consecutive_failures=0)
            return Status.DELIVERED
        expired = now - delivery.event.occurred_at >= dt.timedelta(hours=settings.NOTIFY_RETRY_HOURS)
        if outcome.permanent or expired:
            Delivery.objects.filter(pk=delivery.pk).update(status=Status.FAILED, **fields)
            status = Status.FAILED
        else:
            delay = backoff(delivery.attempts)
            Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now + dt.timedelta(seconds=delay), **fields)
            due = now + dt.timedelta(seconds=delay)
            queue.enqueue_send(delivery.event_id, delivery.event.uuid, f"r{int(due.timestamp())}", delay=delay)
            status = Status.PENDING
        if delivery.endpoint_id:
            _count_failure(delivery.endpoint_id, outcome)
    return status


def _count_failure(endpoint_id: int, outcome: Outcome) -> None:
    Endpoint.objects.filter(pk=endpoint_id).update(consecutive_failures=F("consecutive_failures") + 1)
    endpoint = Endpoint.objects.select_related("owner").get(pk=endpoint_id)
    if not endpoint.enabled or endpoint.consecutive_failures < settings.NOTIFY_DISABLE_AFTER:
        return
    reason = (f"disabled after {endpoint.consecutive_failures} failed deliveries in a row; last: "
              f"{outcome.error or outcome.status_code}")[:500]
    if not Endpoint.objects.filter(pk=endpoint_id, enabled=True).update(enabled=False, disabled_reason=reason,
                                                                        disabled_at=timezone.now()):
        return
    audit.record("notify.endpoint_disable", actor=audit.worker_actor(), obj=endpoint, department=endpoint.department_id,
                 changes={"enabled": [True, False], "reason": [None, reason]})
    transaction.on_commit(lambda: _tell_owner(endpoint, reason))


def _tell_owner(endpoint: Endpoint, reason: str) -> None:
    """The disabled-endpoint notice (its page shows it too); a mail failure is only logged."""
    log.warning("notification endpoint %s %s", endpoint.uuid, reason)
    if not endpoint.owner.email:
        return
    link = absolute(reverse("notify:endpoint-detail", args=[endpoint.uuid]))
    text = (f"Goldsmith stopped sending to your {endpoint.get_kind_display()} endpoint "
            f"\"{endpoint}\": {reason}.\n\nFix the receiver, then enable it again: {link}\n")
    try:
        mail.send_mail(f"[Goldsmith] Endpoint disabled: {endpoint}", text, settings.DEFAULT_FROM_EMAIL,
                       [endpoint.owner.email])
    except OSError:
        log.exception("could not tell %s that endpoint %s was disabled", endpoint.owner, endpoint.uuid)


# --- Digests ------------------------------------------------------------------------------------


def _hold_for_digest(delivery: Delivery) -> bool:
    """Hold the recipient's message for a digest when more than the threshold came in the window."""
    window = dt.timedelta(minutes=settings.NOTIFY_DIGEST_MINUTES)
    now = timezone.now()
    # Only the messages before this one count: a burst sends its first N at once, then holds.
    recent = (Delivery.objects.filter(recipient_id=delivery.recipient_id, created_at__gte=now - window,
                                      pk__lt=delivery.pk).exclude(status=Status.SKIPPED).count())
    if recent < settings.NOTIFY_DIGEST_THRESHOLD:
        return False
    held = (Delivery.objects.filter(recipient_id=delivery.recipient_id, status=Status.HELD)
            .order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first())
    due = held or now + window
    Delivery.objects.filter(pk=delivery.pk).update(status=Status.HELD, next_attempt_at=due, lease_until=None)
    queue.enqueue_digest(delivery.recipient_id, due, delay=(due - now).total_seconds(), on_commit=False)
    return True


def send_digest(recipient_id: int) -> int:
    """Send the recipient's due held messages as one digest; returns how many it held."""
    now = timezone.now()
    lease = now + dt.timedelta(seconds=settings.NOTIFY_LEASE_SECONDS)
    due = Delivery.objects.filter(recipient_id=recipient_id, status=Status.HELD, next_attempt_at__lte=now).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now))
    ids = list(due.values_list("pk", flat=True))
    if not ids or Delivery.objects.filter(pk__in=ids, status=Status.HELD).update(lease_until=lease) != len(ids):
        Delivery.objects.filter(pk__in=ids, lease_until=lease).update(lease_until=None)
        return 0
    rows = list(Delivery.objects.filter(pk__in=ids).select_related("event", "recipient").order_by("event__occurred_at"))
    user = rows[0].recipient
    rows = [row for row in rows if visibility.may_see(user, row.event)]
    if not rows or not user.email or not user.is_active:
        Delivery.objects.filter(pk__in=ids).update(status=Status.SKIPPED, lease_until=None)
        return 0
    subject, text, html = payloads.digest([row.event.body for row in rows], unsubscribe_url(recipient_id))
    key = f"digest.{rows[0].idempotency_key}"
    started = time.monotonic()
    outcome = _mail(user.email, subject, text, html, key)
    latency = int((time.monotonic() - started) * 1000)
    if outcome.ok:
        Delivery.objects.filter(pk__in=[row.pk for row in rows]).update(
            status=Status.DELIVERED, delivered_at=timezone.now(), digest=True, lease_until=None, latency_ms=latency,
            response_excerpt=outcome.excerpt, attempts=F("attempts") + 1)
        Delivery.objects.filter(pk__in=ids, status=Status.HELD).update(status=Status.SKIPPED, lease_until=None)
        return len(rows)
    retry = now + dt.timedelta(seconds=settings.NOTIFY_RETRY_BASE_SECONDS)
    Delivery.objects.filter(pk__in=ids).update(lease_until=None, next_attempt_at=retry, error=outcome.error,
                                               attempts=F("attempts") + 1)
    queue.enqueue_digest(recipient_id, retry, delay=settings.NOTIFY_RETRY_BASE_SECONDS, on_commit=False)
    return 0


# --- The safety net -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Uuid:
    uuid: object


def reconcile(limit: int = 2000) -> dict[str, int]:
    """Enqueue what a lost job left behind; returns counts by kind."""
    now = timezone.now()
    counts = {"fanouts": 0, "deliveries": 0, "digests": 0}
    stale = now - dt.timedelta(seconds=10)  # a fresh event's own job is about to run
    # One pump takes every waiting event; wake one unless one waits in the queue already.
    oldest = OutboxEvent.objects.filter(fanned_out_at__isnull=True, occurred_at__lt=stale).order_by("pk").only(
        "pk", "uuid").first()
    if oldest is not None and not queue.alive(queue.fanout_job_id(oldest)):
        queue.enqueue_fanout(oldest, on_commit=False)
        counts["fanouts"] += 1
    free, due = _free(now), _due(now)
    pending = (Delivery.objects.filter(status=Status.PENDING, created_at__lt=stale).filter(free).filter(due)
               .values_list("event_id", "event__uuid", "next_attempt_at", "lease_until")[:limit])
    waiting: dict[int, dict] = {}
    for event_id, event_uuid, next_attempt_at, lease_until in pending:
        entry = waiting.setdefault(event_id, {"uuid": event_uuid, "orphaned": False,
                                              "jobs": {queue.fanout_job_id(_Uuid(event_uuid))}})
        entry["orphaned"] |= lease_until is not None  # claimed, and its holder's lease ran out
        if next_attempt_at is not None:
            entry["jobs"].add(queue.send_job_id(event_uuid, f"r{int(next_attempt_at.timestamp())}"))
    sweep = int(now.timestamp()) // settings.NOTIFY_RECONCILE_SECONDS
    for event_id, entry in waiting.items():
        if not entry["orphaned"] and any(queue.waiting(job_id) for job_id in entry["jobs"]):
            continue
        queue.enqueue_send(event_id, entry["uuid"], f"s{sweep}", on_commit=False)
        counts["deliveries"] += 1
    held = (Delivery.objects.filter(status=Status.HELD, next_attempt_at__lte=now).filter(free)
            .values_list("recipient_id", flat=True).distinct())
    for recipient_id in held:
        queue.enqueue_digest(recipient_id, now, on_commit=False)
        counts["digests"] += 1
    return counts
