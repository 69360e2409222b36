"""Gold images, department layers, builds and their history.

Version content is stored in Image Builder's own JSON shapes (a source dict, customizer
dicts, distributor dicts ...) so that composition is a merge, import is a copy and the
schema rules in builds/schema.py apply unchanged. Published versions are immutable: the
services in builds/services.py refuse to change them.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from builds.validators import validate_name, validate_slug, validate_version
from builds.versions import Version
from portal.models import Department


class OsType(models.TextChoices):
    LINUX = "Linux", "Linux"
    WINDOWS = "Windows", "Windows"


class SecurityType(models.TextChoices):
    """What the security team declares the image is for (checked against the source's features)."""

    STANDARD = "Standard", "Standard"
    TRUSTED_LAUNCH = "TrustedLaunch", "Trusted Launch"
    CONFIDENTIAL_VM = "ConfidentialVM", "Confidential VM"


class Generation(models.TextChoices):
    V1 = "V1", "Generation 1"
    V2 = "V2", "Generation 2"


class VersionedModel(models.Model):
    """Semantic version columns shared by gold image and layer versions (sortable numerically)."""

    version = models.CharField(max_length=32, validators=[validate_version])
    major = models.PositiveIntegerField(editable=False, default=0)
    minor = models.PositiveIntegerField(editable=False, default=0)
    patch = models.PositiveIntegerField(editable=False, default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                     null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        # Derived columns only; the rules about who may change what live in services.
        parsed = Version.parse(self.version)
        self.major, self.minor, self.patch = parsed.major, parsed.minor, parsed.patch
        super().save(*args, **kwargs)

    @property
    def semver(self) -> Version:
        return Version(self.major, self.minor, self.patch)


class GoldImage(models.Model):
    slug = models.SlugField(max_length=50, unique=True, validators=[validate_slug])
    name = models.CharField(max_length=100, validators=[validate_name])
    description = models.TextField(blank=True)
    os_type = models.CharField(max_length=10, choices=OsType.choices)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class GoldImageVersion(VersionedModel):
    """Everything Image Builder needs for the security team's baseline, at one version."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        DEPRECATED = "deprecated", "Deprecated"
        REVOKED = "revoked", "Revoked"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    gold_image = models.ForeignKey(GoldImage, on_delete=models.PROTECT, related_name="versions")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT, db_index=True)
    status_reason = models.TextField(blank=True)
    changelog = models.TextField(blank=True)
    deprecated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                      null=True, blank=True)
    deprecated_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                   null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    # The image: source as Image Builder's source object, and what it is declared to be.
    source = models.JSONField(default=dict)  # {"type": "PlatformImage", "publisher": ..., ...}
    security_type = models.CharField(max_length=16, choices=SecurityType.choices, default=SecurityType.STANDARD)
    hyper_v_generation = models.CharField(max_length=2, choices=Generation.choices, default=Generation.V2)

    # Baseline steps: "before" run ahead of every department layer, "after" once they are done.
    customize_before = models.JSONField(default=list, blank=True)
    customize_after = models.JSONField(default=list, blank=True)
    validators_before = models.JSONField(default=list, blank=True)
    validators_after = models.JSONField(default=list, blank=True)
    # continueDistributeOnFailure / sourceValidationOnly, exactly as given (absent stays absent).
    validate_options = models.JSONField(default=dict, blank=True)

    distribute = models.JSONField(default=list, blank=True)  # Image Builder distributor objects
    vm_profile = models.JSONField(default=dict, blank=True)  # vmSize, osDiskSizeGB, userAssignedIdentities, vnetConfig
    identity = models.CharField(max_length=400, blank=True)  # ARM id of the template's user-assigned identity
    build_timeout_minutes = models.PositiveIntegerField(null=True, blank=True)  # None/0: Azure's default of 240
    error_handling = models.JSONField(default=dict, blank=True)
    optimize = models.JSONField(default=dict, blank=True)
    staging_resource_group = models.CharField(max_length=300, blank=True)
    managed_resource_tags = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    # Template properties Goldsmith carries through untouched (autoRun, additionalDataDisks).
    extra_properties = models.JSONField(default=dict, blank=True)

    # Where templates are created; empty means the portal's configured defaults.
    subscription_id = models.CharField(max_length=64, blank=True)
    resource_group = models.CharField(max_length=90, blank=True)
    location = models.CharField(max_length=40, blank=True)

    import_notes = models.JSONField(default=list, blank=True)  # problems found when imported
    wizard_step = models.CharField(max_length=20, blank=True)  # last wizard step completed, for drafts

    class Meta:
        ordering = ["gold_image", "-major", "-minor", "-patch"]
        constraints = [models.UniqueConstraint(fields=["gold_image", "version"], name="gold_version_unique")]

    def __str__(self) -> str:
        return f"{self.gold_image.slug}@{self.version}"

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT

    @property
    def is_buildable(self) -> bool:
        return self.status in (self.Status.PUBLISHED, self.Status.DEPRECATED)

    # The statuses each change may start from: the services enforce it, the pages offer only these.
    CHANGES_FROM = {"published": ("draft",), "deprecated": ("published",), "revoked": ("published", "deprecated")}

    def can_become(self, status: str) -> bool:
        return self.status in self.CHANGES_FROM[status]

    @property
    def can_publish(self) -> bool:
        return self.can_become(self.Status.PUBLISHED)

    @property
    def can_deprecate(self) -> bool:
        return self.can_become(self.Status.DEPRECATED)

    @property
    def can_revoke(self) -> bool:
        return self.can_become(self.Status.REVOKED)


class Layer(models.Model):
    """A department's customizations on top of one gold image."""

    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="layers")
    slug = models.SlugField(max_length=50, validators=[validate_slug])
    name = models.CharField(max_length=100, validators=[validate_name])
    description = models.TextField(blank=True)
    gold_image = models.ForeignKey(GoldImage, on_delete=models.PROTECT, related_name="layers")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["department", "slug"]
        constraints = [models.UniqueConstraint(fields=["department", "slug"], name="layer_unique")]

    def __str__(self) -> str:
        return f"{self.department.slug}/{self.slug}"


class LayerVersion(VersionedModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        DEPRECATED = "deprecated", "Deprecated"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    layer = models.ForeignKey(Layer, on_delete=models.PROTECT, related_name="versions")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT, db_index=True)
    changelog = models.TextField(blank=True)
    accepts = models.CharField(max_length=100, default="*")  # range of gold versions, builds/versions.py syntax
    customize = models.JSONField(default=list, blank=True)
    validators = models.JSONField(default=list, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    # The build network a department chooses (compose.LAYER_NETWORK_KEYS of vmProfile.vnetConfig),
    # when the policy's layers_may_set_network allows it.
    network = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["layer", "-major", "-minor", "-patch"]
        constraints = [models.UniqueConstraint(fields=["layer", "version"], name="layer_version_unique")]

    def __str__(self) -> str:
        return f"{self.layer}@{self.version}"

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT


class Build(models.Model):
    """One requested image build: exactly one Image Builder template and at most one run."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SUBMITTING = "submitting", "Submitting"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIALLY_SUCCEEDED = "partially_succeeded", "Partially succeeded"
        FAILED = "failed", "Failed"
        CANCELING = "canceling", "Canceling"
        CANCELED = "canceled", "Canceled"

    TERMINAL = frozenset({State.SUCCEEDED, State.PARTIALLY_SUCCEEDED, State.FAILED, State.CANCELED})
    ACTIVE = frozenset({State.PENDING, State.SUBMITTING, State.RUNNING, State.CANCELING})

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    gold_version = models.ForeignKey(GoldImageVersion, on_delete=models.PROTECT, related_name="builds")
    layer_versions = models.ManyToManyField(LayerVersion, through="BuildLayer", related_name="builds", blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, null=True, blank=True, related_name="builds")
    rebuild_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # The release channel the gold version was resolved from at request time ("" when pinned).
    channel = models.CharField(max_length=50, blank=True)

    template = models.JSONField()  # the composed body, frozen at request time
    template_sha256 = models.CharField(max_length=64)
    template_name = models.CharField(max_length=64, unique=True)
    subscription_id = models.CharField(max_length=64)
    resource_group = models.CharField(max_length=90)
    location = models.CharField(max_length=40)

    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    sub_state = models.CharField(max_length=20, blank=True)  # Image Builder's runSubState while running
    run_started = models.BooleanField(default=False)  # the run was accepted by Image Builder
    run_operation_url = models.CharField(max_length=1000, blank=True)  # the run's Azure-AsyncOperation URL
    attempts = models.PositiveIntegerField(default=0)  # submit attempts (claims), for backoff and job ids
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)  # a submit job holds the build until then
    error_code = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    log_uri = models.CharField(max_length=1000, blank=True)
    staging_resource_group = models.CharField(max_length=300, blank=True)  # exactStagingResourceGroup
    source_exact_version = models.CharField(max_length=400, blank=True)  # exactVersion Azure resolved
    cancel_requested = models.BooleanField(default=False)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    stuck_reported = models.BooleanField(default=False)  # a stuck Canceling was reported once
    outputs_collected = models.BooleanField(default=False)
    template_deleted_at = models.DateTimeField(null=True, blank=True)
    cleanup_error = models.TextField(blank=True)
    # Where the run's Packer log lives in the staging account, once found (so a live tail costs
    # one ranged read, not an ARM listing and a blob listing each time).
    log_account_url = models.CharField(max_length=500, blank=True)
    log_blob = models.CharField(max_length=400, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)  # last time the sweep saw the template

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["state", "resource_group"], name="build_state_rg"),
            models.Index(fields=["department", "-created_at"], name="build_department_created"),
            models.Index(fields=["requested_by", "-created_at"], name="build_requester_created"),
            models.Index(fields=["gold_version", "-created_at"], name="build_gold_created"),
            models.Index(fields=["-created_at", "-id"], name="build_created_id"),
        ]

    def __str__(self) -> str:
        return f"build {str(self.uuid)[:8]} of {self.gold_version}"

    @property
    def is_terminal(self) -> bool:
        return self.state in self.TERMINAL

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE


class BuildLog(models.Model):
    """Goldsmith's own copy of one of a build's logs (customization.log, and validation.log when
    the template has validators), kept (redacted) before the staging group is deleted.

    The text is stored as gzip members of about CHUNK_BYTES each, cut at line ends, so any line
    or byte range is read by decompressing one or two members: `index` lists, per member, the
    text offset, the offset and length of the member in the gzip stream, and its first line.
    Concatenated, the members are one valid gzip file (the download). Members are rows of
    BuildLogChunk, or blocks of one blob in BUILD_LOG_CONTAINER_URL.
    """

    class Storage(models.TextChoices):
        DATABASE = "database", "Database"
        CONTAINER = "container", "Blob container"

    class Name(models.TextChoices):
        CUSTOMIZATION = "customization", "customization.log"
        VALIDATION = "validation", "validation.log"  # when the template has in-VM validators

    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="kept_logs")
    name = models.CharField(max_length=20, choices=Name.choices, default=Name.CUSTOMIZATION)
    storage = models.CharField(max_length=10, choices=Storage.choices)
    blob_name = models.CharField(max_length=200, blank=True)  # in BUILD_LOG_CONTAINER_URL
    source_url = models.CharField(max_length=1000, blank=True)  # the staging blob it was copied from
    size = models.BigIntegerField(default=0)  # bytes of redacted text
    compressed_size = models.BigIntegerField(default=0)
    lines = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)  # of the redacted text (what the download gives)
    index = models.JSONField(default=list)  # [[text_offset, gz_offset, gz_length, first_line], ...]
    sections = models.JSONField(default=list)  # packerlog sections, as dicts
    failed_step = models.JSONField(null=True, blank=True)
    excerpt = models.JSONField(default=list)  # the first error lines
    started_at = models.DateTimeField(auto_now_add=True)
    kept_at = models.DateTimeField(null=True, blank=True, db_index=True)  # None: a copy that did not finish

    class Meta:
        ordering = ["build", "name"]
        constraints = [models.UniqueConstraint(fields=["build", "name"], name="build_log_build_name")]

    def __str__(self) -> str:
        return f"{self.get_name_display()} of {self.build}"


class BuildLogChunk(models.Model):
    """One gzip member of a kept log stored in the database."""

    log = models.ForeignKey(BuildLog, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        ordering = ["log", "seq"]
        constraints = [models.UniqueConstraint(fields=["log", "seq"], name="build_log_chunk_seq")]

    def __str__(self) -> str:
        return f"{self.log} #{self.seq}"


class BuildLayer(models.Model):
    """The layers of a build, in the order their steps were composed."""

    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="build_layers")
    layer_version = models.ForeignKey(LayerVersion, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["build", "position"]
        constraints = [models.UniqueConstraint(fields=["build", "position"], name="build_layer_position")]

    def __str__(self) -> str:
        return f"{self.position}: {self.layer_version}"


class BuildEvent(models.Model):
    """One transition of a build, for its timeline."""

    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20)
    from_sub_state = models.CharField(max_length=20, blank=True)
    to_sub_state = models.CharField(max_length=20, blank=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["build", "at", "id"]
        indexes = [models.Index(fields=["build", "at"], name="build_event_build_at")]

    def __str__(self) -> str:
        return f"{self.from_state}/{self.from_sub_state} -> {self.to_state}/{self.to_sub_state}"


class BuildOutput(models.Model):
    """A run output: what one distribution target produced."""

    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="outputs")
    run_output_name = models.CharField(max_length=64)
    distributor_type = models.CharField(max_length=20, blank=True)
    artifact_id = models.CharField(max_length=600, blank=True)
    artifact_uri = models.CharField(max_length=2000, blank=True)
    provisioning_state = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["build", "run_output_name"]
        constraints = [models.UniqueConstraint(fields=["build", "run_output_name"], name="build_output_unique")]

    def __str__(self) -> str:
        return self.artifact_id or self.artifact_uri or self.run_output_name


class Policy(models.Model):
    """The security team's build policy; every change makes a new version (the newest applies)."""

    name = models.SlugField(max_length=50, default="default")
    version = models.PositiveIntegerField()
    rules = models.JSONField(default=dict)
    comment = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                   null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="policy_version_unique")]

    def __str__(self) -> str:
        return f"policy {self.name} v{self.version}"


