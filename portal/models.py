"""Departments, roles, sign-in identities, API tokens and the audit trail."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from portal.text import validate_plain_name


class Department(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[validate_plain_name])
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
    # The version of portal.redact's rules the event was stored under (0: before versions were
    # recorded). Not hashed: it only tells exports which rows must be screened again.
    redaction = models.PositiveSmallIntegerField(default=0)

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


class RoleMapping(models.Model):
    """An Entra ID app role (a value of the ID token's `roles` claim) and the membership it grants.

    Administrators edit these in the Django admin. At every Entra sign-in the user's memberships
    are set to exactly what their app roles map to, so removing someone's app role in Entra
    removes their Goldsmith role at their next sign-in.
    """

    claim_value = models.CharField(max_length=120, db_index=True,
                                   help_text="The app role's value as it appears in the token, e.g. Goldsmith.Editor.web")
    role = models.CharField(max_length=16, choices=Membership.Role.choices)
    department = models.ForeignKey(Department, on_delete=models.CASCADE, null=True, blank=True,
                                   related_name="role_mappings", help_text="Editors only: the department they edit.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["claim_value", "role"]
        constraints = [
            models.UniqueConstraint(fields=["claim_value", "role", "department"], name="role_mapping_unique"),
            models.UniqueConstraint(fields=["claim_value", "role"], condition=models.Q(department__isnull=True),
                                    name="role_mapping_unique_global"),
            models.CheckConstraint(
                condition=(models.Q(role="editor", department__isnull=False)
                           | (~models.Q(role="editor") & models.Q(department__isnull=True))),
                name="role_mapping_department_iff_editor"),
        ]

    def __str__(self) -> str:
        where = f" in {self.department}" if self.department_id else ""
        return f"{self.claim_value} → {self.get_role_display()}{where}"


class ExternalIdentity(models.Model):
    """Links a Goldsmith user to an Entra ID account (tenant id + object id, which never change)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identity")
    tenant_id = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "external identities"
        constraints = [models.UniqueConstraint(fields=["tenant_id", "object_id"], name="external_identity_unique")]

    def __str__(self) -> str:
        return f"{self.user} (Entra {self.object_id})"


class ApiToken(models.Model):
    """A personal access token for /api/: only its SHA-256 is stored; the token is shown once.

    A token acts as its user, with the user's current roles; it stops working when revoked,
    expired, or when the user is deactivated.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)  # the token's first characters, to recognise it in lists
    digest = models.CharField(max_length=64, unique=True)  # sha256 hex of the whole token
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"], name="api_token_user_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
