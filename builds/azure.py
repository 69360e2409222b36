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
from dataclasses import dataclass
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
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.imagebuilder import ImageBuilderClient
from azure.mgmt.imagebuilder import models as ib_models
from azure.mgmt.imagebuilder._utils.model_base import Model, SdkJSONEncoder
from django.conf import settings
from django.core.cache import cache

log = logging.getLogger(__name__)

ARM_SCOPE = "https://management.azure.com/.default"
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


def _credential():
    from azure.identity import ClientSecretCredential, DefaultAzureCredential

    kwargs: dict[str, Any] = {}
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
        "per_call_policies": [_ThrottleGate()],
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
            cls = ImageBuilderClient if kind == "imagebuilder" else ComputeManagementClient
            client = cls(_shared_credential(), subscription, **_client_kwargs())
            _clients[key] = client
        return client


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
        _credential_cache.append(_credential())
    return _credential_cache[0]


def reset_clients() -> None:
    """Forget cached clients and credentials (settings changed, e.g. in tests)."""
    with _clients_lock:
        _clients.clear()
        _credential_cache.clear()
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
                 wait_seconds: float = 120) -> TemplateStatus:
    """Create the template and wait (up to wait_seconds) for Azure to provision it.

    Returns the status: provisioning_state Succeeded, Failed with the error, or still Creating
    when the wait ran out (read it again later). Raises AzureError(code="Conflict") when the
    name exists; other errors per their nature.
    """
    operations = imagebuilder(subscription).virtual_machine_image_templates
    with _azure_errors:
        try:
            poller = operations.begin_create_or_update(resource_group, name, ib_models.ImageTemplate(body))
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


def _cached(kind: str, parts: tuple, fetch):
    import hashlib

    seconds = settings.AZURE_LOOKUP_CACHE_SECONDS
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


def gallery_version_state(version_id: str) -> GalleryVersionState | None:
    """One ARM read, never cached (a release step compares it with what it wants); None when the
    version does not exist. Raises AzureError."""
    sub, group, gallery, image, version = _version_parts(version_id)
    with _azure_errors:
        try:
            found = compute(sub).gallery_image_versions.get(group, gallery, image, version,
                                                            expand="ReplicationStatus").as_dict()
        except ResourceNotFoundError:
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