class Channel(models.Model):
    """A named release channel of one gold image (`production`, `candidate` ...) pointing at one
    published version. Builds that follow a channel resolve it when they are requested; moving
    a channel is a publish request of kind `promotion` (four eyes, like publishing)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    gold_image = models.ForeignKey(GoldImage, on_delete=models.PROTECT, related_name="channels")
    name = models.SlugField(max_length=50, validators=[validate_slug])
    gold_version = models.ForeignKey(GoldImageVersion, on_delete=models.PROTECT, related_name="channels",
                                     null=True, blank=True)
    promoted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                    null=True, blank=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    PRODUCTION = "production"

    class Meta:
        ordering = ["gold_image", "name"]
        constraints = [models.UniqueConstraint(fields=["gold_image", "name"], name="channel_unique")]

    def __str__(self) -> str:
        return f"{self.gold_image.slug}:{self.name}"


class PublishRequest(models.Model):
    """A request to publish a gold or layer version (or to promote a gold version to a channel),
    waiting for the approvals builds/policies.py asks for. The content hash is taken when the
    request is made; a decision on different content is refused and the request superseded."""

    class Kind(models.TextChoices):
        GOLD = "gold", "Gold image version"
        LAYER = "layer", "Layer version"
        PROMOTION = "promotion", "Channel promotion"
        DELETION = "deletion", "Deletion of revoked gallery image versions"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"
        SUPERSEDED = "superseded", "Superseded"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    gold_version = models.ForeignKey(GoldImageVersion, on_delete=models.PROTECT, related_name="publish_requests",
                                     null=True, blank=True)
    layer_version = models.ForeignKey(LayerVersion, on_delete=models.PROTECT, related_name="publish_requests",
                                      null=True, blank=True)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="requests", null=True, blank=True)
    department = models.ForeignKey(Department, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    comment = models.TextField(blank=True)
    content_sha256 = models.CharField(max_length=64)
    approvals_required = models.PositiveSmallIntegerField(default=1)
    checks = models.JSONField(default=list, blank=True)  # problems (warnings) found at submission
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING, db_index=True)
    break_glass = models.BooleanField(default=False)  # published by an administrator without approvals
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(gold_version__isnull=False, layer_version__isnull=True)
                           | models.Q(gold_version__isnull=True, layer_version__isnull=False)),
                name="publish_request_one_target"),
            # The grace-period job asks once per revoked version, whatever became of the request.
            models.UniqueConstraint(fields=["gold_version"], condition=models.Q(kind="deletion"),
                                    name="publish_request_one_deletion"),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.PROMOTION:
            return f"promote {self.gold_version} to {self.channel.name if self.channel else '?'}"
        if self.kind == self.Kind.DELETION:
            return f"delete the gallery image versions of revoked {self.gold_version}"
        return f"publish {self.target}"

    @property
    def target(self) -> GoldImageVersion | LayerVersion:
        return self.gold_version if self.gold_version_id else self.layer_version

    @property
    def is_pending(self) -> bool:
        return self.state == self.State.PENDING


class PublishDecision(models.Model):
    """One approver's verdict on one request, with the content hash they saw."""

    class Verdict(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    request = models.ForeignKey(PublishRequest, on_delete=models.PROTECT, related_name="decisions")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    comment = models.TextField(blank=True)
    content_sha256 = models.CharField(max_length=64)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["request", "at", "id"]
        constraints = [models.UniqueConstraint(fields=["request", "approver"], name="publish_decision_once")]

    def __str__(self) -> str:
        return f"{self.verdict} by {self.approver} on {self.request_id}"


class ArtifactState(models.Model):
    """What Azure last said about a build's gallery image version (read back after a change)."""

    output = models.OneToOneField(BuildOutput, on_delete=models.CASCADE, related_name="azure_state")
    resource_id = models.CharField(max_length=600)
    exclude_from_latest = models.BooleanField(null=True)
    end_of_life_date = models.CharField(max_length=40, blank=True)  # as Azure sent it
    replication = models.CharField(max_length=20, blank=True)  # aggregatedState
    read_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)  # a deletion step saw it gone from Azure

    def __str__(self) -> str:
        return self.resource_id


