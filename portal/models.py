"""Departments, roles and the audit trail."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Department(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A role a user holds, in one department (editor) or across Goldsmith (department empty)."""

    class Role(models.TextChoices):
        SECURITY = "security", "Security team"
        EDITOR = "editor", "Department editor"
        AUDITOR = "auditor", "Auditor"
        ADMIN = "admin", "Administrator"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    department = models.ForeignKey(Department, on_delete=models.CASCADE, null=True, blank=True,
                                   related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "department", "role"], name="membership_unique"),
            models.UniqueConstraint(fields=["user", "role"], condition=models.Q(department__isnull=True),
                                    name="membership_unique_global"),
            # Editors work inside a department; the other roles span Goldsmith.
            models.CheckConstraint(
                condition=models.Q(role="editor", department__isnull=False) | ~models.Q(role="editor"),
                name="membership_editor_has_department"),
        ]

    def __str__(self) -> str:
        where = f" in {self.department}" if self.department_id else ""
        return f"{self.user} as {self.get_role_display()}{where}"


class AuditEvent(models.Model):
    """One state-changing action, appended to a hash chain (see portal/audit.py).

    Rows are never updated or deleted (a PostgreSQL trigger refuses it); `hash` covers the
    canonical JSON of every other field plus `prev_hash`, so any edit, deletion, insertion or
    reordering breaks the chain that `manage.py verifyaudit` walks.
    """

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        FAILURE = "failure", "Failure"
        DENIED = "denied", "Denied"

    at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                              related_name="+", db_constraint=False)
    actor_name = models.CharField(max_length=150)  # username, or "worker:<host>", "system", "anonymous"
    actor_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_label = models.CharField(max_length=300, blank=True)
    department = models.ForeignKey(Department, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                                   db_constraint=False)
    changes = models.JSONField(default=dict, blank=True)  # {"field": [before, after]} or free-form detail
    request_id = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # Each filter of the history page has an index ending in id, so a filtered page is an
            # ordered index range scan (keyset pagination) whatever the table's size.
            models.Index(fields=["object_type", "object_id", "id"], name="audit_object_id"),
            models.Index(fields=["actor_name", "id"], name="audit_actor"),
            models.Index(fields=["department", "id"], name="audit_department"),
            models.Index(fields=["action", "id"], name="audit_action_id"),
            models.Index(fields=["outcome", "id"], name="audit_outcome_id"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.object_label} by {self.actor_name}"


class AuditCheckpoint(models.Model):
    """A recorded (head hash, count) pair: truncation past it is detectable."""

    at = models.DateTimeField(auto_now_add=True)
    last_event_id = models.BigIntegerField()
    head_hash = models.CharField(max_length=64)
    count = models.BigIntegerField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"checkpoint at event {self.last_event_id} ({self.head_hash[:12]})"
