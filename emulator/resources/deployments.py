"""Microsoft.Resources/deployments at resource-group scope: ARM template deployments.

One backend method per operation (validate, create, get, list, operations, status, delete);
routes.py parses and renders. The template language is templates.py (pure); this module turns
an expansion into calls on the services.

Deploying a resource is an internal PUT of the resource id with the resource's apiVersion,
through the app's own router and pipeline (`App.dispatch`), on behalf of the deployer: the
serving service validates it exactly as it validates a client's PUT, and denials and faults
apply. An answer with Azure-AsyncOperation (or Location) is then polled the same way, as ARM
polls a resource provider. A resource is sent once everything it dependsOn has succeeded.

Time: a deployment is `Accepted` for ACCEPT_SECONDS (scaled) after its PUT, `Running` while any
resource is in flight, then `Succeeded` or `Failed` (ARM's DeploymentFailed envelope, one detail
per failed resource). Like every emulated LRO it moves when it is read (get, list, operations,
the operation status): the first resources are sent by the PUT itself, later ones (dependents)
when a read finds their dependencies done.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
import uuid
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from emulator.core import ArmError, Request
from emulator.core.clock import iso
from emulator.resources import templates

if TYPE_CHECKING:
    from emulator.core.pipeline import App
    from emulator.resources.backend import Resources

T_DEPLOYMENT = "deployment"
DEPLOYMENT_TYPE = "Microsoft.Resources/deployments"
ACCEPT_SECONDS = 2.0  # realistic time ARM keeps a new deployment Accepted, divided by the time scale
FAILED_MESSAGE = ("At least one resource deployment operation failed. Please list deployment operations for details. "
                  "Please see https://aka.ms/arm-deployment-operations for usage details.")
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.()")
_DONE = ("Succeeded", "Failed")


def invalid_template(error: templates.TemplateError) -> ArmError:
    """ARM's 400 InvalidTemplate, naming the path of the offending value."""
    return ArmError(400, "InvalidTemplate",
                    f"Deployment template validation failed: 'The template value at '{error.path}' is not valid: "
                    f"{error.reason}'.", target=error.path)