class ReleaseStep(models.Model):
    """Progress of a release fan-out (deprecate, revoke, promote, demote, delete): one row per version
    and gallery image version, so a killed worker resumes where it stopped and no artifact is
    changed twice (builds/release.py)."""

    class Action(models.TextChoices):
        DEPRECATE = "deprecate", "Deprecate"
        REVOKE = "revoke", "Revoke"
        PROMOTE = "promote", "Promote"
        DEMOTE = "demote", "Demote"
        DELETE = "delete", "Delete"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    gold_version = models.ForeignKey(GoldImageVersion, on_delete=models.CASCADE, related_name="release_steps")
    action = models.CharField(max_length=10, choices=Action.choices)
    round = models.PositiveIntegerField(default=1)  # a promotion after a demotion is a new round
    output = models.ForeignKey(BuildOutput, on_delete=models.CASCADE, related_name="release_steps")
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING, db_index=True)
    patched = models.BooleanField(default=False)  # this step sent its PATCH (or DELETE; Azure accepted it)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["gold_version", "action", "round", "output"]
        constraints = [models.UniqueConstraint(fields=["gold_version", "action", "round", "output"],
                                               name="release_step_once")]

    def __str__(self) -> str:
        return f"{self.action} {self.output} ({self.state})"


class Rollout(models.Model):
    """Rebuilding every department layer on a new gold version, in waves (builds/rollouts.py).

    A durable state machine: the rows say which wave runs and which builds each item asked
    for, so a killed worker or a flushed Redis loses nothing, and the RolloutItem.build guard
    means no item ever requests a second build.
    """

    class State(models.TextChoices):
        PLANNED = "planned", "Planned"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        STOPPED = "stopped", "Stopped at the failure threshold"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    TERMINAL = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELED})

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    gold_version = models.ForeignKey(GoldImageVersion, on_delete=models.PROTECT, related_name="rollouts")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PLANNED, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    canary_size = models.PositiveIntegerField(default=1)
    wave_size = models.PositiveIntegerField(default=10)
    max_failure_rate = models.FloatField(default=0.2)  # a wave failing more than this stops the rollout
    channel = models.CharField(max_length=50, blank=True)  # promoted (by a request) after success
    promotion_request = models.ForeignKey("PublishRequest", on_delete=models.SET_NULL, null=True, blank=True,
                                          related_name="+")
    estimate = models.JSONField(default=dict, blank=True)  # the plan's figures when it was made
    stop_reason = models.TextField(blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)  # an advance job holds the rollout until then
    advances = models.PositiveIntegerField(default=0)  # claims, for job ids and the benchmark
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"rollout of {self.gold_version}"

    @property
    def is_terminal(self) -> bool:
        return self.state in self.TERMINAL


