"""The one place Goldsmith talks to Azure (and the only module that imports azure.*).

Callers get domain functions that take and return plain data (small frozen dataclasses);
SDK models and exceptions never leave this module: every failure becomes AzureError, whose
`permanent` flag tells a job whether to fail the build or try again later.

Against the emulator and against Azure the code path is the same: only the endpoints, the
credential and the CA bundle (settings.AZURE_*) differ.

Throttling: every response's rate-limit headers are recorded (for the operator page), and a
429 or 503 with Retry-After closes a gate for that subscription, shared through Redis and
kept in process memory too, so no request leaves for that subscription before the time
Azure asked for, from any worker, even if Redis is flushed meanwhile. The SDK's own retries
are off: jobs reschedule themselves instead of parking a worker in a sleep.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import requests
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.imagebuilder import ImageBuilderClient
from azure.mgmt.imagebuilder import models as ib_models
from azure.mgmt.imagebuilder._utils.model_base import Model, SdkJSONEncoder
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.resource.policy import PolicyClient
from azure.mgmt.resource.resources import ResourceManagementClient
from django.conf import settings
from django.core.cache import cache

from builds.permissions import Assignment, RolePermissions, covers

log = logging.getLogger(__name__)

ARM_SCOPE = "https://management.azure.com/.default"
STORAGE_SCOPE = "https://storage.azure.com/.default"
_SUBSCRIPTION = re.compile(r"/subscriptions/([^/?]+)", re.IGNORECASE)
_GATE_KEY = "azure:gate:{}"
_RATE_KEY = "azure:ratelimit:{}"


class AzureError(Exception):
    """A failed Azure call. permanent=True: retrying will not help (the build fails with this
    code and message); False: try again later, not before retry_after seconds when given."""

    def __init__(self, code: str, message: str, *, permanent: bool, status: int | None = None,
                 retry_after: float | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.permanent = permanent
        self.status = status
        self.retry_after = retry_after


class Throttled(AzureError):
    """Not sent: a Retry-After window for the subscription is still open."""


# --- Data returned to callers ---------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateStatus:
    name: str
    provisioning_state: str  # Creating, Succeeded, Failed, Deleting ...
    provisioning_error_code: str = ""
    provisioning_error_message: str = ""
    run_state: str = ""  # Running, Canceling, Succeeded, PartiallySucceeded, Failed, Canceled; "" = never run
    run_sub_state: str = ""  # Queued, Building, Customizing, Optimizing, Validating, Distributing
    run_message: str = ""
    run_start: str = ""
    run_end: str = ""
    staging_resource_group: str = ""
    source_exact_version: str = ""
    retry_after: float | None = None  # from an answer still provisioning: when to look again (seconds)


@dataclass(frozen=True)
class RunOutputInfo:
    name: str
    artifact_id: str
    artifact_uri: str
    provisioning_state: str


# --- Clients --------------------------------------------------------------------------------------

_clients: dict[tuple[str, str], Any] = {}
_clients_lock = threading.Lock()
_local_gates: dict[str, float] = {}


def _credential(**kwargs: Any):
    from azure.identity import ClientSecretCredential, DefaultAzureCredential

    if settings.AZURE_CA_BUNDLE:
        kwargs["connection_verify"] = settings.AZURE_CA_BUNDLE
    if settings.AZURE_CLIENT_SECRET:
        public = settings.AZURE_AUTHORITY_HOST.rstrip("/") == "https://login.microsoftonline.com"
        return ClientSecretCredential(settings.AZURE_TENANT_ID, settings.AZURE_CLIENT_ID, settings.AZURE_CLIENT_SECRET,
                                      authority=settings.AZURE_AUTHORITY_HOST, disable_instance_discovery=not public,
                                      **kwargs)
    # No secret: managed identity or workload identity, as Azure-hosted deployments prefer.
    return DefaultAzureCredential(authority=settings.AZURE_AUTHORITY_HOST, **kwargs)


def _client_kwargs() -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "base_url": settings.AZURE_ARM_ENDPOINT,
        "credential_scopes": [ARM_SCOPE],
        "polling_interval": settings.AZURE_POLLING_INTERVAL,
        "retry_total": 0,  # jobs reschedule instead of sleeping inside a worker
        "per_call_policies": [_ThrottleGate(), _CountRequests("arm")],
        "connection_timeout": 10,
        "read_timeout": 60,
    }
    if settings.AZURE_CA_BUNDLE:
        kwargs["connection_verify"] = settings.AZURE_CA_BUNDLE
    return kwargs


def _client(kind: str, subscription: str):
    if settings.AZURE_EMULATOR:
        _require_emulator()
    key = (kind, subscription)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            cls, extra = _CLIENT_CLASSES[kind]
            client = cls(_shared_credential(), subscription, **_client_kwargs(), **extra)
            _clients[key] = client
        return client


# The policy SDK defaults to an api-version newer than Azure's policy service answers everywhere
# (and the emulator serves 2016-12-01 to 2025-03-01); the others use their own defaults.
_CLIENT_CLASSES: dict[str, tuple[type, dict[str, Any]]] = {
    "imagebuilder": (ImageBuilderClient, {}),
    "compute": (ComputeManagementClient, {}),
    "authorization": (AuthorizationManagementClient, {}),
    "msi": (ManagedServiceIdentityClient, {}),
    "policy": (PolicyClient, {"api_version": "2025-03-01"}),
    "resources": (ResourceManagementClient, {}),
}
_credential_cache: list[Any] = []
_emulator_seen_at: list[float] = [0.0]


def _require_emulator() -> None:
    """Raise AzureError(EmulatorNotRunning) at once when nothing listens at the emulator's address.

    Without this, a closed port costs the credential's retries (seconds, with a warning each)
    before any message says why. A success is trusted for a few seconds, so a busy worker
    does not connect twice per call.
    """
    if time.monotonic() - _emulator_seen_at[0] < 5:
        return
    url = urlsplit(settings.AZURE_ARM_ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=2).close()
    except OSError:
        raise AzureError("EmulatorNotRunning", f"the Azure emulator is not running at {settings.AZURE_ARM_ENDPOINT}: "
                         "start it with make run", permanent=False) from None
    _emulator_seen_at[0] = time.monotonic()


def _shared_credential():
    if not _credential_cache:
        _credential_cache.append(_InheritedTokens(_credential()))
    return _credential_cache[0]


# --- Tokens a worker shares with the jobs it forks ------------------------------------------------
# Each RQ job runs in a fresh fork of the worker, so a token a job fetched dies with it: without
# sharing, every job that calls Azure asks Entra ID first. The worker's parent process fetches
# the tokens jobs use before it forks one (worker.Worker), and the fork inherits them in memory;
# they never leave the process tree. The parent renews a token 10 minutes before it expires, so
# a job (which renews at 5 minutes, as azure-identity does) finds it fresh.
JOB_SCOPES = (ARM_SCOPE, STORAGE_SCOPE)
_inherited: dict[str, Any] = {}  # scope -> AccessToken
_INHERITED_MARGIN = 300
_PARENT_MARGIN = 600
_PARENT_RETRY_SECONDS = 60
_parent_failed_at: list[float] = [-_PARENT_RETRY_SECONDS]


class _InheritedTokens:
    """The portal's credential, answering from a token the worker fetched when it is fresh.

    Anything unusual (several scopes, claims from a challenge, another tenant) goes to the
    credential itself, as does a scope the worker has no fresh token for."""

    def __init__(self, credential):
        self.credential = credential

    def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None, **kwargs):
        if len(scopes) == 1 and not claims and not tenant_id:
            token = _inherited.get(scopes[0])
            if token is not None and token.expires_on - time.time() > _INHERITED_MARGIN:
                return token
        return self.credential.get_token(*scopes, claims=claims, tenant_id=tenant_id, **kwargs)

    def close(self) -> None:
        self.credential.close()


def share_tokens() -> None:
    """In a worker's parent process, just before it forks a job: make the tokens of JOB_SCOPES
    fresh, so the job inherits them instead of asking Entra ID itself.

    The tokens come from a credential of their own, closed at once, so no connection of the
    parent's is inherited by the fork. A failure costs nothing but the saving: it is logged
    (without the credential's details) and not retried for a minute; jobs then ask themselves."""
    now = time.time()
    stale = [scope for scope in JOB_SCOPES
             if (token := _inherited.get(scope)) is None or token.expires_on - now <= _PARENT_MARGIN]
    if not stale or time.monotonic() - _parent_failed_at[0] < _PARENT_RETRY_SECONDS:
        return
    try:
        if settings.AZURE_EMULATOR:
            _require_emulator()
        with _credential(retry_total=0) as credential:  # no retries: the job is waiting for its fork
            for scope in stale:
                _inherited[scope] = credential.get_token(scope)
    except Exception as exc:  # whatever failed, the job can still ask for itself
        _parent_failed_at[0] = time.monotonic()
        log.warning("Not sharing Entra ID tokens with jobs for a minute: fetching one failed (%s); each job "
                    "asks for its own meanwhile", type(exc).__name__)


def reset_clients() -> None:
    """Forget cached clients, credentials and shared tokens (settings changed, e.g. in tests)."""
    with _clients_lock:
        _clients.clear()
        _credential_cache.clear()
        _inherited.clear()
        _parent_failed_at[0] = -_PARENT_RETRY_SECONDS
        _local_gates.clear()
        _emulator_seen_at[0] = 0.0


def imagebuilder(subscription: str) -> ImageBuilderClient:
    return _client("imagebuilder", subscription)


def compute(subscription: str) -> ComputeManagementClient:
    return _client("compute", subscription)


# --- Throttling gate ------------------------------------------------------------------------------


class _ThrottleGate(SansIOHTTPPolicy):
    """Refuses to send inside a Retry-After window; records rate-limit headers of every answer."""

    def on_request(self, request):
        subscription = _subscription_of(request.http_request.url)
        if subscription:
            wait = gate_remaining(subscription)
            if wait > 0:
                raise Throttled("Throttled", f"Azure asked to wait; {wait:.0f} s left before the next request.",
                                permanent=False, status=429, retry_after=wait)

    def on_response(self, request, response):
        subscription = _subscription_of(request.http_request.url)
        if not subscription:
            return
        headers = response.http_response.headers
        _record_rate_limits(subscription, headers)
        status = response.http_response.status_code
        retry_after = _retry_after(headers)
        if status == 429:
            seconds = retry_after or 60.0
            if "microsoft.virtualmachineimages" in request.http_request.url.lower():
                seconds = max(seconds, settings.AZURE_THROTTLE_MIN_SECONDS)
            close_gate(subscription, seconds)
        elif status == 503 and retry_after:
            # A bare 503 is one failed request (the build's own backoff retries it); only
            # a 503 that says how long to wait speaks for the whole subscription.
            close_gate(subscription, retry_after)


def _subscription_of(url: str) -> str:
    found = _SUBSCRIPTION.search(url)
    return found.group(1).lower() if found else ""


def _retry_after(headers) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return float(value) * scale
            except ValueError:
                return None  # an HTTP date; rare from ARM, the default backoff applies
    return None


def close_gate(subscription: str, seconds: float) -> None:
    """No request for the subscription until `seconds` from now (kept in Redis and in memory)."""
    until = time.time() + seconds
    key = subscription.lower()
    _local_gates[key] = max(_local_gates.get(key, 0.0), until)
    try:
        current = cache.get(_GATE_KEY.format(key)) or 0.0
        cache.set(_GATE_KEY.format(key), max(current, until), timeout=int(seconds) + 5)
    except Exception:
        log.warning("could not share the throttling gate through Redis", exc_info=True)


def gate_remaining(subscription: str) -> float:
    key = subscription.lower()
    until = _local_gates.get(key, 0.0)
    try:
        until = max(until, float(cache.get(_GATE_KEY.format(key)) or 0.0))
    except Exception:  # Redis down: the in-memory gate is all there is
        log.debug("could not read the shared throttling gate", exc_info=True)
    return max(0.0, until - time.time())


def _record_rate_limits(subscription: str, headers) -> None:
    values = {}
    for kind in ("reads", "writes", "deletes"):
        value = headers.get(f"x-ms-ratelimit-remaining-subscription-{kind}")
        if value is not None and value.isdigit():
            values[kind] = int(value)
    if values:
        try:
            current = cache.get(_RATE_KEY.format(subscription)) or {}
            current.update(values)
            current["at"] = time.time()
            cache.set(_RATE_KEY.format(subscription), current, timeout=3600)
        except Exception:
            log.debug("could not record rate limits", exc_info=True)


def rate_limits(subscription: str) -> dict[str, Any]:
    """The last x-ms-ratelimit-remaining-subscription-* figures seen, with their time."""
    try:
        return cache.get(_RATE_KEY.format(subscription.lower())) or {}
    except Exception:
        return {}


# --- Error mapping --------------------------------------------------------------------------------

# Codes that say "this request will never succeed as sent".
_PERMANENT_STATUS = {400, 401, 403, 404, 405, 409, 422}


def _as_azure_error(exc: Exception) -> AzureError:
    if isinstance(exc, AzureError):
        return exc
    if isinstance(exc, ClientAuthenticationError):
        # A refused secret is permanent; a throttled or failing token endpoint is not.
        status = exc.status_code or getattr(exc.response, "status_code", None)
        transient = status is None or status == 429 or status >= 500
        return AzureError("AuthenticationFailed", _message(exc), permanent=not transient, status=status or 401)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return AzureError("ConnectionError", f"Azure could not be reached: {exc}", permanent=False)
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        code = (exc.error.code if exc.error and exc.error.code else "") or (str(status) if status else "Error")
        retry_after = _retry_after(exc.response.headers) if exc.response is not None else None
        permanent = status in _PERMANENT_STATUS if status else False
        if status is None:  # an LRO that ended Failed: the error came from the operation document
            permanent = True
        return AzureError(code, _message(exc), permanent=permanent, status=status, retry_after=retry_after)
    return AzureError(type(exc).__name__, str(exc), permanent=False)


def _message(exc: Exception) -> str:
    error = getattr(exc, "error", None)
    if error is not None and getattr(error, "message", None):
        return error.message
    text = getattr(exc, "message", None) or str(exc)
    return text.split("\n")[0] if text.startswith("(") else text


class _Translate:
    """Context manager: any SDK exception leaves as AzureError."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, traceback):
        if exc is None or isinstance(exc, AzureError) or not isinstance(exc, Exception):
            return False
        raise _as_azure_error(exc) from exc


_azure_errors = _Translate()


# --- Image Builder --------------------------------------------------------------------------------


def _text(value: Any) -> str:
    """An SDK enum member or a plain string, as the string Azure sent."""
    return str(getattr(value, "value", value) or "")


def _status(template: ib_models.ImageTemplate) -> TemplateStatus:
    error = template.provisioning_error
    run = template.last_run_status
    source = template.source
    return TemplateStatus(
        name=template.name or "",
        provisioning_state=_text(template.provisioning_state),
        provisioning_error_code=_text(error.provisioning_error_code) if error else "",
        provisioning_error_message=(error.message or "") if error else "",
        run_state=_text(run.run_state) if run else "",
        run_sub_state=_text(run.run_sub_state) if run else "",
        run_message=(run.message or "") if run else "",
        run_start=_raw(run, "startTime"),
        run_end=_raw(run, "endTime"),
        staging_resource_group=template.exact_staging_resource_group or "",
        source_exact_version=(getattr(source, "exact_version", None) or "") if source else "",
    )


def _raw(model: Model | None, key: str) -> str:
    """A field as Azure sent it (timestamps stay strings: Go's zero time parses badly)."""
    if model is None:
        return ""
    value = dict(model.items()).get(key)
    return value if isinstance(value, str) else ""


def template_get(subscription: str, resource_group: str, name: str) -> TemplateStatus | None:
    """The template's status, or None when it does not exist."""
    with _azure_errors:
        try:
            return _status(imagebuilder(subscription).virtual_machine_image_templates.get(resource_group, name))
        except ResourceNotFoundError:
            return None


def template_put(subscription: str, resource_group: str, name: str, body: dict, *,
                 wait_seconds: float = 0) -> TemplateStatus:
    """Create the template; with wait_seconds, wait that long for Azure to provision it.

    Returns the status: provisioning_state Succeeded, Failed with the error, or still Creating
    (read it again later, after its `retry_after` when Azure said). wait_seconds=0 (the
    default) sends the PUT alone and returns its answer, usually Creating: nothing sleeps and
    no operation is polled. Raises AzureError(code="Conflict") when the name exists; other
    errors per their nature.
    """
    operations = imagebuilder(subscription).virtual_machine_image_templates
    template = ib_models.ImageTemplate(body)
    with _azure_errors:
        try:
            if not wait_seconds:
                answer = operations.begin_create_or_update(
                    resource_group, name, template, polling=False,
                    cls=lambda response, found, _: (found, response.http_response.headers)).result()
                found, headers = answer
                return replace(_status(found), retry_after=_retry_after(headers))
            poller = operations.begin_create_or_update(resource_group, name, template)
        except ResourceExistsError as exc:
            raise AzureError("Conflict", _message(exc), permanent=True, status=409) from exc
        try:
            poller.wait(wait_seconds)
            if poller.done():
                return _status(poller.result())
        except HttpResponseError as exc:
            if exc.status_code is not None and exc.status_code not in (200, 201):
                raise
            # The provisioning operation ended Failed: the template exists and carries the error.
        found = template_get(subscription, resource_group, name)
        if found is None:
            raise AzureError("TemplateNotFound", "Azure accepted the template but does not show it yet.",
                             permanent=False)
        return found


def template_run(subscription: str, resource_group: str, name: str) -> str:
    """Start a run without waiting for it (the sweep follows it); return its async-operation URL."""
    with _azure_errors:
        poller = imagebuilder(subscription).virtual_machine_image_templates.begin_run(
            resource_group, name, polling=False, cls=lambda response, *_: response.http_response.headers)
        headers = poller.result() or {}
        return headers.get("Azure-AsyncOperation") or headers.get("Location") or ""


def operation_error_code(subscription: str, operation_url: str) -> str:
    """The error code of a finished async operation (e.g. PackerBuildFailed), "" if unknown."""
    from azure.core.rest import HttpRequest

    try:
        with _azure_errors:
            response = imagebuilder(subscription).send_request(HttpRequest("GET", operation_url))
    except AzureError:
        return ""
    if response.status_code != 200:
        return ""
    try:
        return ((response.json() or {}).get("error") or {}).get("code") or ""
    except ValueError:
        return ""


def template_cancel(subscription: str, resource_group: str, name: str) -> None:
    """Ask Image Builder to cancel the run, without waiting (the sweep follows Canceling)."""
    with _azure_errors:
        imagebuilder(subscription).virtual_machine_image_templates.begin_cancel(resource_group, name, polling=False)


def template_delete(subscription: str, resource_group: str, name: str) -> None:
    """Delete the template (its run outputs and staging group go with it), without waiting."""
    with _azure_errors:
        try:
            imagebuilder(subscription).virtual_machine_image_templates.begin_delete(resource_group, name, polling=False)
        except ResourceNotFoundError:
            return


def templates_status(subscription: str, resource_group: str) -> Iterator[TemplateStatus]:
    """Every template of the resource group, page by page (one ARM read per page)."""
    with _azure_errors:
        operations = imagebuilder(subscription).virtual_machine_image_templates
        for template in operations.list_by_resource_group(resource_group):
            yield _status(template)


def run_outputs(subscription: str, resource_group: str, name: str) -> list[RunOutputInfo]:
    with _azure_errors:
        operations = imagebuilder(subscription).virtual_machine_image_templates
        return [RunOutputInfo(name=output.name or "", artifact_id=output.artifact_id or "",
                              artifact_uri=output.artifact_uri or "",
                              provisioning_state=_text(output.provisioning_state))
                for output in operations.list_run_outputs(resource_group, name)]


def fetch_log(uri: str, *, limit: int = 2_000_000) -> str | None:
    """The text of a build log the emulator serves; None against Azure (the log lives in a
    storage account that needs its own credentials) or when it cannot be read."""
    if not settings.AZURE_EMULATOR or not uri.startswith(settings.AZURE_ARM_ENDPOINT):
        return None
    try:
        response = requests.get(uri, timeout=10, verify=settings.AZURE_CA_BUNDLE or True)
    except requests.RequestException:
        return None
    if response.status_code != 200:
        return None
    return response.text[:limit]


# --- Template checks against the SDK --------------------------------------------------------------


@dataclass(frozen=True)
class SdkRoundTrip:
    """How azure-mgmt-imagebuilder reads a template body."""

    unknown_paths: tuple[str, ...]  # keys the SDK's ImageTemplate model does not know
    serialized: dict  # what the SDK would send (read-only fields excluded)


def template_sdk_roundtrip(body: dict) -> SdkRoundTrip:
    """Load body into ImageTemplate and serialise it back the way begin_create_or_update does."""
    model = ib_models.ImageTemplate(body)
    unknown: list[str] = []
    _unknown_keys(model, "", unknown)
    serialized = json.loads(json.dumps(model, cls=SdkJSONEncoder, exclude_readonly=True))
    return SdkRoundTrip(tuple(unknown), serialized)


def _unknown_keys(value: Any, path: str, out: list[str]) -> None:
    if isinstance(value, Model):
        fields = {field._rest_name: name for name, field in value._attr_to_rest_field.items()}
        for key in value:
            where = f"{path}.{key}" if path else key
            if key not in fields:
                out.append(where)
            else:
                _unknown_keys(getattr(value, fields[key]), where, out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _unknown_keys(item, f"{path}[{index}]", out)
    elif isinstance(value, dict):
        for key, item in value.items():
            _unknown_keys(item, f"{path}.{key}", out)


# --- Compute image look-ups (the wizard's and validation's view of the catalog) ----------------------
# Written by the validation work: image_features(...), gallery_image(...), ... below this line.
#
# Every look-up answers a small frozen dataclass (or None when the thing does not exist) and
# raises AzureError for anything else. Found answers are cached for
# settings.AZURE_LOOKUP_CACHE_SECONDS (shared through the Django cache, so every web process
# and worker sees the same catalog) because the wizard asks the same questions on every
# keystroke; "not found" is never cached, so an image created a minute ago shows up at once.

_LOOKUP_GENERATION_KEY = "azure:lookup:generation"
_MISSING = object()


def normalize_location(location: str) -> str:
    """Azure's canonical region name: "East US" -> "eastus"."""
    return re.sub(r"\s+", "", location or "").lower()


def _features(items: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(item.get("name", "")), str(item.get("value", ""))) for item in items or []
                 if isinstance(item, dict))


def _security_type(features: tuple[tuple[str, str], ...]) -> str:
    # A missing SecurityType feature means Standard (aib-reference §3.3).
    return next((value for name, value in features if name.lower() == "securitytype" and value), "Standard")


@dataclass(frozen=True)
class Plan:
    name: str
    product: str
    publisher: str


@dataclass(frozen=True)
class MarketplaceImage:
    """One Marketplace image version; `version` is the concrete version even when "latest" was asked."""

    location: str
    publisher: str
    offer: str
    sku: str
    version: str
    hyper_v_generation: str = "V1"
    architecture: str = "x64"
    features: tuple[tuple[str, str], ...] = ()
    plan: Plan | None = None
    os_type: str = ""
    os_disk_size_gb: int | None = None
    deprecation_state: str = "Active"  # Active, ScheduledForDeprecation, Deprecated

    @property
    def security_type(self) -> str:
        return _security_type(self.features)


@dataclass(frozen=True)
class GalleryImage:
    """An Azure Compute Gallery image definition."""

    id: str
    name: str
    location: str
    os_type: str = ""
    os_state: str = "Generalized"
    hyper_v_generation: str = "V1"
    architecture: str = "x64"
    features: tuple[tuple[str, str], ...] = ()

    @property
    def security_type(self) -> str:
        return _security_type(self.features)

    @property
    def gallery(self) -> str:
        return self.id.split("/galleries/")[1].split("/")[0] if "/galleries/" in self.id else ""


@dataclass(frozen=True)
class GalleryImageVersion:
    id: str
    name: str
    definition_id: str
    location: str
    regions: tuple[str, ...] = ()  # normalized names of the regions it is replicated to
    exclude_from_latest: bool = False
    os_disk_size_gb: int | None = None


@dataclass(frozen=True)
class ManagedImage:
    id: str
    name: str
    location: str
    os_type: str = ""
    os_state: str = "Generalized"
    hyper_v_generation: str = "V1"
    os_disk_size_gb: int | None = None


def lookup_cache_clear() -> None:
    """Forget every cached look-up (all processes): the next look-ups go to Azure."""
    try:
        cache.set(_LOOKUP_GENERATION_KEY, f"{time.time_ns()}", timeout=None)
    except Exception:
        log.warning("could not clear the look-up cache", exc_info=True)


def _cached(kind: str, parts: tuple, fetch, *, seconds: int | None = None):
    import hashlib

    seconds = settings.AZURE_LOOKUP_CACHE_SECONDS if seconds is None else seconds
    if seconds <= 0:
        return fetch()
    try:
        generation = cache.get(_LOOKUP_GENERATION_KEY) or "0"
        digest = hashlib.sha256(json.dumps([settings.AZURE_ARM_ENDPOINT, kind, *parts]).encode()).hexdigest()
        key = f"azure:lookup:{generation}:{digest}"
        found = cache.get(key, _MISSING)
    except Exception:  # Redis down: look up every time
        log.debug("look-up cache unavailable", exc_info=True)
        return fetch()
    if found is not _MISSING:
        return found
    value = fetch()
    if value is not None and value != []:
        try:
            cache.set(key, value, timeout=seconds)
        except Exception:
            log.debug("could not cache a look-up", exc_info=True)
    return value


def _subscription(subscription: str | None) -> str:
    return subscription or settings.AZURE_SUBSCRIPTION_ID


def _names(pages) -> list[str]:
    return [item.name for item in pages if item.name]


def _not_found_is_empty(call):
    with _azure_errors:
        try:
            return call()
        except ResourceNotFoundError:
            return []


def list_publishers(location: str, *, subscription: str | None = None) -> list[str]:
    """Marketplace publishers in the region (sorted case-insensitively)."""
    operations = compute(_subscription(subscription)).virtual_machine_images
    return _cached("publishers", (_subscription(subscription), normalize_location(location)), lambda: sorted(
        _not_found_is_empty(lambda: _names(operations.list_publishers(location))), key=str.lower))


def list_offers(location: str, publisher: str, *, subscription: str | None = None) -> list[str]:
    """A publisher's offers in the region; [] when the publisher is unknown."""
    operations = compute(_subscription(subscription)).virtual_machine_images
    return _cached("offers", (_subscription(subscription), normalize_location(location), publisher), lambda: sorted(
        _not_found_is_empty(lambda: _names(operations.list_offers(location, publisher))), key=str.lower))


def list_skus(location: str, publisher: str, offer: str, *, subscription: str | None = None) -> list[str]:
    """An offer's SKUs in the region; [] when the offer is unknown."""
    operations = compute(_subscription(subscription)).virtual_machine_images
    return _cached("skus", (_subscription(subscription), normalize_location(location), publisher, offer),
                   lambda: sorted(_not_found_is_empty(lambda: _names(operations.list_skus(location, publisher, offer))),
                                  key=str.lower))


def list_versions(location: str, publisher: str, offer: str, sku: str, *,
                  subscription: str | None = None) -> list[str]:
    """A SKU's listed versions, newest first (Azure's order); [] when the SKU is unknown."""
    operations = compute(_subscription(subscription)).virtual_machine_images
    return _cached("versions", (_subscription(subscription), normalize_location(location), publisher, offer, sku),
                   lambda: _not_found_is_empty(lambda: _names(
                       operations.list(location, publisher, offer, sku, orderby="name desc"))))


def marketplace_image(location: str, publisher: str, offer: str, sku: str, version: str, *,
                      subscription: str | None = None) -> MarketplaceImage | None:
    """The Marketplace image version, with "latest" resolved to the newest listed version
    (as Image Builder resolves it). None when the publisher, offer, SKU or version does not exist."""
    sub = _subscription(subscription)

    def fetch() -> MarketplaceImage | None:
        operations = compute(sub).virtual_machine_images
        concrete = version
        with _azure_errors:
            try:
                if version.lower() == "latest":
                    newest = _names(operations.list(location, publisher, offer, sku, top=1, orderby="name desc"))
                    if not newest:
                        return None
                    concrete = newest[0]
                found = operations.get(location, publisher, offer, sku, concrete).as_dict()
            except ResourceNotFoundError:
                return None
        props = found.get("properties") or {}
        plan = props.get("plan") or None
        disk = props.get("osDiskImage") or {}
        return MarketplaceImage(
            location=normalize_location(found.get("location") or location), publisher=publisher, offer=offer, sku=sku,
            version=found.get("name") or concrete, hyper_v_generation=str(props.get("hyperVGeneration") or "V1"),
            architecture=str(props.get("architecture") or "x64"), features=_features(props.get("features")),
            plan=Plan(plan.get("name", ""), plan.get("product", ""), plan.get("publisher", "")) if plan else None,
            os_type=str(disk.get("operatingSystem") or ""), os_disk_size_gb=_int(disk.get("sizeInGb")),
            deprecation_state=str((props.get("imageDeprecationStatus") or {}).get("imageState") or "Active"))

    return _cached("marketplace", (sub, normalize_location(location), publisher, offer, sku, version), fetch)


_GALLERY_IMAGE = re.compile(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Compute/"
                            r"galleries/([^/]+)/images/([^/]+)(?:/versions/([^/]+))?/?$", re.IGNORECASE)
_MANAGED_IMAGE = re.compile(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Compute/"
                            r"images/([^/]+)/?$", re.IGNORECASE)


def _gallery_image(found: dict) -> GalleryImage:
    props = found.get("properties") or {}
    return GalleryImage(
        id=found.get("id") or "", name=found.get("name") or "", location=normalize_location(found.get("location", "")),
        os_type=str(props.get("osType") or ""), os_state=str(props.get("osState") or "Generalized"),
        hyper_v_generation=str(props.get("hyperVGeneration") or "V1"),
        architecture=str(props.get("architecture") or "x64"), features=_features(props.get("features")))


def gallery_image(definition_id: str) -> GalleryImage | None:
    """A gallery image definition by its id; None when it (or its gallery) does not exist.
    Raises AzureError(code="InvalidId", permanent=True) for something that is not a definition id."""
    parts = _GALLERY_IMAGE.match(definition_id or "")
    if not parts or parts.group(5):
        raise AzureError("InvalidId", f"'{definition_id}' is not a gallery image definition id.", permanent=True)
    sub, group, gallery, image = parts.group(1, 2, 3, 4)

    def fetch() -> GalleryImage | None:
        with _azure_errors:
            try:
                return _gallery_image(compute(sub).gallery_images.get(group, gallery, image).as_dict())
            except ResourceNotFoundError:
                return None

    return _cached("gallery-image", (definition_id.lower(),), fetch)


def gallery_image_version(version_id: str) -> GalleryImageVersion | None:
    """A gallery image version by its id ("…/versions/latest" resolves to the newest version not
    excluded from latest, as Image Builder does); None when it does not exist."""
    parts = _GALLERY_IMAGE.match(version_id or "")
    if not parts or not parts.group(5):
        raise AzureError("InvalidId", f"'{version_id}' is not a gallery image version id.", permanent=True)
    sub, group, gallery, image, version = parts.group(1, 2, 3, 4, 5)

    def fetch() -> GalleryImageVersion | None:
        operations = compute(sub).gallery_image_versions
        with _azure_errors:
            try:
                if version.lower() == "latest":
                    candidates = [item.as_dict() for item in operations.list_by_gallery_image(group, gallery, image)]
                    candidates = [item for item in candidates
                                  if not ((item.get("properties") or {}).get("publishingProfile") or {})
                                  .get("excludeFromLatest")]
                    if not candidates:
                        return None
                    found = max(candidates, key=lambda item: _version_key(item.get("name", "")))
                else:
                    found = operations.get(group, gallery, image, version).as_dict()
            except ResourceNotFoundError:
                return None
        props = found.get("properties") or {}
        profile = props.get("publishingProfile") or {}
        disk = (props.get("storageProfile") or {}).get("osDiskImage") or {}
        regions = tuple(normalize_location(region.get("name", "")) for region in profile.get("targetRegions") or [])
        return GalleryImageVersion(
            id=found.get("id") or "", name=found.get("name") or "", definition_id=(found.get("id") or "")
            .rsplit("/versions/", 1)[0], location=normalize_location(found.get("location", "")), regions=regions,
            exclude_from_latest=bool(profile.get("excludeFromLatest")), os_disk_size_gb=_int(disk.get("sizeInGB")))

    return _cached("gallery-version", (version_id.lower(),), fetch)


@dataclass(frozen=True)
class TaggedVersions:
    """A gallery image definition's versions, grouped by the value of one tag."""

    pages: int  # ARM reads the listing took
    by_tag: dict[str, tuple[RunOutputInfo, ...]]  # tag value -> versions (artifact_id, provisioning_state)


def gallery_versions_by_tag(definition_id: str, tag: str) -> TaggedVersions:
    """Every version of a gallery image definition, read now (never cached; one ARM read per
    page), grouped by the value each carries for `tag`. The sweep uses it to learn the versions
    that many builds' automatic versioning created in one listing instead of one run-output read
    per build."""
    parts = _GALLERY_IMAGE.match(definition_id or "")
    if not parts or parts.group(5):
        raise AzureError("InvalidId", f"'{definition_id}' is not a gallery image definition id.", permanent=True)
    sub, group, gallery, image = parts.group(1, 2, 3, 4)
    pages, found = 0, {}
    with _azure_errors:
        listing = compute(sub).gallery_image_versions.list_by_gallery_image(group, gallery, image)
        for page in listing.by_page():
            pages += 1
            for version in page:
                value = (version.tags or {}).get(tag)
                if value:
                    found.setdefault(value, []).append(RunOutputInfo(
                        name=version.name or "", artifact_id=version.id or "", artifact_uri="",
                        provisioning_state=_text(version.provisioning_state)))
    return TaggedVersions(pages=pages, by_tag={key: tuple(items) for key, items in found.items()})


def managed_image(image_id: str) -> ManagedImage | None:
    """A managed image by its id; None when it does not exist."""
    parts = _MANAGED_IMAGE.match(image_id or "")
    if not parts:
        raise AzureError("InvalidId", f"'{image_id}' is not a managed image id.", permanent=True)
    sub, group, name = parts.group(1, 2, 3)

    def fetch() -> ManagedImage | None:
        with _azure_errors:
            try:
                found = compute(sub).images.get(group, name).as_dict()
            except ResourceNotFoundError:
                return None
        props = found.get("properties") or {}
        disk = (props.get("storageProfile") or {}).get("osDisk") or {}
        return ManagedImage(
            id=found.get("id") or "", name=found.get("name") or "", location=normalize_location(found.get("location", "")),
            os_type=str(disk.get("osType") or ""), os_state=str(disk.get("osState") or "Generalized"),
            hyper_v_generation=str(props.get("hyperVGeneration") or "V1"), os_disk_size_gb=_int(disk.get("diskSizeGB")))

    return _cached("managed-image", (image_id.lower(),), fetch)


def gallery_images(*, subscription: str | None = None) -> list[GalleryImage]:
    """Every gallery image definition in the subscription (for picking distribution targets)."""
    sub = _subscription(subscription)

    def fetch() -> list[GalleryImage]:
        client = compute(sub)
        found: list[GalleryImage] = []
        with _azure_errors:
            for gallery in client.galleries.list():
                parts = re.search(r"/resourceGroups/([^/]+)/", gallery.id or "", re.IGNORECASE)
                if not parts or not gallery.name:
                    continue
                found += [_gallery_image(item.as_dict())
                          for item in client.gallery_images.list_by_gallery(parts.group(1), gallery.name)]
        return sorted(found, key=lambda item: item.id.lower())

    return _cached("gallery-images", (sub,), fetch)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _version_key(name: str) -> tuple:
    return tuple(int(part) if part.isdigit() else 0 for part in name.split("."))


# --- Source versions (the source watch, builds/sourcewatch.py) ---------------------------------------


@dataclass(frozen=True)
class SourceVersion:
    """One listed version of a watched source, with the catalog's deprecation status."""

    name: str
    deprecation_state: str = "Active"  # Active, ScheduledForDeprecation, Deprecated
    deprecation_time: str = ""  # scheduledDeprecationTime as Azure sent it, "" when none


def marketplace_source_versions(location: str, publisher: str, offer: str, sku: str, *,
                                subscription: str | None = None) -> tuple[SourceVersion, ...]:
    """A Marketplace SKU's listed versions, newest first, each with its deprecation status: one
    Compute list call (`$expand=properties/imageDeprecationStatus`), cached for
    AZURE_LOOKUP_CACHE_SECONDS. Deprecated versions are not listed (Azure hides them); () when
    the SKU is unknown."""
    sub = _subscription(subscription)

    def fetch() -> tuple[SourceVersion, ...]:
        operations = compute(sub).virtual_machine_images
        found = []
        for item in _not_found_is_empty(lambda: [image.as_dict() for image in operations.list_with_properties(
                location, publisher, offer, sku, expand="properties/imageDeprecationStatus", orderby="name desc")]):
            status = (item.get("properties") or {}).get("imageDeprecationStatus") or {}
            found.append(SourceVersion(name=str(item.get("name") or ""),
                                       deprecation_state=str(status.get("imageState") or "Active"),
                                       deprecation_time=str(status.get("scheduledDeprecationTime") or "")))
        return tuple(sorted((item for item in found if item.name), key=lambda item: _version_key(item.name),
                            reverse=True))

    return _cached("source-versions", (sub, normalize_location(location), publisher, offer, sku), fetch) or ()


def gallery_source_versions(definition_id: str) -> tuple[SourceVersion, ...]:
    """A gallery image definition's versions that "latest" may resolve to (not excluded from
    latest), newest first: one Compute list call, cached for AZURE_LOOKUP_CACHE_SECONDS; () when
    the definition does not exist. Raises AzureError(code="InvalidId") for a bad id."""
    parts = _GALLERY_IMAGE.match(definition_id or "")
    if not parts or parts.group(5):
        raise AzureError("InvalidId", f"'{definition_id}' is not a gallery image definition id.", permanent=True)
    sub, group, gallery, image = parts.group(1, 2, 3, 4)

    def fetch() -> tuple[SourceVersion, ...]:
        listed = _not_found_is_empty(lambda: [item.as_dict() for item in compute(sub).gallery_image_versions
                                              .list_by_gallery_image(group, gallery, image)])
        names = [str(item.get("name") or "") for item in listed
                 if not ((item.get("properties") or {}).get("publishingProfile") or {}).get("excludeFromLatest")]
        return tuple(SourceVersion(name=name) for name in sorted(filter(None, names), key=_version_key, reverse=True))

    return _cached("gallery-source-versions", (definition_id.lower(),), fetch) or ()


# --- Preflight look-ups: regions, VM sizes, RBAC, identities, Azure Policy ---------------------------
# Each answers frozen dataclasses and is cached for settings.AZURE_PREFLIGHT_CACHE_SECONDS per
# subscription and kind (one ARM read per kind per subscription in that window: the wizard's
# review step and every build request ask the same questions). A 403 leaves as AzureError with
# status 403, which preflight reports as "not checked" rather than as a refusal.

_LOCATIONS_API = "2022-12-01"


def _preflight_seconds() -> int:
    return settings.AZURE_PREFLIGHT_CACHE_SECONDS


@dataclass(frozen=True)
class Location:
    name: str  # eastus
    display_name: str  # East US
    regional_display_name: str = ""  # (US) East US


def locations(subscription: str | None = None) -> tuple[Location, ...]:
    """The regions the subscription may use (ARM's locations list), sorted by name."""
    from azure.core.rest import HttpRequest

    sub = _subscription(subscription)

    def fetch() -> tuple[Location, ...]:
        client = _client("resources", sub)
        request = HttpRequest("GET", f"/subscriptions/{sub}/locations", params={"api-version": _LOCATIONS_API})
        with _azure_errors:
            response = client.send_request(request)
            response.raise_for_status()
            items = (response.json() or {}).get("value") or []
        found = {normalize_location(item.get("name", "")): Location(
            normalize_location(item.get("name", "")), item.get("displayName") or "",
            item.get("regionalDisplayName") or "") for item in items if item.get("name")}
        return tuple(sorted(found.values(), key=lambda item: item.name))

    return _cached("locations", (sub,), fetch, seconds=_preflight_seconds())


def provider_locations(namespace: str, resource_type: str, *, subscription: str | None = None) -> tuple[str, ...]:
    """The normalized regions where a provider offers a resource type (e.g. Image Builder's
    imageTemplates); () when the provider does not list the type."""
    sub = _subscription(subscription)

    def fetch() -> tuple[str, ...]:
        with _azure_errors:
            found = _client("resources", sub).providers.get(namespace).as_dict()
        for item in found.get("resourceTypes") or []:
            if str(item.get("resourceType", "")).lower() == resource_type.lower():
                return tuple(sorted({normalize_location(name) for name in item.get("locations") or []}))
        return ()

    return _cached("provider-locations", (sub, namespace.lower(), resource_type.lower()), fetch,
                   seconds=_preflight_seconds())


@dataclass(frozen=True)
class VmSku:
    """A virtual machine size as Compute's resource SKUs describe it in one region."""

    name: str  # Standard_D2ds_v5
    family: str = ""
    vcpus: int = 0
    memory_gb: float = 0.0
    hyper_v_generations: tuple[str, ...] = ("V1",)
    architecture: str = "x64"
    trusted_launch: bool = True  # False when the size says TrustedLaunchDisabled (or is Gen1 only)
    confidential: str = ""  # ConfidentialComputingType (SNP, TDX) for confidential sizes
    max_data_disks: int | None = None
    os_vhd_size_mb: int | None = None
    premium_io: bool = False
    restricted: bool = False  # not available to this subscription in the region


def vm_skus(location: str, *, subscription: str | None = None) -> tuple[VmSku, ...]:
    """Every virtual machine size of the region (restricted ones flagged), sorted by name."""
    sub = _subscription(subscription)
    region = normalize_location(location)

    def fetch() -> tuple[VmSku, ...]:
        found: dict[str, VmSku] = {}
        with _azure_errors:
            for item in compute(sub).resource_skus.list(filter=f"location eq '{region}'"):
                data = item.as_dict()
                if str(data.get("resourceType", "")).lower() != "virtualmachines" or not data.get("name"):
                    continue
                caps = {str(cap.get("name", "")): str(cap.get("value", "")) for cap in data.get("capabilities") or []}
                generations = tuple(part.strip() for part in caps.get("HyperVGenerations", "V1").split(",")
                                    if part.strip())
                restricted = any(str(rule.get("type", "")).lower() == "location" and region in {
                    normalize_location(value) for value in rule.get("values") or []}
                    for rule in data.get("restrictions") or [])
                found[data["name"]] = VmSku(
                    name=data["name"], family=str(data.get("family") or ""), vcpus=_int(caps.get("vCPUs")) or 0,
                    memory_gb=_float(caps.get("MemoryGB")), hyper_v_generations=generations,
                    architecture=caps.get("CpuArchitectureType") or "x64",
                    trusted_launch="V2" in generations and caps.get("TrustedLaunchDisabled", "").lower() != "true",
                    confidential=caps.get("ConfidentialComputingType", ""),
                    max_data_disks=_int(caps.get("MaxDataDiskCount")), os_vhd_size_mb=_int(caps.get("OSVhdSizeMB")),
                    premium_io=caps.get("PremiumIO", "").lower() == "true", restricted=restricted)
        return tuple(sorted(found.values(), key=lambda sku: sku.name.lower()))

    return _cached("vm-skus", (sub, region), fetch, seconds=_preflight_seconds())


def role_assignments(principal_id: str, *, subscription: str | None = None,
                     fresh: bool = False) -> tuple[Assignment, ...]:
    """Every role assignment of the principal that touches the subscription: at the root, at
    the subscription and at any group or resource in it (one read). `fresh` skips the cache
    (and refreshes it): a permission that looks missing is read again before anyone is told,
    so a role granted a minute ago counts at once."""
    sub = _subscription(subscription)

    def fetch() -> tuple[Assignment, ...]:
        operations = _client("authorization", sub).role_assignments
        with _azure_errors:
            items = operations.list_for_scope(f"/subscriptions/{sub}", filter=f"assignedTo('{principal_id}')")
            return tuple(Assignment(scope=item.scope or "", role_definition_id=item.role_definition_id or "")
                         for item in items)

    if fresh:
        _forget("role-assignments", (sub, principal_id.lower()))
    return _cached("role-assignments", (sub, principal_id.lower()), fetch, seconds=_preflight_seconds())


def role_definitions(*, subscription: str | None = None) -> dict[str, RolePermissions]:
    """Built-in roles and the custom roles assignable in the subscription, by GUID (lower case)."""
    sub = _subscription(subscription)

    def fetch() -> dict[str, RolePermissions]:
        with _azure_errors:
            items = list(_client("authorization", sub).role_definitions.list(f"/subscriptions/{sub}"))
        return {(item.name or "").lower(): _role_permissions(item) for item in items if item.name}

    return _cached("role-definitions", (sub,), fetch, seconds=_preflight_seconds())


def role_definition(role_definition_id: str, *, subscription: str | None = None) -> RolePermissions | None:
    """One role definition by its id (a custom role assignable elsewhere); None when absent."""
    sub = _subscription(subscription)

    def fetch() -> RolePermissions | None:
        with _azure_errors:
            try:
                return _role_permissions(_client("authorization", sub).role_definitions.get_by_id(role_definition_id))
            except ResourceNotFoundError:
                return None

    return _cached("role-definition", (sub, role_definition_id.lower()), fetch, seconds=_preflight_seconds())


def _role_permissions(item: Any) -> RolePermissions:
    blocks = item.permissions or []
    return RolePermissions(
        name=item.role_name or item.name or "",
        actions=tuple(action for block in blocks for action in block.actions or []),
        not_actions=tuple(action for block in blocks for action in block.not_actions or []),
        data_actions=tuple(action for block in blocks for action in block.data_actions or []),
        not_data_actions=tuple(action for block in blocks for action in block.not_data_actions or []))


@dataclass(frozen=True)
class Identity:
    """A user-assigned managed identity."""

    id: str
    name: str
    location: str
    principal_id: str
    client_id: str
    tenant_id: str = ""

    @property
    def subscription(self) -> str:
        found = _SUBSCRIPTION.search(self.id)
        return found.group(1) if found else ""


_IDENTITY = re.compile(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.ManagedIdentity/"
                       r"userAssignedIdentities/([^/]+)/?$", re.IGNORECASE)


def identity(resource_id: str) -> Identity | None:
    """A user-assigned identity by its id; None when it does not exist. Raises
    AzureError(code="InvalidId", permanent=True) for something that is not an identity id."""
    parts = _IDENTITY.match(resource_id or "")
    if not parts:
        raise AzureError("InvalidId", f"'{resource_id}' is not a user-assigned identity id.", permanent=True)
    sub, group, name = parts.group(1, 2, 3)

    def fetch() -> Identity | None:
        with _azure_errors:
            try:
                found = _client("msi", sub).user_assigned_identities.get(group, name)
            except ResourceNotFoundError:
                return None
        return Identity(id=found.id or resource_id, name=found.name or name,
                        location=normalize_location(found.location or ""), principal_id=found.principal_id or "",
                        client_id=found.client_id or "", tenant_id=found.tenant_id or "")

    return _cached("identity", (sub, resource_id.lower()), fetch, seconds=_preflight_seconds())


@dataclass(frozen=True)
class ResourceGroupInfo:
    id: str
    name: str
    location: str
    resource_count: int  # 0: empty; 1 means "at least one" (only the first page is read)


def resource_group(subscription: str, name: str) -> ResourceGroupInfo | None:
    """A resource group and whether it holds anything (read now, never cached: a staging group
    fills and empties with builds); None when it does not exist."""
    client = _client("resources", subscription)
    with _azure_errors:
        try:
            found = client.resource_groups.get(name)
        except ResourceNotFoundError:
            return None
        first = next(iter(client.resources.list_by_resource_group(name, top=1)), None)
    return ResourceGroupInfo(id=found.id or "", name=found.name or name,
                             location=normalize_location(found.location or ""), resource_count=0 if first is None else 1)


@dataclass(frozen=True)
class PolicyDeny:
    """A policy assignment whose definition may deny, with what is needed to evaluate it."""

    assignment_id: str
    assignment_name: str
    display_name: str
    scope: str
    not_scopes: tuple[str, ...]
    definition_id: str
    mode: str
    rule: dict
    parameters: dict  # the assignment's values over the definition's defaults


def policy_denies(scope: str) -> tuple[PolicyDeny, ...]:
    """The policy assignments at or above `scope` (a subscription, resource group or resource)
    whose effect is, or may be set to, deny, and are enforced. One read of the subscription's
    assignments, then one per definition (both cached)."""
    sub = _subscription_of(scope) or _subscription(None)

    def fetch_assignments() -> tuple[dict, ...]:
        with _azure_errors:
            return tuple(item.as_dict() for item in _client("policy", sub).policy_assignments.list())

    found: list[PolicyDeny] = []
    for item in _cached("policy-assignments", (sub,), fetch_assignments, seconds=_preflight_seconds()):
        props = item.get("properties") or item
        at = str(props.get("scope") or "")
        not_scopes = tuple(props.get("notScopes") or ())
        if not covers(at, scope) or any(covers(excluded, scope) for excluded in not_scopes):
            continue
        if str(props.get("enforcementMode") or "Default").lower() == "donotenforce":
            continue
        definition = _policy_definition(sub, str(props.get("policyDefinitionId") or ""))
        if definition is None:
            continue
        defaults = {name: (spec or {}).get("defaultValue") for name, spec in
                    ((definition.get("properties") or {}).get("parameters") or {}).items()
                    if isinstance(spec, dict) and "defaultValue" in spec}
        values = {name: (value or {}).get("value") for name, value in (props.get("parameters") or {}).items()}
        rule = (definition.get("properties") or {}).get("policyRule") or {}
        effect = str(((rule.get("then") or {}).get("effect")) or "")
        resolved = {**defaults, **values}
        if effect.lower().startswith("[parameters("):
            effect = str(resolved.get(effect.split("'")[1], ""))
        if effect.lower() != "deny":
            continue
        found.append(PolicyDeny(
            assignment_id=str(item.get("id") or ""), assignment_name=str(item.get("name") or ""),
            display_name=str(props.get("displayName") or (definition.get("properties") or {}).get("displayName")
                             or item.get("name") or ""),
            scope=at, not_scopes=not_scopes, definition_id=str(props.get("policyDefinitionId") or ""),
            mode=str((definition.get("properties") or {}).get("mode") or "All"), rule=rule, parameters=resolved))
    return tuple(found)


def _policy_definition(subscription: str, definition_id: str) -> dict | None:
    name = definition_id.rstrip("/").rsplit("/", 1)[-1]
    if not name or "/policysetdefinitions/" in definition_id.lower():
        return None  # initiatives are not evaluated here

    def fetch() -> dict | None:
        operations = _client("policy", subscription).policy_definitions
        with _azure_errors:
            try:
                if definition_id.lower().startswith("/subscriptions/"):
                    return operations.get(name).as_dict()
                return operations.get_built_in(name).as_dict()
            except ResourceNotFoundError:
                return None

    return _cached("policy-definition", (subscription, definition_id.lower()), fetch, seconds=_preflight_seconds())


def _forget(kind: str, parts: tuple) -> None:
    import hashlib

    try:
        generation = cache.get(_LOOKUP_GENERATION_KEY) or "0"
        digest = hashlib.sha256(json.dumps([settings.AZURE_ARM_ENDPOINT, kind, *parts]).encode()).hexdigest()
        cache.delete(f"azure:lookup:{generation}:{digest}")
    except Exception:
        log.debug("could not forget a look-up", exc_info=True)


def _float(value: Any) -> float:
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


# --- Build logs in the staging storage account ------------------------------------------------------
# Image Builder writes each run's Packer log into a storage account it creates in the template's
# staging resource group (container `packerlogs`, one folder per run) and deletes it with the group.
# The portal finds the account through ARM (one listing, then one blob listing for the run folder;
# callers cache the answer) and reads the log by byte range with azure-storage-blob and its own
# credential (Storage Blob Data Reader on the staging group). BUILD_LOG_CONTAINER_URL is a
# container of Goldsmith's own that keeps copies of logs once the staging group is gone.

_STORAGE_API = "2023-05-01"
LOG_CONTAINER = "packerlogs"
CUSTOMIZATION_LOG = "customization.log"
VALIDATION_LOG = "validation.log"
# Requests the portal sent, by kind ("arm", "blob"): tests and the benchmark count them.
request_counts: dict[str, int] = {"arm": 0, "blob": 0}


class _CountRequests(SansIOHTTPPolicy):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def on_request(self, request):
        request_counts[self.kind] = request_counts.get(self.kind, 0) + 1


def _count_blob_request(request) -> None:
    # azure-storage-blob takes no per-call policies; its request hook sees every request sent.
    request_counts["blob"] = request_counts.get("blob", 0) + 1


@dataclass(frozen=True)
class LogLocation:
    """Where a run's log lives: the staging account's blob endpoint and the blob's name."""

    account_url: str  # https://<account>.blob.core.windows.net/ (Azurite: https://host:port/<account>/)
    blob: str  # <run folder>/customization.log
    container: str = LOG_CONTAINER

    @property
    def url(self) -> str:
        return f"{self.account_url.rstrip('/')}/{self.container}/{self.blob}"

    def sibling(self, name: str) -> LogLocation:
        """The same run folder's other log (validation.log)."""
        return LogLocation(self.account_url, f"{self.blob.rsplit('/', 1)[0]}/{name}", self.container)


@dataclass(frozen=True)
class LogChunk:
    """Bytes [start, start + len(data)) of a blob, and the blob's size when they were read."""

    start: int
    data: bytes
    size: int


def staging_log_location(subscription: str, staging_resource_group: str) -> LogLocation | None:
    """The newest run's customization.log in the staging group's storage account: None when the
    group has no storage account (not yet, or no longer), a location with blob "" while the
    account has no run folder yet. Two reads: the group's storage accounts (ARM), then the
    `packerlogs` listing (Storage)."""
    from azure.core.rest import HttpRequest

    group = staging_resource_group.rstrip("/").rsplit("/", 1)[-1]
    if not group:
        return None
    client = _client("resources", subscription)
    request = HttpRequest("GET", f"/subscriptions/{subscription}/resourceGroups/{group}/providers/"
                          "Microsoft.Storage/storageAccounts", params={"api-version": _STORAGE_API})
    with _azure_errors:
        response = client.send_request(request)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        accounts = (response.json() or {}).get("value") or []
    for account in accounts:
        endpoint = ((account.get("properties") or {}).get("primaryEndpoints") or {}).get("blob") or ""
        if not endpoint:
            continue
        container = _blob_service(endpoint).get_container_client(LOG_CONTAINER)
        with _azure_errors:
            try:
                found = [blob for blob in container.list_blobs()
                         if blob.name.endswith("/" + CUSTOMIZATION_LOG)]
            except ResourceNotFoundError:
                continue
        if found:
            newest = max(found, key=lambda blob: (blob.creation_time or blob.last_modified, blob.name))
            return LogLocation(endpoint, newest.name)
        return LogLocation(endpoint, "")  # the account exists; the run has not written its log yet
    return None


def read_log(location: LogLocation, start: int = 0, length: int | None = None) -> LogChunk:
    """Bytes of the log from `start` (at most `length`): one ranged GET. Reading at or past the
    end gives no bytes and the current size; a log that no longer exists raises
    AzureError(code="BlobNotFound", permanent=True)."""
    blob = _blob_service(location.account_url).get_blob_client(location.container, location.blob)
    with _azure_errors:
        try:
            downloader = blob.download_blob(offset=start, length=length, max_concurrency=1)
            data = downloader.readall()
            # properties.size is the length of the range downloaded; the blob's own size is
            # after the slash of Content-Range (bytes 0-4194303/52428800).
            total = (downloader.properties.content_range or "").rsplit("/", 1)[-1]
            return LogChunk(start, data, int(total) if total.isdigit() else start + len(data))
        except HttpResponseError as exc:
            if exc.status_code == 416:  # nothing at or after start: Content-Range says bytes */<size>
                total = (exc.response.headers.get("Content-Range") or "").rsplit("/", 1)[-1]
                return LogChunk(start, b"", int(total) if total.isdigit() else start)
            if exc.status_code == 404:
                raise AzureError("BlobNotFound", f"The log {location.url} no longer exists.", permanent=True,
                                 status=404) from exc
            raise


def _blob_service(account_url: str):
    from azure.storage.blob import BlobServiceClient

    key = ("blob", account_url)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            kwargs: dict[str, Any] = {"retry_total": 0, "connection_timeout": 10, "read_timeout": 60,
                                      "raw_request_hook": _count_blob_request,
                                      # a single GET per range, however large (the default splits at 32 MiB)
                                      "max_single_get_size": 64 * 1024 * 1024, "max_chunk_get_size": 64 * 1024 * 1024}
            if settings.AZURE_CA_BUNDLE:
                kwargs["connection_verify"] = settings.AZURE_CA_BUNDLE
            client = BlobServiceClient(account_url, credential=_shared_credential(), **kwargs)
            _clients[key] = client
        return client


# Goldsmith's own container for kept logs (BUILD_LOG_CONTAINER_URL), read and written with the
# portal's identity (Storage Blob Data Contributor on the container).


def _kept_container():
    from azure.storage.blob import ContainerClient

    url = settings.BUILD_LOG_CONTAINER_URL
    key = ("kept", url)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            kwargs: dict[str, Any] = {"retry_total": 2, "connection_timeout": 10, "read_timeout": 60,
                                      "raw_request_hook": _count_blob_request}
            if settings.AZURE_CA_BUNDLE:
                kwargs["connection_verify"] = settings.AZURE_CA_BUNDLE
            client = ContainerClient.from_container_url(url, credential=_shared_credential(), **kwargs)
            _clients[key] = client
        return client


def kept_log_stage(name: str, block_id: str, data: bytes) -> None:
    """Upload one block of a kept log (not visible until kept_log_commit)."""
    with _azure_errors:
        _kept_container().get_blob_client(name).stage_block(block_id, data, length=len(data))


def kept_log_commit(name: str, block_ids: list[str], *, content_type: str = "application/gzip",
                    metadata: dict[str, str] | None = None) -> None:
    """Make the staged blocks the blob's content (replacing any earlier copy)."""
    from azure.storage.blob import BlobBlock, ContentSettings

    with _azure_errors:
        _kept_container().get_blob_client(name).commit_block_list(
            [BlobBlock(block_id) for block_id in block_ids], content_settings=ContentSettings(content_type=content_type),
            metadata=metadata)


def kept_log_read(name: str, start: int, length: int) -> bytes:
    with _azure_errors:
        return _kept_container().get_blob_client(name).download_blob(offset=start, length=length,
                                                                     max_concurrency=1).readall()


def kept_log_delete(name: str) -> None:
    with _azure_errors:
        try:
            _kept_container().get_blob_client(name).delete_blob()
        except ResourceNotFoundError:
            return


# --- Gallery replication ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionReplication:
    region: str
    state: str  # Replicating, Completed, Failed, Unknown
    progress: int  # percent
    details: str = ""


@dataclass(frozen=True)
class Replication:
    version_id: str
    aggregated_state: str  # InProgress, Completed, Failed, Unknown
    regions: tuple[RegionReplication, ...]


def gallery_version_replication(version_id: str) -> Replication | None:
    """A gallery image version's per-region replication (Compute's $expand=ReplicationStatus),
    read now (it moves while the build distributes); None when the version does not exist."""
    found = _gallery_version_read(version_id)
    if found is None:
        return None
    status = (found.get("properties") or {}).get("replicationStatus") or {}
    regions = tuple(RegionReplication(region=normalize_location(item.get("region", "")),
                                      state=str(item.get("state") or "Unknown"), progress=_int(item.get("progress")) or 0,
                                      details=str(item.get("details") or ""))
                    for item in status.get("summary") or [])
    return Replication(found.get("id") or version_id, str(status.get("aggregatedState") or "Unknown"), regions)


# --- Gallery image versions: release changes -------------------------------------------------------


@dataclass(frozen=True)
class GalleryVersionState:
    """A gallery image version as Azure reports it now (read with $expand=ReplicationStatus)."""

    id: str
    exclude_from_latest: bool
    end_of_life_date: str  # as Azure sent it; "" when none
    provisioning_state: str
    replication: str  # aggregatedState: Completed, InProgress, Failed; "" when not reported


def _version_parts(version_id: str) -> tuple[str, str, str, str, str]:
    parts = _GALLERY_IMAGE.match(version_id or "")
    if not parts or not parts.group(5) or parts.group(5).lower() == "latest":
        raise AzureError("InvalidId", f"'{version_id}' is not a gallery image version id.", permanent=True)
    return parts.group(1, 2, 3, 4, 5)


def _gallery_version_read(version_id: str) -> dict | None:
    """One GET of a gallery image version with $expand=ReplicationStatus, never cached; None when
    it does not exist. Raises AzureError (InvalidId for anything but an exact version id)."""
    sub, group, gallery, image, version = _version_parts(version_id)
    with _azure_errors:
        try:
            return compute(sub).gallery_image_versions.get(group, gallery, image, version,
                                                           expand="ReplicationStatus").as_dict()
        except ResourceNotFoundError:
            return None


def gallery_version_state(version_id: str) -> GalleryVersionState | None:
    """One ARM read, never cached (a release step compares it with what it wants); None when the
    version does not exist. Raises AzureError."""
    found = _gallery_version_read(version_id)
    if found is None:
        return None
    props = found.get("properties") or found
    profile = props.get("publishingProfile") or props.get("publishing_profile") or {}
    replication = props.get("replicationStatus") or props.get("replication_status") or {}
    end_of_life = profile.get("endOfLifeDate") or profile.get("end_of_life_date") or ""
    return GalleryVersionState(
        id=found.get("id") or version_id,
        exclude_from_latest=bool(profile.get("excludeFromLatest", profile.get("exclude_from_latest"))),
        end_of_life_date=end_of_life if isinstance(end_of_life, str) else end_of_life.isoformat(),
        provisioning_state=str(props.get("provisioningState") or props.get("provisioning_state") or ""),
        replication=str(replication.get("aggregatedState") or replication.get("aggregated_state") or ""))


def gallery_version_update(version_id: str, *, exclude_from_latest: bool | None = None,
                           end_of_life_date: str | None = None) -> None:
    """One PATCH of the version's publishingProfile (only the fields given), without waiting for
    the operation: callers read the version back. Raises AzureError (code "NotFound" when the
    version is gone)."""
    sub, group, gallery, image, version = _version_parts(version_id)
    profile: dict[str, Any] = {}
    if exclude_from_latest is not None:
        profile["excludeFromLatest"] = exclude_from_latest
    if end_of_life_date is not None:
        profile["endOfLifeDate"] = end_of_life_date
    body = {"properties": {"publishingProfile": profile}}
    with _azure_errors:
        try:
            compute(sub).gallery_image_versions.begin_update(group, gallery, image, version, body, polling=False)
        except ResourceNotFoundError as exc:
            raise AzureError("NotFound", _message(exc), permanent=True, status=404) from exc


def gallery_version_delete(version_id: str) -> None:
    """Start deleting the gallery image version (every region's replica goes with it), without
    waiting for the operation: callers read the version back (provisioningState Deleting, then
    gone). A version that does not exist is not an error. Raises AzureError."""
    sub, group, gallery, image, version = _version_parts(version_id)
    with _azure_errors:
        try:
            compute(sub).gallery_image_versions.begin_delete(group, gallery, image, version, polling=False)
        except ResourceNotFoundError:
            return
