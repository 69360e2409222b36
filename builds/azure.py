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
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

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
IMAGE_BUILDER_THROTTLE_SECONDS = 180  # Image Builder's TooManyRequests: back off at least this long
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
    key = (kind, subscription)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            cls = ImageBuilderClient if kind == "imagebuilder" else ComputeManagementClient
            client = cls(_shared_credential(), subscription, **_client_kwargs())
            _clients[key] = client
        return client


_credential_cache: list[Any] = []


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
        if status in (429, 503):
            seconds = _retry_after(headers) or (10.0 if status == 503 else 60.0)
            if status == 429 and "microsoft.virtualmachineimages" in request.http_request.url.lower():
                seconds = max(seconds, IMAGE_BUILDER_THROTTLE_SECONDS)
            close_gate(subscription, seconds)


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
        return AzureError("AuthenticationFailed", _message(exc), permanent=True, status=401)
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


def _status(template: ib_models.ImageTemplate) -> TemplateStatus:
    error = template.provisioning_error
    run = template.last_run_status
    source = template.source
    return TemplateStatus(
        name=template.name or "",
        provisioning_state=str(template.provisioning_state or ""),
        provisioning_error_code=str(error.provisioning_error_code or "") if error else "",
        provisioning_error_message=(error.message or "") if error else "",
        run_state=str(run.run_state or "") if run else "",
        run_sub_state=str(run.run_sub_state or "") if run else "",
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


def template_put(subscription: str, resource_group: str, name: str, body: dict) -> TemplateStatus:
    """Create the template and wait until Azure has provisioned it (or refused it).

    Returns the status (provisioning_state Succeeded, or Failed with the error). Raises
    AzureError(code="Conflict") when the name exists; other errors per their nature.
    """
    operations = imagebuilder(subscription).virtual_machine_image_templates
    with _azure_errors:
        try:
            poller = operations.begin_create_or_update(resource_group, name, ib_models.ImageTemplate(body))
        except ResourceExistsError as exc:
            raise AzureError("Conflict", _message(exc), permanent=True, status=409) from exc
        try:
            return _status(poller.result())
        except HttpResponseError as exc:
            if exc.status_code is None or exc.status_code in (200, 201):
                # The provisioning operation ended Failed: the template exists with the error.
                found = template_get(subscription, resource_group, name)
                if found is not None:
                    return found
            raise


def template_run(subscription: str, resource_group: str, name: str) -> None:
    """Start a run without waiting for it (the sweep follows it)."""
    with _azure_errors:
        imagebuilder(subscription).virtual_machine_image_templates.begin_run(resource_group, name, polling=False)


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
                              provisioning_state=str(output.provisioning_state or ""))
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
