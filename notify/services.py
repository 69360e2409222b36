"""Every write a person makes to notifications; each records exactly one audit event.

Endpoint URLs of Teams and Slack carry their own credential, and webhook secrets are one, so
audit events name an endpoint's kind, host, scope and event types, never its URL or secret.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from notify import catalog, queue, ssrf
from notify import signing as webhook_signing
from notify.delivery import UNSUBSCRIBE_SALT
from notify.models import Delivery, Endpoint, Preferences, Subscription
from notify.visibility import default_subscriptions
from portal import audit
from portal.access import roles_of
from portal.models import Department

UNSUBSCRIBE_MAX_AGE = 60 * 60 * 24 * 90  # an unsubscribe link works for 90 days


class NotifyError(Exception):
    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.message = message
        self.field = field


def may_manage_scope(user, department: Department | None) -> bool:
    """Department endpoints: that department's editors and the security team; Goldsmith-wide
    ones: the security team and auditors (who want the audit chain's alarms)."""
    roles = roles_of(user)
    if department is None:
        return roles.security or roles.auditor
    return roles.security or roles.edits(department.pk)


def may_manage(user, endpoint: Endpoint) -> bool:
    return endpoint.owner_id == user.pk or may_manage_scope(user, endpoint.department)


def _audit_view(endpoint: Endpoint) -> dict:
    host = endpoint.url.rpartition("@")[2] if endpoint.kind == Endpoint.Kind.EMAIL else urlsplit(endpoint.url).hostname
    return {"kind": endpoint.kind, "host": host, "scope": endpoint.scope, "event_types": endpoint.event_types}


def check_event_types(event_types: Iterable[str]) -> list[str]:
    chosen = sorted(set(event_types))
    unknown = [name for name in chosen if name not in catalog.BY_NAME]
    if unknown:
        raise NotifyError(f"Unknown event types: {', '.join(unknown)}. Known: {', '.join(catalog.NAMES)}.",
                          "event_types")
    if not chosen:
        raise NotifyError("Choose at least one event type.", "event_types")
    return chosen


@transaction.atomic
def endpoint_create(*, actor, kind: str, url: str, event_types: Iterable[str], department: Department | None = None,
                    secret: str = "", name: str = "") -> tuple[Endpoint, str]:
    """A new endpoint owned by `actor`. Returns (endpoint, secret): the secret is generated for
    generic webhooks when not given, and is shown to the caller once.

    Raises NotifyError for a URL the SSRF guard refuses, an unknown event type or a scope the
    actor may not manage.
    """
    if kind not in Endpoint.Kind.values:
        raise NotifyError(f"Unknown kind {kind!r}.", "kind")
    if not may_manage_scope(actor, department):
        raise NotifyError("You may not manage endpoints for this scope.", "scope")
    chosen = check_event_types(event_types)
    url = url.strip()
    if kind == Endpoint.Kind.EMAIL:
        try:
            validate_email(url)
        except ValidationError:
            raise NotifyError("Give an e-mail address.", "url") from None
    else:
        try:
            ssrf.check(url)
        except ssrf.UnsafeURL as exc:
            raise NotifyError(f"This URL is refused: {exc}.", "url") from None
    if kind == Endpoint.Kind.WEBHOOK and not secret:
        secret = webhook_signing.new_secret()
    endpoint = Endpoint.objects.create(kind=kind, url=url, secret=secret, owner=actor, department=department,
                                       event_types=chosen, name=name.strip()[:100])
    audit.record("notify.endpoint_create", actor=actor, obj=endpoint, department=department,
                 changes={key: [None, value] for key, value in _audit_view(endpoint).items()})
    return endpoint, secret


@transaction.atomic
def endpoint_delete(*, actor, endpoint: Endpoint) -> None:
    audit.record("notify.endpoint_delete", actor=actor, obj=endpoint, department=endpoint.department_id,
                 changes={key: [value, None] for key, value in _audit_view(endpoint).items()})
    endpoint.delete()


@transaction.atomic
def endpoint_enable(*, actor, endpoint: Endpoint) -> Endpoint:
    """Turn a disabled endpoint back on (its failure count starts again)."""
    endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    if endpoint.enabled:
        return endpoint
    endpoint.enabled, endpoint.consecutive_failures, endpoint.disabled_reason, endpoint.disabled_at = True, 0, "", None
    endpoint.save()
    audit.record("notify.endpoint_enable", actor=actor, obj=endpoint, department=endpoint.department_id,
                 changes={"enabled": [False, True]})
    return endpoint


@transaction.atomic
def delivery_redeliver(*, actor, delivery: Delivery) -> Delivery:
    """Send a delivery again (same idempotency key, so receivers can tell); refused while pending."""
    delivery = Delivery.objects.select_for_update().get(pk=delivery.pk)
    if delivery.status in (Delivery.Status.PENDING, Delivery.Status.HELD):
        raise NotifyError("This delivery is still on its way.")
    before = delivery.status
    delivery.status, delivery.next_attempt_at, delivery.lease_until = Delivery.Status.PENDING, None, None
    delivery.save(update_fields=["status", "next_attempt_at", "lease_until"])
    endpoint = delivery.endpoint
    audit.record("notify.redeliver", actor=actor, obj=delivery, label=f"{delivery.event.type} to {endpoint}",
                 department=endpoint.department_id if endpoint else None,
                 changes={"status": [before, "pending"], "event": [None, str(delivery.event.uuid)]})
    queue.enqueue_send(delivery.event_id, delivery.event.uuid, f"m{delivery.pk}.{delivery.attempts}")
    return delivery


def subscriptions(user) -> set[tuple[str, str]]:
    """The (event type, scope) pairs the user receives by e-mail now (chosen, or their roles' defaults)."""
    if Preferences.objects.filter(user=user, customized=True).exists():
        return set(Subscription.objects.filter(user=user).values_list("event_type", "scope"))
    return default_subscriptions(roles_of(user))


@transaction.atomic
def subscriptions_set(*, actor, user, chosen: Iterable[tuple[str, str]], reason: str = "profile") -> set:
    """Replace the user's subscriptions with `chosen`; records one event with what changed."""
    wanted = set(chosen)
    for event_type, scope in wanted:
        if event_type not in catalog.BY_NAME or scope not in Subscription.Scope.values:
            raise NotifyError(f"Unknown subscription {event_type} ({scope}).")
    before = subscriptions(user)
    Preferences.objects.update_or_create(user=user, defaults={"customized": True})
    Subscription.objects.filter(user=user).delete()
    Subscription.objects.bulk_create([Subscription(user=user, event_type=t, scope=s) for t, s in sorted(wanted)])
    audit.record("notify.subscriptions_update", actor=actor, obj=user, object_type="user", label=user.get_username(),
                 changes={"added": [None, sorted(f"{t} ({s})" for t, s in wanted - before)],
                          "removed": [sorted(f"{t} ({s})" for t, s in before - wanted), None], "via": [None, reason]})
    return wanted


def read_unsubscribe_token(token: str) -> dict:
    """The token's {"u": user id, "t": event type or "*", "s": scope or "*"}; raises NotifyError."""
    try:
        return signing.loads(token, salt=UNSUBSCRIBE_SALT, max_age=UNSUBSCRIBE_MAX_AGE)
    except signing.BadSignature:
        raise NotifyError("This link is not valid (or is older than 90 days).") from None


def unsubscribe(*, token: str, user_model) -> tuple[object, set]:
    """Apply a signed unsubscribe link, no sign-in needed: drop that type (or every e-mail)."""
    data = read_unsubscribe_token(token)
    user = user_model.objects.filter(pk=data.get("u"), is_active=True).first()
    if user is None:
        raise NotifyError("This link is not valid.")
    current = subscriptions(user)
    kept = set() if data.get("t") == "*" else {(t, s) for t, s in current if t != data.get("t")}
    return user, subscriptions_set(actor=user, user=user, chosen=kept, reason="unsubscribe link")