def deployment_id(subscription: str, resource_group: str, name: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/{DEPLOYMENT_TYPE}/{name}"


class Deployments:
    """app.services["deployments"]: deployment records and their progress."""

    def __init__(self, app: App, resources: Resources):
        self.app = app
        self.resources = resources
        self._lock = threading.RLock()

    def _key(self, subscription: str, resource_group: str, name: str) -> str:
        return f"{subscription}/{resource_group}/{name}".lower()

    def _now(self) -> float:
        return self.app.clock.now().timestamp()

    # -- operations ---------------------------------------------------------------------------

    def validate(self, subscription: str, resource_group: str, name: str, body: Any) -> dict:
        """POST .../validate: the DeploymentValidateResult; ArmError 400 when ARM would refuse."""
        group = self.resources.require_resource_group(subscription, resource_group)
        _check_name(name)
        properties, expansion = self._expand(subscription, group, name, body)
        now = self._now()
        return {"id": deployment_id(subscription, group["name"], name), "name": name, "type": DEPLOYMENT_TYPE,
                "properties": {**self._summary(properties, expansion, now), "provisioningState": "Succeeded",
                               "duration": "PT0S",
                               "validatedResources": [{"id": item.id} for item in expansion.resources]}}

    def create(self, subscription: str, resource_group: str, name: str, body: Any, *,
               on_behalf_of: Request) -> tuple[dict, bool]:
        """PUT: start a deployment (the first resources are sent at once). Returns (rendered
        deployment, whether one of that name existed). 409 DeploymentActive while one runs."""
        group = self.resources.require_resource_group(subscription, resource_group)
        _check_name(name)
        properties, expansion = self._expand(subscription, group, name, body)
        with self._lock:
            key = self._key(subscription, resource_group, name)
            existing = self.app.store.get(T_DEPLOYMENT, key)
            if existing and self._state(existing) not in _DONE:
                raise ArmError(409, "DeploymentActive",
                               f"Unable to edit or replace deployment '{name}': previous deployment from "
                               f"'{existing['timestamp']}' is still active (current provisioning state is "
                               f"'{self._state(existing)}'). Please see https://aka.ms/arm-deploy for usage details.")
            now = self._now()
            doc = {
                "key": key, "subscription": subscription, "resourceGroup": group["name"], "name": name,
                "id": deployment_id(subscription, group["name"], name), "created": now,
                "timestamp": iso(self.app.clock.now()),
                "acceptedUntil": now + ACCEPT_SECONDS / self.app.clock.time_scale,
                "statusId": secrets.token_hex(8).upper(),
                "summary": self._summary(properties, expansion, now),
                "outputs": expansion.outputs,
                "resources": [{"index": item.index, "id": item.id, "type": item.type, "name": item.name,
                               "apiVersion": item.api_version, "body": item.body, "dependsOn": item.depends_on,
                               "state": "Pending", "operationId": secrets.token_hex(8).upper()}
                              for item in expansion.resources],
                "finished": None,
            }
            if body.get("tags"):
                doc["tags"] = body["tags"]
            self._advance(doc, on_behalf_of)
            return self.render(doc), existing is not None

    def get(self, subscription: str, resource_group: str, name: str, *, on_behalf_of: Request) -> dict:
        return self.render(self._progress(self.require(subscription, resource_group, name), on_behalf_of))

    def list(self, subscription: str, resource_group: str, *, on_behalf_of: Request) -> list[dict]:
        self.resources.require_resource_group(subscription, resource_group)
        docs = self.app.store.list(T_DEPLOYMENT, f"{subscription}/{resource_group}/".lower())
        return [self.render(self._progress(doc, on_behalf_of)) for doc in docs]

    def operations(self, subscription: str, resource_group: str, name: str, *, on_behalf_of: Request) -> list[dict]:
        doc = self._progress(self.require(subscription, resource_group, name), on_behalf_of)
        return [self._operation(doc, item) for item in doc["resources"] if item["state"] != "Pending"]

    def operation(self, subscription: str, resource_group: str, name: str, operation_id: str, *,
                  on_behalf_of: Request) -> dict:
        for item in self.operations(subscription, resource_group, name, on_behalf_of=on_behalf_of):
            if item["operationId"].lower() == operation_id.lower():
                return item
        raise ArmError(404, "DeploymentOperationNotFound",
                       f"Deployment operation '{operation_id}' of deployment '{name}' could not be found.")

    def status(self, subscription: str, resource_group: str, name: str, status_id: str, *,
               on_behalf_of: Request) -> dict:
        """The Azure-AsyncOperation document of the deployment's PUT."""
        doc = self._progress(self.require(subscription, resource_group, name), on_behalf_of)
        if doc["statusId"].lower() != status_id.lower():
            raise ArmError(404, "OperationNotFound", f"The operation '{status_id}' could not be found.")
        state = self._state(doc)
        answer: dict = {"status": state}
        if state == "Failed":
            answer["error"] = doc["error"]
        return answer

    def delete(self, subscription: str, resource_group: str, name: str) -> bool:
        """Forget a finished deployment (its resources stay, as in ARM); False when absent."""
        self.resources.require_resource_group(subscription, resource_group)
        with self._lock:
            doc = self.app.store.get(T_DEPLOYMENT, self._key(subscription, resource_group, name))
            if doc is None:
                return False
            if self._state(doc) not in _DONE:
                raise ArmError(409, "DeploymentActive",
                               f"The deployment '{name}' cannot be deleted while it is "
                               f"'{self._state(doc)}'. Please see https://aka.ms/arm-deploy for usage details.")
            return self.app.store.delete(T_DEPLOYMENT, doc["key"])

    def drop_resource_group(self, subscription: str, resource_group: str) -> None:
        """Delete hook: a group's deployment history goes with the group."""
        for key in self.app.store.keys(T_DEPLOYMENT, f"{subscription}/{resource_group}/".lower()):
            self.app.store.delete(T_DEPLOYMENT, key)

    def require(self, subscription: str, resource_group: str, name: str) -> dict:
        self.resources.require_resource_group(subscription, resource_group)
        doc = self.app.store.get(T_DEPLOYMENT, self._key(subscription, resource_group, name))
        if doc is None:
            raise ArmError(404, "DeploymentNotFound", f"Deployment '{name}' could not be found.")
        return doc

    # -- expansion and preflight --------------------------------------------------------------

    def _expand(self, subscription: str, group: dict, name: str, body: Any) -> tuple[dict, templates.Expansion]:
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise ArmError(400, "InvalidRequestContent", "The request content must have a 'properties' object.")
        properties = body["properties"]
        for link in ("templateLink", "parametersLink"):
            if properties.get(link):
                raise invalid_template(templates.TemplateError(
                    f"properties.{link}", f"'{link}' is not served by the emulator: send the template inline "
                                          "(az deployment group create --template-file)."))
        mode = properties.get("mode") or "Incremental"
        if mode != "Incremental":
            raise invalid_template(templates.TemplateError(
                "properties.mode", f"Deployment mode '{mode}' is not served by the emulator (only Incremental)."))
        if not isinstance(properties.get("template"), dict):
            raise ArmError(400, "InvalidRequestContent", "The deployment 'properties.template' must be a JSON object.")
        subscription_doc = self.resources.ensure_subscription(subscription)
        scope_group = {key: group[key] for key in ("id", "name", "type", "location", "properties", "tags",
                                                   "managedBy") if key in group}
        scope_subscription = {key: subscription_doc[key] for key in ("id", "subscriptionId", "tenantId",
                                                                     "displayName")}
        try:
            expansion = templates.expand(properties["template"], properties.get("parameters") or {},
                                         subscription=scope_subscription, resource_group=scope_group,
                                         deployment=name)
        except templates.TemplateError as error:
            raise invalid_template(error) from None
        for item in expansion.resources:
            self._preflight(item)
        return properties, expansion

    def _preflight(self, item: templates.PlannedResource) -> None:
        """The type must be one the emulator serves (a PUT route exists) at a registered api-version."""
        namespace, _, resource_type = item.type.partition("/")
        path = f"resources[{item.index}]"
        try:
            route, _ = self.app.router.match("PUT", item.id)
        except ArmError:
            route = None
        if route is None or route.auth != "arm":
            raise invalid_template(templates.TemplateError(
                f"{path}.type", f"The resource type '{item.type}' is not served by the emulator, so it cannot be "
                                "deployed (see emulator/README.md, 'Template deployments')."))
        versions = self.resources.api_versions(namespace, resource_type)
        if versions and item.api_version not in versions:
            error = self.resources.no_registered_provider(namespace, resource_type, item.api_version,
                                                          str(item.body.get("location") or ""))
            error.target = f"{path}.apiVersion"
            raise error

    def _summary(self, properties: dict, expansion: templates.Expansion, now: float) -> dict:
        template_text = json.dumps(properties["template"], sort_keys=True, separators=(",", ":"))
        providers: dict[str, dict[str, set]] = {}
        for item in expansion.resources:
            namespace, _, resource_type = item.type.partition("/")
            location = str(item.body.get("location") or "").replace(" ", "").lower()
            where = providers.setdefault(namespace, {}).setdefault(resource_type, set())
            if location:
                where.add(location)
        dependencies = []
        for item in expansion.resources:
            if item.depends_on:
                dependencies.append({
                    "dependsOn": [{"id": expansion.resources[other].id, "resourceType": expansion.resources[other].type,
                                   "resourceName": expansion.resources[other].name} for other in item.depends_on],
                    "id": item.id, "resourceType": item.type, "resourceName": item.name})
        return {
            "templateHash": str(int(hashlib.sha256(template_text.encode()).hexdigest()[:16], 16)),
            "parameters": expansion.parameters,
            "mode": properties.get("mode") or "Incremental",
            "correlationId": str(uuid.uuid4()),
            "providers": [{"namespace": namespace,
                           "resourceTypes": [{"resourceType": kind, "locations": sorted(where)}
                                             for kind, where in types.items()]}
                          for namespace, types in providers.items()],
            "dependencies": dependencies,
        }

    # -- progress -------------------------------------------------------------------------------

    def _state(self, doc: dict) -> str:
        if self._now() < doc["acceptedUntil"]:
            return "Accepted"
        if doc["finished"] is None:
            return "Running"
        return doc["outcome"]

    def _progress(self, doc: dict, on_behalf_of: Request) -> dict:
        if doc["finished"] is not None:
            return doc
        with self._lock:
            fresh = self.app.store.get(T_DEPLOYMENT, doc["key"]) or doc
            if fresh["finished"] is None:
                self._advance(fresh, on_behalf_of)
            return fresh

    def _advance(self, doc: dict, caller: Request) -> None:
        """Poll what is in flight, send what is now unblocked, and record the end when nothing is left."""
        items = doc["resources"]
        for item in items:
            if item["state"] == "Running":
                self._poll(item, caller)
        progressed = True
        while progressed:
            progressed = False
            for item in items:
                if item["state"] == "Pending" and all(items[other]["state"] == "Succeeded"
                                                      for other in item["dependsOn"]):
                    self._send(item, caller)
                    progressed = progressed or item["state"] == "Succeeded"
        blocked = any(item["state"] == "Pending" and any(items[o]["state"] == "Failed" for o in item["dependsOn"])
                      for item in items)
        in_flight = any(item["state"] == "Running" for item in items)
        waiting = any(item["state"] == "Pending" for item in items) and not blocked
        if not in_flight and not waiting:
            failed = [item for item in items if item["state"] == "Failed"]
            doc["finished"] = max(self._now(), doc["acceptedUntil"])
            doc["outcome"] = "Failed" if failed else "Succeeded"
            if failed:
                doc["error"] = {"code": "DeploymentFailed", "target": doc["id"], "message": FAILED_MESSAGE,
                                "details": [item["error"] for item in failed]}
        self.app.store.put(T_DEPLOYMENT, doc["key"], doc)

    def _send(self, item: dict, caller: Request) -> None:
        item["started"] = self._now()
        response = self.app.dispatch("PUT", f"{item['id']}?api-version={item['apiVersion']}", on_behalf_of=caller,
                                     body=json.dumps(item["body"]).encode())
        item["statusCode"] = response.status
        if response.status >= 400:
            self._fail(item, response.body)
            return
        poll = response.headers.get("Azure-AsyncOperation") or (
            response.headers.get("Location") if response.status == 202 else None)
        if poll:
            parts = urlsplit(poll)
            item["poll"] = {"path": f"{parts.path}?{parts.query}" if parts.query else parts.path,
                            "async": "Azure-AsyncOperation" in response.headers}
            item["state"] = "Running"
            return
        self._succeed(item)

    def _poll(self, item: dict, caller: Request) -> None:
        response = self.app.dispatch("GET", item["poll"]["path"], on_behalf_of=caller)
        if response.status >= 400:
            self._fail(item, response.body)
            return
        if item["poll"]["async"]:
            status = (response.body or {}).get("status", "")
            if status == "Succeeded":
                self._succeed(item)
            elif status in ("Failed", "Canceled"):
                self._fail(item, response.body)
        elif response.status != 202:
            self._succeed(item)

    def _succeed(self, item: dict) -> None:
        item["state"] = "Succeeded"
        item["ended"] = self._now()

    def _fail(self, item: dict, body: Any) -> None:
        error = (body or {}).get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            error = {"code": "ResourceDeploymentFailure",
                     "message": "The resource operation completed with terminal provisioning state 'Failed'."}
        item["state"] = "Failed"
        item["ended"] = self._now()
        item["error"] = {key: error[key] for key in ("code", "message", "details") if key in error}

    # -- rendering ------------------------------------------------------------------------------

    def render(self, doc: dict) -> dict:
        """The DeploymentExtended JSON at this moment."""
        state = self._state(doc)
        end = doc["finished"] if state in _DONE else self._now()
        properties = {**doc["summary"], "provisioningState": state, "timestamp": doc["timestamp"],
                      "duration": _duration(end - doc["created"])}
        if state == "Succeeded":
            properties["outputs"] = doc["outputs"]
        properties["outputResources"] = [{"id": item["id"]} for item in doc["resources"]
                                         if item["state"] == "Succeeded"]
        if state == "Failed":
            properties["error"] = doc["error"]
        rendered = {"id": doc["id"], "name": doc["name"], "type": DEPLOYMENT_TYPE, "properties": properties}
        if doc.get("tags"):
            rendered["tags"] = doc["tags"]
        return rendered

    def _operation(self, doc: dict, item: dict) -> dict:
        state = {"Running": "Running"}.get(item["state"], item["state"])
        code = item.get("statusCode") or 0
        properties: dict = {
            "provisioningOperation": "Create", "provisioningState": state,
            "timestamp": iso(self.app.clock.now()) if state == "Running" else _iso_at(item["ended"]),
            "duration": _duration((item.get("ended") or self._now()) - item["started"]),
            "trackingId": str(uuid.uuid5(uuid.NAMESPACE_URL, item["id"] + item["operationId"])),
            "serviceRequestId": str(uuid.uuid5(uuid.NAMESPACE_OID, item["operationId"])),
            "statusCode": _status_name(code),
            "targetResource": {"id": item["id"], "resourceType": item["type"], "resourceName": item["name"],
                               "apiVersion": item["apiVersion"]},
        }
        if state == "Failed":
            properties["statusMessage"] = {"status": "Failed", "error": item["error"]}
        elif state == "Succeeded":
            properties["statusMessage"] = {"status": "Succeeded"}
        return {"id": f"{doc['id']}/operations/{item['operationId']}", "operationId": item["operationId"],
                "properties": properties}


def _check_name(name: str) -> None:
    if not 1 <= len(name) <= 64 or not set(name) <= _NAME_CHARS:
        raise ArmError(400, "InvalidDeploymentName",
                       f"The deployment name '{name}' is not valid: use 1 to 64 letters, digits, '-', '_', '.', "
                       "'(' or ')'.")


def _duration(seconds: float) -> str:
    return f"PT{max(seconds, 0):.7f}S"


def _iso_at(moment: float) -> str:
    return iso(dt.datetime.fromtimestamp(moment, dt.UTC))


def _status_name(code: int) -> str:
    """ARM writes an operation's statusCode as the status name: Created, OK, BadRequest, Conflict."""
    if not code:
        return "Accepted"
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        return str(code)
    return {"OK": "OK"}.get(phrase, phrase.replace(" ", "").replace("-", ""))