class RolloutWave(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed (over the threshold)"
        CANCELED = "canceled", "Canceled"

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="waves")
    number = models.PositiveIntegerField()  # 0: the canary wave
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    failure_rate = models.FloatField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rollout", "number"]
        constraints = [models.UniqueConstraint(fields=["rollout", "number"], name="rollout_wave_once")]

    def __str__(self) -> str:
        return "canary" if self.number == 0 else f"wave {self.number}"


class RolloutItem(models.Model):
    """One department layer in a rollout: a build on the new gold version (kind `build`), or,
    when the layer's range excludes it, what its department must do (kind `needs_action`, with
    the draft a click prepares)."""

    class Kind(models.TextChoices):
        BUILD = "build", "Build"
        NEEDS_ACTION = "needs_action", "Needs a new layer version"

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="items")
    wave = models.ForeignKey(RolloutWave, on_delete=models.CASCADE, related_name="items", null=True, blank=True)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.BUILD)
    layer = models.ForeignKey(Layer, on_delete=models.PROTECT, related_name="+")
    layer_version = models.ForeignKey(LayerVersion, on_delete=models.PROTECT, related_name="+")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="+")
    attempt = models.PositiveSmallIntegerField(default=1)  # a retry after the fix is a new item
    # Set in the transaction that requests the build, and only while it is empty: the guard
    # against a second build for the item (with the unique constraint below).
    build = models.OneToOneField(Build, on_delete=models.PROTECT, null=True, blank=True, related_name="rollout_item")
    draft = models.ForeignKey(LayerVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    error = models.TextField(blank=True)  # a refused request: the problems, and the item counts as failed

    class Meta:
        ordering = ["rollout", "wave__number", "department__slug", "layer__slug", "attempt"]
        constraints = [models.UniqueConstraint(fields=["rollout", "layer", "attempt"], name="rollout_item_once")]

    def __str__(self) -> str:
        return f"{self.department.slug}/{self.layer.slug}@{self.layer_version.version}"


class SourceWatch(models.Model):
    """What the source watch last saw for one gold image (builds/sourcewatch.py): the source
    version its newest build resolved, a newer listed one, the catalog's deprecation status of
    the one in use, and which findings were already announced (each is announced once)."""

    gold_image = models.OneToOneField(GoldImage, on_delete=models.CASCADE, related_name="source_watch")
    gold_version = models.ForeignKey(GoldImageVersion, on_delete=models.CASCADE, related_name="+")  # the one watched
    source = models.CharField(max_length=600)  # "Publisher:offer:sku" or the gallery image definition id
    in_use = models.CharField(max_length=200, blank=True)  # the version the newest build resolved
    newer = models.CharField(max_length=200, blank=True)  # the newest listed version above it, "" when none
    deprecation_state = models.CharField(max_length=30, blank=True)  # of the version in use; "" when active
    deprecation_time = models.CharField(max_length=40, blank=True)
    announced_newer = models.CharField(max_length=200, blank=True)  # source.available was emitted for it
    announced_deprecation = models.CharField(max_length=200, blank=True)  # source.deprecation_scheduled: in_use
    build = models.ForeignKey(Build, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")  # auto-build
    error = models.TextField(blank=True)  # the listing or the automatic build request failed
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["gold_image__slug"]

    def __str__(self) -> str:
        return f"source watch of {self.gold_image.slug}"


class PatchSchedule(models.Model):
    """When a gold image's current version is rebuilt on the newest source (builds/schedules.py):
    a cron expression in a time zone. Each run requests a gold-only build; when it succeeds a
    rollout is planned (state `planned`) for a person to start."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    gold_image = models.OneToOneField(GoldImage, on_delete=models.CASCADE, related_name="patch_schedule")
    cron = models.CharField(max_length=100)  # five fields, in time_zone
    time_zone = models.CharField(max_length=64, default="UTC")
    next_run_at = models.DateTimeField(db_index=True)  # UTC; claimed by the firing job (conditional UPDATE)
    last_run_at = models.DateTimeField(null=True, blank=True)
    build = models.ForeignKey(Build, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")  # last run's
    rollout = models.ForeignKey("Rollout", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    error = models.TextField(blank=True)  # the last run's refusal or failure
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["gold_image__slug"]

    def __str__(self) -> str:
        return f"patch schedule of {self.gold_image.slug}"
