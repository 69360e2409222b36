"""Notifications: the outbox of events, where they go (endpoints, subscriptions) and each delivery.

An `OutboxEvent` is written in the transaction of the change it reports (notify.events.emit),
so it commits or rolls back with it. Fan-out turns it into `Delivery` rows, one per endpoint or
e-mail recipient, unique per pair: the idempotency key receivers see is derived from that pair,
so a retried or reconciled delivery can never become a second one.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from portal.models import Department


class OutboxEvent(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=60, db_index=True)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=700)  # a uuid, or a source image "Publisher:offer:sku@version" or gallery id
    department = models.ForeignKey(Department, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # Users the event concerns directly ("my builds", "gold images I own", "approvals I can give").
    subjects = models.JSONField(default=dict, blank=True)
    body = models.JSONField()
    occurred_at = models.DateTimeField(db_index=True)
    fanned_out_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.object_id}"


class Endpoint(models.Model):
    class Kind(models.TextChoices):
        EMAIL = "email", "E-mail address"
        TEAMS = "teams", "Microsoft Teams incoming webhook"
        SLACK = "slack", "Slack incoming webhook"
        WEBHOOK = "webhook", "Generic webhook (signed JSON)"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    url = models.CharField(max_length=1000)  # an https URL, or an e-mail address for kind=email
    # The HMAC key of a generic webhook: shown once at creation, never rendered, logged or exported.
    secret = models.CharField(max_length=200, blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # None: everything the owner may see; a department: only that department's objects.
    department = models.ForeignKey(Department, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    event_types = models.JSONField(default=list)
    enabled = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_reason = models.CharField(max_length=500, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name or f"{self.get_kind_display()} {self.uuid}"

    @property
    def scope(self) -> str:
        return f"department:{self.department.slug}" if self.department_id else "all"


class Subscription(models.Model):
    """One (event type, scope) a user wants by e-mail."""

    class Scope(models.TextChoices):
        MINE = "mine", "My builds"
        DEPARTMENT = "department", "My departments"
        OWNED = "owned", "Gold images I own"
        APPROVALS = "approvals", "Approvals I can give"
        ALL = "all", "Everything I can see"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    event_type = models.CharField(max_length=60)
    scope = models.CharField(max_length=12, choices=Scope.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "event_type", "scope"], name="subscription_unique")]

    def __str__(self) -> str:
        return f"{self.user} {self.event_type} ({self.scope})"


class Preferences(models.Model):
    """Whether the user chose their subscriptions; until they do, their roles' defaults apply."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    customized = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.user} ({'chosen' if self.customized else 'defaults'})"


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        HELD = "held", "Held for a digest"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"  # gave up: retries exhausted, or the endpoint was disabled
        SKIPPED = "skipped", "Skipped"  # the recipient may no longer see the object

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                                  related_name="+")
    idempotency_key = models.CharField(max_length=80, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    digest = models.BooleanField(default=False)  # delivered inside a digest message
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="delivery_event_endpoint"),
            models.UniqueConstraint(fields=["event", "recipient"], name="delivery_event_recipient"),
            models.CheckConstraint(condition=models.Q(endpoint__isnull=False) ^ models.Q(recipient__isnull=False),
                                   name="delivery_one_target"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"{self.event} -> {self.endpoint or self.recipient}"
