"""Image Builder's state: templates, runs, run outputs, triggers and async operations.

One backend method per API operation (moto's shape); routes.py parses requests, calls
them and renders. Every document lives in app.store, so a restart loses nothing.

Time-driven changes (provisioning finishing, a distributor publishing its image, a run or a
delete ending) are not done by background threads: `settle()` runs before every request and
applies whatever has come due according to app.clock. Between those moments everything a
client reads is computed from stored timestamps (builds.py), so a frozen clock
freezes the world and advancing it moves every build at once. An in-memory index of the next
due moment per template keeps `settle()` O(1) when nothing is due, which matters for the
1,000-template benchmark.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from emulator.core import ArmError, page_size
from emulator.core.lro import POLL_HOLD, retry_after
from emulator.imagebuilder import builds, permissions
from emulator.msi.backend import identity_ids

if TYPE_CHECKING:
    from emulator.core.pipeline import App

API_VERSION = "2025-10-01"
PROVIDER = "Microsoft.VirtualMachineImages"
TEMPLATE_TYPE = f"{PROVIDER}/imageTemplates"
TROUBLESHOOTING = builds.TROUBLESHOOTING
RUN_HISTORY = 10  # runs (and their logs) kept per template

T_TEMPLATE = "ib_template"
T_RUN_OUTPUT = "ib_runoutput"
T_TRIGGER = "ib_trigger"
T_OPERATION = "ib_operation"
T_FORCED = "ib_forced"
T_ACCOUNT = "ib_account"  # storage account name -> template key (for the log blobs)
T_STAGING = "ib_staging"  # staging resource group id -> template key (one template per group)
UNSUPPORTED_SECURITY_TYPES = ("TrustedLaunch", "ConfidentialVM")


def template_id(subscription: str, resource_group: str, name: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/{TEMPLATE_TYPE}/{name}"


def template_key(subscription: str, resource_group: str, name: str) -> str:
    return template_id(subscription, resource_group, name).lower()


def normalize_location(location: str) -> str:
    return location.replace(" ", "").lower()


def not_found(resource_group: str, what: str) -> ArmError:
    return ArmError(404, "ResourceNotFound",
                    f"The Resource '{what}' under resource group '{resource_group}' was not found. For more details "
                    "please go to https://aka.ms/ARMResourceNotFoundFix")


def not_allowed(action: str, doc: dict, now: float) -> ArmError:
    """OperationNotAllowed as the service words it (aib-reference §2.10)."""
    state = _provisioning_state(doc)
    provisioning = {"Succeeded": "provisioned"}.get(state, state.lower())
    run = doc["runs"][-1] if doc["runs"] else None
    run_state = builds.last_run_status(run, now)["runState"].lower() if run else "none"
    return ArmError(409, "OperationNotAllowed",
                    f"Operation {TEMPLATE_TYPE}/{action} is not allowed in provisioning state: {provisioning} or run "
                    f"state: {run_state}.")


def _provisioning_state(doc: dict) -> str:
    return "Deleting" if doc.get("deleting") else doc["provisioning"]["state"]


def _staging_name(resource_group: str, name: str) -> str:
    """IT_<rg>_<template>_<guid>, shortened like the service does to fit ARM's 90 characters."""
    guid = str(uuid.uuid4())
    budget = 90 - len("IT___") - len(guid)
    rg_part = resource_group[: max(budget // 2, budget - len(name))]
    name_part = name[: budget - len(rg_part)]
    return f"IT_{rg_part}_{name_part}_{guid}"


class ImageBuilder:
    """app.services["imagebuilder"]: the state of Microsoft.VirtualMachineImages."""

    def __init__(self, app: App):
        self.app = app
        self._lock = threading.RLock()
        self._due: dict[str, float] = {}  # template key -> next moment something happens to it
        self._next_due = float("inf")
        self._load_due()

    # -- plumbing --------------------------------------------------------------------------
    @property
    def store(self):
        return self.app.store

    def now(self) -> float:
        return self.app.clock.now().timestamp()

    def scale(self) -> float:
        return self.app.clock.time_scale

    def retry_after(self) -> str:
        """The Retry-After sent on every LRO answer (initial and each poll), shared with the
        other services' LROs (core.lro.retry_after)."""
        return retry_after(self.app)

    def provision_seconds(self) -> float:
        """Simulated seconds a template takes to provision (a settings override, else realistic)."""
        control = self.app.services.get("control")
        override = control.settings.get("provision_seconds") if control is not None else None
        return float(override) if override is not None else float(builds.PROVISION_SECONDS)

    def _service(self, name: str):
        return self.app.services.get(name)

    def on_reset(self) -> None:
        with self._lock:
            self._due.clear()
            self._next_due = float("inf")
            self._load_due()

    # -- the due index and settling --------------------------------------------------------
    def _load_due(self) -> None:
        for doc in self.store.list(T_TEMPLATE):
            self._index(doc)

    def _index(self, doc: dict) -> None:
        key = doc["key"]
        due = self._next_event(doc)
        if due is None:
            self._due.pop(key, None)
        else:
            self._due[key] = due
        self._next_due = min(self._due.values(), default=float("inf"))

    def _next_event(self, doc: dict) -> float | None:
        moments = []
        if doc.get("deleting"):
            moments.append(doc["deleting"]["until"])
        if doc["provisioning"]["state"] == "Creating":
            moments.append(doc["provisioning"]["until"])
        if doc["runs"] and not doc["runs"][-1]["done"]:
            run = doc["runs"][-1]
            moments.append(builds.run_end(run))
            moments += [step["end"] for step in self._pending_distributors(run)]
        return min(moments) if moments else None

    def settle(self) -> None:
        """Apply every change that has come due (called before each request is handled)."""
        now = self.now()
        if now < self._next_due:
            return
        with self._lock:
            due = [key for key, moment in self._due.items() if moment <= now]
            for key in due:
                doc = self.store.get(T_TEMPLATE, key)
                if doc is None:
                    self._due.pop(key, None)
                    continue
                self._advance(doc, now)
            self._next_due = min(self._due.values(), default=float("inf"))

    def _save(self, doc: dict) -> None:
        self.store.put(T_TEMPLATE, doc["key"], doc)
        self._index(doc)

    def _advance(self, doc: dict, now: float) -> None:
        """Bring one template up to `now`, in the order things happen."""
        prov = doc["provisioning"]
        if prov["state"] == "Creating" and prov["until"] <= now:
            self._finish_provisioning(doc)
        if doc["runs"] and not doc["runs"][-1]["done"]:
            self._advance_run(doc, doc["runs"][-1], now)
        if doc.get("deleting") and doc["deleting"]["until"] <= now:
            self._finish_delete(doc)
            return
        self._save(doc)

    # -- operations (async operation documents) --------------------------------------------
    def _new_operation(self, kind: str, doc: dict, *, status: str = "InProgress", start: float | None = None,
                       **extra: Any) -> dict:
        op_id = str(uuid.uuid4())
        start = self.now() if start is None else start
        op = {"id": op_id, "kind": kind, "template": doc["key"], "templateName": doc["name"],
              "subscription": doc["subscription"], "location": normalize_location(doc["resource"]["location"]),
              "status": status, "startTime": iso_at(start), **extra}
        if status != "InProgress":
            op["endTime"] = iso_at(start)
        self.store.put(T_OPERATION, op_id, op)
        return op

    def _finish_operation(self, op_id: str | None, status: str, moment: float, error: dict | None = None) -> None:
        if not op_id:
            return
        op = self.store.get(T_OPERATION, op_id)
        if op is None or op["status"] != "InProgress":
            return
        op.update(status=status, endTime=iso_at(moment))
        if error:
            op["error"] = error
        self.store.put(T_OPERATION, op_id, op)

    def operation(self, subscription: str, op_id: str) -> dict:
        """The stored operation; 404 when unknown (or in another subscription)."""
        self.settle()
        op = self.store.get(T_OPERATION, op_id)
        if op is None or op["subscription"].lower() != subscription.lower():
            raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
        return op

    def poll_operation(self, subscription: str, op_id: str) -> dict:
        """operation() for a poller. When the time scale makes Retry-After 0, an in-progress
        answer is held back for up to POLL_HOLD seconds (less if the operation ends sooner), so
        a client polling with no delay cannot spin the emulator's CPU."""
        op = self.operation(subscription, op_id)
        if op["status"] != "InProgress" or self.retry_after() != "0" or self.app.clock.frozen:
            return op
        wait = min(POLL_HOLD, max(0.0, self._next_due - self.now()))
        if wait > 0:
            time.sleep(wait)
        return self.operation(subscription, op_id)

    @staticmethod
    def operation_status(op: dict) -> dict:
        """The Azure-AsyncOperation document: name, status, startTime[, endTime][, error]."""
        status = {"name": op["id"].upper(), "status": op["status"], "startTime": op["startTime"]}
        if op.get("endTime"):
            status["endTime"] = op["endTime"]
        if op.get("error"):
            status["error"] = op["error"]
        return status

    # -- templates: look-ups ---------------------------------------------------------------
    def _require_group(self, subscription: str, resource_group: str) -> None:
        resources = self._service("resources")
        if resources is None:
            return
        resources.ensure_subscription(subscription)
        if resources.resource_group(subscription, resource_group) is None:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{resource_group}' could not be found.")

    def find(self, subscription: str, resource_group: str, name: str) -> dict | None:
        self.settle()
        return self.store.get(T_TEMPLATE, template_key(subscription, resource_group, name))

    def require(self, subscription: str, resource_group: str, name: str) -> dict:
        self._require_group(subscription, resource_group)
        doc = self.find(subscription, resource_group, name)
        if doc is None:
            raise not_found(resource_group, f"{TEMPLATE_TYPE}/{name}")
        return doc

    def render(self, doc: dict) -> dict:
        """The ImageTemplate JSON a GET returns at this moment."""
        # Shallow copies of the two levels that change: a deep copy of every template was
        # the main cost of listing 1,000 of them.
        resource = dict(doc["resource"])
        props = resource["properties"] = dict(resource["properties"])
        prov = doc["provisioning"]
        props["provisioningState"] = _provisioning_state(doc)
        if prov["state"] == "Failed" and prov.get("error"):
            props["provisioningError"] = prov["error"]
        if doc.get("exactVersion"):
            props["source"] = {**props["source"], "exactVersion": doc["exactVersion"]}
        if doc["runs"]:
            props["lastRunStatus"] = builds.last_run_status(doc["runs"][-1], self.now())
        props["exactStagingResourceGroup"] = doc["staging"]["id"]
        return resource

    def list_templates(self, subscription: str, resource_group: str | None, after: int) -> tuple[list[dict], int | None]:
        """A page of templates (rendered) and the skip token of the next page, or None."""
        self.settle()
        if resource_group is not None:
            self._require_group(subscription, resource_group)
            prefix = f"/subscriptions/{subscription}/resourcegroups/{resource_group}/providers/"
        else:
            prefix = f"/subscriptions/{subscription}/resourcegroups/"
        size = page_size(self.app)
        rows = self.store.scan(T_TEMPLATE, prefix, after=after, limit=size + 1)
        page = rows[:size]
        following = page[-1][0] if len(rows) > size else None
        return [self.render(doc) for _, doc in page], following

    def generic_resources(self, subscription: str, resource_group: str | None) -> list[dict]:
        """The templates as az resource list shows them (the resources service's lister)."""
        self.settle()
        prefix = f"/subscriptions/{subscription}/resourcegroups/"
        if resource_group is not None:
            prefix += f"{resource_group}/providers/"
        found = []
        for doc in self.store.list(T_TEMPLATE, prefix.lower()):
            resource = doc["resource"]
            item = {key: resource[key] for key in ("id", "name", "type", "location", "tags", "identity")
                    if resource.get(key) is not None}
            found.append(item)
        return found

    # -- templates: create -----------------------------------------------------------------
    def create_template(self, subscription: str, resource_group: str, name: str, body: dict, *,
                        claims: dict | None, base_url: str) -> tuple[dict, dict]:
        """PUT of a new template: 409 Conflict when the name exists (Azure cannot update templates).

        The checks that need the catalog run now, but their outcome shows only when the short
        provisioning time is over (provisioningState Creating -> Succeeded | Failed), as in Azure.
        Returns (template document, PUT operation).
        """
        self._require_group(subscription, resource_group)
        self._require_identities(subscription, body)
        with self._lock:
            key = template_key(subscription, resource_group, name)
            if self.find(subscription, resource_group, name) is not None:
                raise ArmError(409, "Conflict",
                               "Update/Upgrade of image templates is currently not supported. Please change the name "
                               "of the template you are submitting. If you have previously tried to submit a template "
                               "and it failed to provision, you must delete it first and then resubmit. For more "
                               f"information, go to {TROUBLESHOOTING}.")
            now = self.now()
            resource = {
                "id": template_id(subscription, resource_group, name),
                "name": name,
                "type": TEMPLATE_TYPE,
                "location": body["location"],
                **({"tags": body["tags"]} if "tags" in body else {}),
                "identity": _with_identity_ids(body["identity"]),
                "properties": body["properties"],
                "systemData": _system_data(claims, iso_at(now)),
            }
            staging = self._staging_for(subscription, resource_group, name, body)
            # With Azurite configured the staging account is one of its pool (emulator/storage).
            storage = self._service("storage")
            account = (storage.claim(key) if storage is not None else None) or _storage_account_name()
            doc = {"key": key, "subscription": subscription, "resourceGroup": resource_group, "name": name,
                   "resource": resource, "staging": staging, "storageAccount": account, "baseUrl": base_url,
                   "runs": [], "deleting": None, "exactVersion": None,
                   "provisioning": {"state": "Creating", "until": now + self.provision_seconds() / self.scale()}}
            error = self._provisioning_problem(doc)
            doc["provisioning"].update(outcome="Failed" if error else "Succeeded", error=error)
            op = self._new_operation("put", doc)
            doc["provisioning"]["opId"] = op["id"]
            self.store.put(T_ACCOUNT, account, {"template": key})
            self._save(doc)
            return doc, op

    # -- permissions and policy (emulator/imagebuilder/permissions.py) ----------------------
    def _enforced(self, subscription: str) -> bool:
        """Whether RBAC is enforced for the subscription (control API; off by default)."""
        authz = self._service("authorization")
        return authz is not None and authz.enforced(subscription)

    def _require_identities(self, subscription: str, body: dict) -> None:
        """With enforcement on, the template identity must exist (Microsoft.ManagedIdentity);
        without it any identity id is accepted, as before this check existed."""
        msi = self._service("msi")
        if msi is None or not self._enforced(subscription):
            return
        for key in (body.get("identity") or {}).get("userAssignedIdentities") or {}:
            if msi.by_id(key) is None:
                raise ArmError(400, "FailedIdentityOperation",
                               f"Identity operation for resource failed with error 'Failed to perform resource "
                               f"identity operation. Status: 'NotFound'. Response: '{{\"error\":{{\"code\":"
                               f"\"NotFound\",\"message\":\"Resource '{key}' not found.\"}}}}'.'.")

    def _missing(self, doc: dict, checks: list[tuple[str, str]]) -> tuple[str, str, str, str] | None:
        """(clientId, principalId, scope, action) of the first check the template identity fails."""
        authz = self._service("authorization")
        found = permissions.template_identity(doc["resource"])
        if authz is None or found is None or not checks:
            return None
        ids = found[1]
        missing = authz.missing(ids["principalId"], checks)
        return (ids["clientId"], ids["principalId"], *missing) if missing else None

    def _policy_problem(self, resource: dict) -> str | None:
        policy = self._service("policy")
        refusal = policy.problem(resource) if policy is not None else None
        return f"{refusal.code}: {refusal.message}" if refusal else None

    def _submission_problem(self, doc: dict, location: str) -> dict | None:
        """Azure Policy on the staging group and its storage account, then (enforcement on) the
        identity's read access to scripts in Azure Storage: both happen when the template is
        submitted, so the template ends Failed."""
        staging = doc["staging"]
        resources = self._service("resources")
        tags = doc["resource"]["properties"].get("managedResourceTags") or {}
        if not staging["userSupplied"] or (resources and resources.resource_group(doc["subscription"],
                                                                                    staging["name"]) is None):
            group_tags = {"createdBy": "AzureVMImageBuilder", "imageTemplateName": doc["name"],
                          "imageTemplateResourceGroupName": doc["resourceGroup"], **tags}
            problem = self._policy_problem({"id": staging["id"], "name": staging["name"],
                                            "type": "Microsoft.Resources/subscriptions/resourceGroups",
                                            "location": location, "tags": group_tags})
            if problem:
                return _error("Other", f"Creating the staging resource group failed: {problem}")
        account = {"id": f"{staging['id']}/providers/Microsoft.Storage/storageAccounts/{doc['storageAccount']}",
                   "name": doc["storageAccount"], "type": "Microsoft.Storage/storageAccounts", "location": location,
                   "tags": tags}
        problem = self._policy_problem(account)
        if problem:
            return _error("Other", f"Creating the staging storage account failed: {problem}")
        if self._enforced(doc["subscription"]):
            for uri in permissions.script_uris(doc["resource"]["properties"]):
                scope = permissions.blob_scope(uri, doc["subscription"])
                if scope and self._missing(doc, [(scope, permissions.BLOB_READ)]):
                    return _error("Other", permissions.not_authorized_to_access(uri, TROUBLESHOOTING))
        return None

    def _run_problems(self, doc: dict, props: dict, source: dict, location: str) -> tuple[dict | None, dict[int, str]]:
        """At run start: the Building failure (permissions, then policy on the build VM's resources)
        and the distributors that will fail (permissions, policy on their outputs)."""
        build_error, distributor_errors = None, {}
        enforced = self._enforced(doc["subscription"])
        if enforced:
            missing = self._missing(doc, permissions.build_checks(props, source.get("id"), doc["staging"]))
            if missing:
                build_error = permissions.build_failure(doc["name"], *missing[:2], missing[3], missing[2])
        tags = props.get("managedResourceTags") or {}
        if build_error is None:
            for kind, name in (("Microsoft.Network/virtualNetworks", "IT-vnet"),
                               ("Microsoft.Network/networkInterfaces", "IT-nic"),
                               ("Microsoft.Compute/virtualMachines", "IT-vm")):
                problem = self._policy_problem({"id": f"{doc['staging']['id']}/providers/{kind}/{name}", "name": name,
                                                "type": kind, "location": location, "tags": tags})
                if problem:
                    build_error = {"code": "InternalOperationError",
                                   "message": f"Build (Deploying build VM) step failed: {problem}"}
                    break
        for index, item in enumerate(props["distribute"]):
            missing = self._missing(doc, permissions.distributor_checks(item)) if enforced else None
            if missing:
                distributor_errors[index] = permissions.distributor_failure(item, location, *missing[:2],
                                                                            missing[3], missing[2])
                continue
            output = _output_resource(item, location)
            problem = self._policy_problem(output) if output else None
            if problem:
                distributor_errors[index] = f"Error publishing the {item['type']} output: {problem}"
        return build_error, distributor_errors

    def _staging_for(self, subscription: str, resource_group: str, name: str, body: dict) -> dict:
        wanted = body["properties"].get("stagingResourceGroup")
        if wanted:
            group_name = wanted.rstrip("/").rsplit("/", 1)[1]
            return {"id": f"/subscriptions/{subscription}/resourceGroups/{group_name}", "name": group_name,
                    "userSupplied": True, "created": False}
        group_name = _staging_name(resource_group, name)
        return {"id": f"/subscriptions/{subscription}/resourceGroups/{group_name}", "name": group_name,
                "userSupplied": False, "created": False}

    def _provisioning_problem(self, doc: dict) -> dict | None:
        """The provisioningError the template will end with, or None (catalog checks, §2.3/§2.11)."""
        props = doc["resource"]["properties"]
        location = normalize_location(doc["resource"]["location"])
        problem = self._source_problem(props["source"], doc["subscription"], location)
        if problem:
            return problem
        for item in props["distribute"]:
            if item["type"] == "SharedImage":
                problem = self._gallery_target_problem(item)
                if problem:
                    return problem
        return self._staging_problem(doc, location) or self._submission_problem(doc, location)

    def _source_problem(self, source: dict, subscription: str, location: str) -> dict | None:
        compute = self._service("compute")
        if compute is None:
            return None
        kind = source["type"]
        if kind == "PlatformImage":
            image = compute.platform_image(location, source["publisher"], source["offer"], source["sku"],
                                           source["version"])
            if image is None:
                return _error("BadPIRSource",
                              f"Platform Image was not found. location: {location}, publisherName: "
                              f"{source['publisher']}, offer: {source['offer']}, sku: {source['sku']}, version: "
                              f"{source['version']}. Please check the specified source image version in Image "
                              "Builder Template exists. For information on how to check available versions, types, "
                              f"review {TROUBLESHOOTING}.")
            return _security_problem("BadPIRSource", "platform image", image.get("features") or {})
        if kind == "ManagedImage":
            image_id = source["imageId"]
            image = compute.managed_image(image_id)
            if image is None:
                return _error("BadManagedImageSource",
                              f"The source managed image '{image_id}' was not found. Check that it exists, is "
                              "generalized and is in the same subscription and region as the image template. For "
                              f"more troubleshooting steps go to {TROUBLESHOOTING}.")
            if image_id.split("/")[2].lower() != subscription.lower():
                return _error("BadManagedImageSource",
                              f"The source managed image '{image_id}' must be in the same subscription as the image "
                              f"template ('{subscription}'). For more troubleshooting steps go to {TROUBLESHOOTING}.")
            if normalize_location(image["location"]) != location:
                return _error("BadManagedImageSource",
                              f"The source managed image '{image_id}' is in region '{image['location']}', but the "
                              f"image template is in '{location}'; they must be in the same region. For more "
                              f"troubleshooting steps go to {TROUBLESHOOTING}.")
            return None
        version_id = source["imageVersionId"]
        version = compute.gallery_image_version(version_id)
        if version is None:
            return _error("BadSharedImageVersionSource",
                          f"The source shared image version '{version_id}' was not found. Check that the version "
                          f"exists and that the template identity can read it. For more troubleshooting steps go to "
                          f"{TROUBLESHOOTING}.")
        regions = [normalize_location(region["name"]) for region in version.get("targetRegions") or []]
        if regions and location not in regions:
            return _error("BadSharedImageVersionSource",
                          f"The source shared image version '{version_id}' is not replicated to the image template's "
                          f"region '{location}' (replicated to: {', '.join(regions)}). Replicate it to that region "
                          f"first. For more troubleshooting steps go to {TROUBLESHOOTING}.")
        definition = compute.gallery_image(version["id"].rsplit("/versions/", 1)[0])
        return _security_problem("BadSharedImageVersionSource", "gallery image",
                                 (definition or {}).get("features") or {})

    def _gallery_target_problem(self, item: dict) -> dict | None:
        compute = self._service("compute")
        if compute is None:
            return None
        definition_id, _, version = item["galleryImageId"].partition("/versions/")
        if compute.gallery_image(definition_id) is None:
            return _error("BadSharedImageDistribute",
                          f"The gallery image definition '{definition_id}' to distribute to was not found. Create "
                          "the image definition first and check that the template identity can read it. For more "
                          f"troubleshooting steps go to {TROUBLESHOOTING}.")
        if version and compute.gallery_image_version(item["galleryImageId"]) is not None:
            return _error("BadSharedImageDistribute",
                          f"The gallery image version '{item['galleryImageId']}' already exists; Image Builder only "
                          f"creates new versions. For more troubleshooting steps go to {TROUBLESHOOTING}.")
        return None

    def _staging_problem(self, doc: dict, location: str) -> dict | None:
        staging = doc["staging"]
        if not staging["userSupplied"]:
            return None
        owner = self.store.get(T_STAGING, staging["id"])
        if owner and owner["template"] != doc["key"]:
            return _error("BadStagingResourceGroup",
                          f"The staging resource group '{staging['id']}' is already used by another image template. "
                          f"Each template needs its own staging resource group. For more troubleshooting steps go "
                          f"to {TROUBLESHOOTING}.")
        resources = self._service("resources")
        group = resources.resource_group(doc["subscription"], staging["name"]) if resources else None
        if group is not None and normalize_location(group["location"]) != location:
            return _error("BadStagingResourceGroup",
                          f"The staging resource group '{staging['id']}' is in location '{group['location']}', but "
                          f"it must be in the image template's location '{location}'. For more troubleshooting steps "
                          f"go to {TROUBLESHOOTING}.")
        return None

    def _finish_provisioning(self, doc: dict) -> None:
        prov = doc["provisioning"]
        prov["state"] = prov["outcome"]
        if prov["state"] == "Succeeded":
            self._create_staging_group(doc)
            self._finish_operation(prov.get("opId"), "Succeeded", prov["until"])
            if (doc["resource"]["properties"].get("autoRun") or {}).get("state") == "Enabled":
                self._start_run(doc, prov["until"], doc["baseUrl"])
        else:
            error = {"code": prov["error"]["provisioningErrorCode"], "message": prov["error"]["message"]}
            self._finish_operation(prov.get("opId"), "Failed", prov["until"], error)

    def _create_staging_group(self, doc: dict) -> None:
        resources = self._service("resources")
        staging = doc["staging"]
        if resources is None:
            return
        existing = resources.resource_group(doc["subscription"], staging["name"])
        self.store.put(T_STAGING, staging["id"], {"template": doc["key"]})
        if existing is not None:
            return  # a user-supplied group that exists stays the user's: kept on delete
        tags = {"createdBy": "AzureVMImageBuilder", "imageTemplateName": doc["name"],
                "imageTemplateResourceGroupName": doc["resourceGroup"],
                **(doc["resource"]["properties"].get("managedResourceTags") or {})}
        resources.create_resource_group(doc["subscription"], staging["name"], doc["resource"]["location"], tags=tags)
        staging["created"] = True
        # AIB gives the template identity Contributor on a staging group it creates (aib-reference-2 §2.2).
        authz, found = self._service("authorization"), permissions.template_identity(doc["resource"])
        if authz is not None and found is not None:
            authz.grant(found[1]["principalId"], "Contributor", staging["id"])

    # -- templates: update and delete ------------------------------------------------------
    def update_template(self, doc: dict, resource: dict, *, claims: dict | None) -> dict:
        """Store a PATCHed resource (already validated); returns the (completed) operation."""
        with self._lock:
            if _provisioning_state(doc) in ("Creating", "Deleting"):
                raise not_allowed("write", doc, self.now())
            resource["identity"] = _with_identity_ids(resource.get("identity") or {"type": "None"})
            resource["systemData"] = {**resource.get("systemData", {}),
                                      **_modified_by(claims, iso_at(self.now()))}
            doc["resource"] = resource
            self._save(doc)
            return self._new_operation("patch", doc, status="Succeeded")

    def delete_template(self, doc: dict) -> dict:
        """Start deleting; returns the delete operation (the same one while already deleting)."""
        with self._lock:
            now = self.now()
            if doc.get("deleting"):
                return self.store.get(T_OPERATION, doc["deleting"]["opId"])
            running = doc["runs"] and builds.last_run_status(doc["runs"][-1], now)["runState"] in (
                "Running", "Canceling")
            if doc["provisioning"]["state"] == "Creating" or running:
                raise not_allowed("delete", doc, now)
            op = self._new_operation("delete", doc)
            doc["deleting"] = {"at": now, "until": now + builds.DELETE_SECONDS / self.scale(), "opId": op["id"]}
            self._save(doc)
            return op

    def _finish_delete(self, doc: dict) -> None:
        """The template goes with its run outputs, triggers and the staging group it created."""
        key = doc["key"]
        for kind in (T_RUN_OUTPUT, T_TRIGGER):
            for item in self.store.list(kind, key + "/"):
                self.store.delete(kind, item["id"])
        self.store.delete(T_FORCED, key)
        self.store.delete(T_ACCOUNT, doc["storageAccount"])
        storage = self._service("storage")
        if storage is not None:
            storage.release(doc["storageAccount"])  # the account and its packerlogs go with the staging group
        staging = doc["staging"]
        owner = self.store.get(T_STAGING, staging["id"])
        if owner and owner["template"] == key:
            self.store.delete(T_STAGING, staging["id"])
        resources = self._service("resources")
        if staging["created"] and resources is not None:
            resources.delete_resource_group(doc["subscription"], staging["name"])
        self.store.delete(T_TEMPLATE, key)
        self._due.pop(key, None)
        self._finish_operation(doc["deleting"]["opId"], "Succeeded", doc["deleting"]["until"])

    def drop_resource_group(self, subscription: str, resource_group: str) -> None:
        """Resource-group delete hook: the group's templates go at once, with their children."""
        with self._lock:
            prefix = f"/subscriptions/{subscription}/resourcegroups/{resource_group}/providers/"
            for doc in self.store.list(T_TEMPLATE, prefix):
                doc["deleting"] = doc.get("deleting") or {"at": self.now(), "until": self.now(), "opId": None}
                self._finish_delete(doc)
            self._next_due = min(self._due.values(), default=float("inf"))

    # -- runs ------------------------------------------------------------------------------
    def run_template(self, doc: dict, base_url: str) -> dict:
        """POST run: plan a build starting now; returns its operation. OperationNotAllowed while
        provisioning, after a failed provisioning, while deleting, or while a run is in progress."""
        with self._lock:
            now = self.now()
            running = doc["runs"] and builds.last_run_status(doc["runs"][-1], now)["runState"] in (
                "Running", "Canceling")
            if _provisioning_state(doc) != "Succeeded" or running:
                raise not_allowed("run", doc, now)
            run = self._start_run(doc, now, base_url)
            self._save(doc)
            return self.store.get(T_OPERATION, run["opId"])

    def cancel_run(self, doc: dict) -> dict:
        """POST cancel: Canceling for a while, then Canceled; OperationNotAllowed unless Running."""
        with self._lock:
            now = self.now()
            run = doc["runs"][-1] if doc["runs"] else None
            if run is None or builds.last_run_status(run, now)["runState"] != "Running":
                raise not_allowed("cancel", doc, now)
            op = self._new_operation("cancel", doc, runId=run["id"])
            run["canceledAt"] = now
            run["cancelDoneAt"] = now + builds.CANCEL_SECONDS / self.scale()
            run["cancelOpId"] = op["id"]
            self._save(doc)
            return op

    def _start_run(self, doc: dict, start: float, base_url: str) -> dict:
        props = doc["resource"]["properties"]
        location = normalize_location(doc["resource"]["location"])
        run_id = str(uuid.uuid4())
        source, build_error = self._resolve_source(props["source"], location)
        access_error, denied = self._run_problems(doc, props, source, location)
        build_error = build_error or access_error
        doc["exactVersion"] = source.get("exactVersion")
        forced = self.store.get(T_FORCED, doc["key"])
        if forced:
            self.store.delete(T_FORCED, doc["key"])
        account = doc["storageAccount"]
        op = self._new_operation("run", doc, start=start, runId=run_id)
        blob_path = f"packerlogs/{run_id}/customization.log"
        # In Azure the message names the blob's URL in the staging account; with Azurite, its URL there.
        storage = self._service("storage")
        log_url = storage.blob_url(account, f"{run_id}/customization.log") if storage is not None else None
        if log_url is not None:
            storage.provision(account, staging_id=doc["staging"]["id"], location=location,
                              tags=doc["resource"].get("tags"), now=iso_at(start))
        run = builds.plan_run(
            props, run_id=run_id, op_id=op["id"], start=start, scale=self.scale(), forced=forced,
            distributor_errors={**self._distributor_errors(props, location), **denied}, build_error=build_error,
            log_url=log_url or f"{base_url}/_emulator/blobs/{account}/{blob_path}",
            log_path=(f"{doc['staging']['id']}/providers/Microsoft.Storage/storageAccounts/{account}/blobServices/"
                      f"default/containers/{blob_path}"))
        run["source"] = source
        run["snapshot"] = {name: copy.deepcopy(props.get(name)) for name in
                           ("customize", "validate", "distribute", "optimize", "buildTimeoutInMinutes")}
        doc["runs"] = [*doc["runs"], run][-RUN_HISTORY:]
        return run

    def _resolve_source(self, source: dict, location: str) -> tuple[dict, dict | None]:
        """What the build starts from (exactVersion, OS type, generation), or the Building error."""
        compute = self._service("compute")
        resolved: dict[str, Any] = {"osType": "Linux", "hyperVGeneration": "V1", "exactVersion": None, "id": None}
        if compute is None:
            return resolved, None
        kind = source["type"]
        if kind == "PlatformImage":
            image = compute.platform_image(location, source["publisher"], source["offer"], source["sku"],
                                           source["version"])
            if image is None:
                return resolved, {"code": "InternalOperationError",
                                  "message": f"failed to get latest image version: the platform image "
                                             f"{source['publisher']}:{source['offer']}:{source['sku']}:"
                                             f"{source['version']} was not found in {location}. Artifact: VMImage "
                                             "was not found. (CODE: 404)"}
            resolved.update(osType=image.get("osType") or "Linux", hyperVGeneration=image.get("hyperVGeneration"),
                            exactVersion=image["version"])
        elif kind == "ManagedImage":
            image = compute.managed_image(source["imageId"])
            if image is None:
                return resolved, {"code": "InternalOperationError",
                                  "message": f"Build (Managed Image) step failed: the source managed image "
                                             f"'{source['imageId']}' was not found. StatusCode=404 -- "
                                             "ResourceNotFound"}
            resolved.update(osType=image.get("osType"), hyperVGeneration=image.get("hyperVGeneration"),
                            id=image["id"])
        else:
            version = compute.gallery_image_version(source["imageVersionId"])
            if version is None:
                return resolved, {"code": "InternalOperationError",
                                  "message": f"Build (Shared Image Version) step failed for Image Version "
                                             f"{source['imageVersionId']}: StatusCode=404 -- ResourceNotFound"}
            definition = compute.gallery_image(version["id"].rsplit("/versions/", 1)[0]) or {}
            resolved.update(osType=definition.get("osType") or "Linux",
                            hyperVGeneration=definition.get("hyperVGeneration") or "V1",
                            exactVersion=version["id"], id=version["id"])
        return resolved, None

    def unavailable_regions(self) -> list[str]:
        return (self.store.get("emulator", "unavailable_regions") or {}).get("regions", [])

    def set_unavailable_regions(self, regions: list[str]) -> list[str]:
        cleaned = sorted({normalize_location(region) for region in regions})
        self.store.put("emulator", "unavailable_regions", {"regions": cleaned})
        return cleaned

    def _distributor_errors(self, props: dict, location: str) -> dict[int, str]:
        """Distributors that will fail, decided when the run starts (unavailable regions)."""
        unavailable = set(self.unavailable_regions())
        errors: dict[int, str] = {}
        for index, item in enumerate(props["distribute"]):
            regions = _target_regions(item, location)
            blocked = [region for region in regions if normalize_location(region) in unavailable]
            if not blocked:
                continue
            if item["type"] == "SharedImage":
                errors[index] = (f"Error publishing MDI to Azure Compute Gallery: replication to region "
                                 f"'{blocked[0]}' failed: the region is currently unavailable for this subscription "
                                 "(AllocationFailed).")
            else:
                errors[index] = (f"Error creating the {item['type']} output in region '{blocked[0]}': the region is "
                                 "currently unavailable for this subscription (AllocationFailed).")
        return errors

    def _pending_distributors(self, run: dict) -> list[dict]:
        """Distributor steps not yet applied that will still happen (before a stop or a cancel)."""
        cutoff = builds.run_end(run)
        if run.get("canceledAt") is not None:
            cutoff = run["canceledAt"]
        if run.get("stop"):
            cutoff = min(cutoff, run["stop"]["at"])
        return [step for step in run["steps"]
                if step["kind"] == "distributor" and str(step["index"]) not in run["distributed"]
                and step["end"] <= cutoff]

    def _advance_run(self, doc: dict, run: dict, now: float) -> None:
        for step in self._pending_distributors(run):
            if step["end"] <= now:
                run["distributed"][str(step["index"])] = self._distribute(doc, run, step)
        if builds.run_end(run) <= now:
            run["done"] = True
            end = builds.run_end(run)
            state = builds.final_state(run)
            if state == "Canceled":
                self._finish_operation(run["opId"], "Canceled", end)
                self._finish_operation(run.get("cancelOpId"), "Succeeded", end)
            elif state == "Succeeded":
                self._finish_operation(run["opId"], "Succeeded", end)
            else:
                self._finish_operation(run["opId"], "Failed", end, builds.operation_error(run))

    def _distribute(self, doc: dict, run: dict, step: dict) -> dict:
        """Publish one distributor's output through the compute service; its run output appears."""
        item = run["snapshot"]["distribute"][step["index"]]
        planned_error = run["distributorErrors"].get(str(step["index"]))
        if planned_error:
            return {"ok": False, "error": planned_error}
        location = normalize_location(doc["resource"]["location"])
        try:
            artifact = self._publish(doc, run, item, location)
        except ArmError as error:
            return {"ok": False, "error": f"Error publishing the {item['type']} output: {error.message}"}
        output = {
            "id": f"{doc['resource']['id']}/runOutputs/{item['runOutputName']}",
            "name": item["runOutputName"],
            "type": f"{TEMPLATE_TYPE}/runOutputs",
            "properties": {**artifact, "provisioningState": "Succeeded"},
        }
        self.store.put(T_RUN_OUTPUT, output["id"], output)
        return {"ok": True, **artifact}

    def _publish(self, doc: dict, run: dict, item: dict, location: str) -> dict:
        compute = self._service("compute")
        source = run["source"]
        tags = item.get("artifactTags") or {}
        if item["type"] == "VHD":
            uri = item.get("uri") or f"https://{doc['storageAccount']}.blob.core.windows.net/vhds/{uuid.uuid4()}.vhd"
            return {"artifactUri": uri}
        if compute is None:
            raise ArmError(500, "InternalOperationError", "The compute service is not available.")
        if item["type"] == "ManagedImage":
            image = compute.create_managed_image(item["imageId"], item["location"], source["osType"],
                                                 source["hyperVGeneration"], tags=tags)
            return {"artifactId": image["id"]}
        definition_id, _, version = item["galleryImageId"].partition("/versions/")
        if not version:
            version = self._next_version(compute, definition_id, item, source)
        definition = compute.gallery_image(definition_id)
        regions = [{"name": normalize_location(r["name"]), "replicaCount": r.get("replicaCount") or 1,
                    "storageAccountType": r.get("storageAccountType") or "Standard_LRS"}
                   for r in item.get("targetRegions") or []] or [
            {"name": normalize_location(name), "replicaCount": 1,
             "storageAccountType": item.get("storageAccountType") or "Standard_LRS"}
            for name in item.get("replicationRegions") or [location]]
        created = compute.create_gallery_image_version(
            f"{definition_id}/versions/{version}", (definition or {}).get("location") or location, regions,
            bool(item.get("excludeFromLatest")), tags=tags, source=source.get("id"))
        return {"artifactId": created["id"]}

    @staticmethod
    def _next_version(compute, definition_id: str, item: dict, source: dict) -> str:
        versioning = item.get("versioning") or {"scheme": "Latest"}
        exact = source.get("exactVersion") or ""
        if versioning.get("scheme") == "Source":
            # The source's own version when it is already x.y.z (a platform image version
            # a.b.c, or a gallery version id ending in /versions/a.b.c).
            candidate = exact.rsplit("/", 1)[-1]
            parts = candidate.split(".")
            if len(parts) == 3 and all(part.isdigit() for part in parts):
                return ".".join(str(int(part) % 2_147_483_647) for part in parts)
        return compute.next_gallery_version(definition_id, int(versioning.get("major", -1)))

    # -- forced failures -------------------------------------------------------------------
    def force_failure(self, doc: dict, sub_state: str, code: str | None, message: str | None) -> dict:
        if sub_state not in builds.SUB_STATES:
            raise ArmError(400, "InvalidParameter",
                           f"sub_state must be one of {', '.join(builds.SUB_STATES)}; got '{sub_state}'.")
        forced = {"template": doc["resource"]["id"], "sub_state": sub_state, "code": code, "message": message}
        self.store.put(T_FORCED, doc["key"], forced)
        return forced

    def forced_failures(self) -> list[dict]:
        return self.store.list(T_FORCED)

    def clear_forced_failures(self) -> None:
        for item in self.store.list(T_FORCED):
            self.store.delete(T_FORCED, item["template"])

    # -- run outputs -----------------------------------------------------------------------
    def run_outputs(self, doc: dict) -> list[dict]:
        return self.store.list(T_RUN_OUTPUT, doc["key"] + "/runoutputs/")

    def run_output(self, doc: dict, name: str) -> dict:
        output = self.store.get(T_RUN_OUTPUT, f"{doc['key']}/runoutputs/{name}")
        if output is None:
            raise not_found(doc["resourceGroup"], f"{TEMPLATE_TYPE}/{doc['name']}/runOutputs/{name}")
        return output

    # -- triggers --------------------------------------------------------------------------
    def triggers(self, doc: dict) -> list[dict]:
        return self.store.list(T_TRIGGER, doc["key"] + "/triggers/")

    def trigger(self, doc: dict, name: str) -> dict:
        found = self.store.get(T_TRIGGER, f"{doc['key']}/triggers/{name}")
        if found is None:
            raise not_found(doc["resourceGroup"], f"{TEMPLATE_TYPE}/{doc['name']}/triggers/{name}")
        return found

    def put_trigger(self, doc: dict, name: str, body: dict, *, claims: dict | None) -> tuple[dict, dict | None]:
        """Create a SourceImage trigger (§2.12 rules); returns (trigger, operation or None when it existed)."""
        with self._lock:
            existing = self.store.get(T_TRIGGER, f"{doc['key']}/triggers/{name}")
            if existing is not None:
                return existing, None
            state = _provisioning_state(doc)
            if state != "Succeeded":
                raise ArmError(409, "OperationNotAllowed",
                               f"Operation {TEMPLATE_TYPE}/triggers/write is not allowed in provisioning state: "
                               f"{state.lower()}. Triggers can only be created for image templates that provisioned "
                               "successfully.")
            others = self.triggers(doc)
            if others:
                raise ArmError(409, "Conflict",
                               f"Only one trigger of kind 'SourceImage' is allowed per image template; trigger "
                               f"'{others[0]['name']}' already exists.")
            _check_trigger_source(doc["resource"]["properties"])
            now = iso_at(self.now())
            trigger = {
                "id": f"{doc['resource']['id']}/triggers/{name}",
                "name": name,
                "type": f"{TEMPLATE_TYPE}/triggers",
                "properties": {"kind": body["properties"]["kind"],
                               "status": {"code": "Healthy", "message": "", "time": now},
                               "provisioningState": "Succeeded"},
                "systemData": _system_data(claims, now),
            }
            self.store.put(T_TRIGGER, trigger["id"], trigger)
            return trigger, self._new_operation("trigger-put", doc, status="Succeeded")

    def delete_trigger(self, doc: dict, name: str) -> dict | None:
        """Delete a trigger; returns the (completed) operation, or None when there was none."""
        with self._lock:
            if not self.store.delete(T_TRIGGER, f"{doc['key']}/triggers/{name}"):
                return None
            return self._new_operation("trigger-delete", doc, status="Succeeded")

    # -- build logs ------------------------------------------------------------------------
    def blob(self, account: str, container: str, path: str) -> str | None:
        """The text of packerlogs/<runGuid>/customization.log or validation.log, as far as the
        build has progressed; None when there is no such blob."""
        if container.lower() != "packerlogs":
            return None
        index = self.store.get(T_ACCOUNT, account)
        doc = self.store.get(T_TEMPLATE, index["template"]) if index else None
        if doc is None or "/" not in path:
            return None
        run_id, _, file_name = path.partition("/")
        run = next((r for r in doc["runs"] if r["id"].lower() == run_id.lower()), None)
        if run is None:
            return None
        now = self.now()
        if file_name == "customization.log":
            return builds.customization_log(run, run["snapshot"], doc["name"], now)
        if file_name == "validation.log":
            return builds.validation_log(run, run["snapshot"], now)
        return None

    def log_blobs(self, key: str, skip: set[str]) -> list[tuple[str, str, bool]]:
        """(blob name in packerlogs, text at now, final) for each log of the template's runs,
        leaving out the names in `skip`; final once the run is over and its text can no longer
        change. The staging storage writer copies these into Azurite."""
        doc = self.store.get(T_TEMPLATE, key)
        if doc is None:
            return []
        now = self.now()
        found = []
        for run in doc["runs"]:
            final = bool(run["done"])
            name = f"{run['id']}/customization.log"
            if name not in skip:
                found.append((name, builds.customization_log(run, run["snapshot"], doc["name"], now), final))
            name = f"{run['id']}/validation.log"
            if name not in skip:
                text = builds.validation_log(run, run["snapshot"], now)
                if text is not None:
                    found.append((name, text, final))
        return found

    def blobs(self, account: str, container: str) -> list[str] | None:
        index = self.store.get(T_ACCOUNT, account)
        doc = self.store.get(T_TEMPLATE, index["template"]) if index else None
        if doc is None or container.lower() != "packerlogs":
            return None
        names = []
        for run in doc["runs"]:
            names.append(f"{run['id']}/customization.log")
            if (run["snapshot"].get("validate") or {}).get("inVMValidations"):
                names.append(f"{run['id']}/validation.log")
        return names

    def log_urls(self, doc: dict) -> list[dict]:
        """The template's runs, oldest first, with the URLs of their logs (live while running:
        in Azure the portal would list the staging storage account's packerlogs container)."""
        runs = []
        for run in doc["runs"]:
            entry = {"runId": run["id"], "startTime": iso_at(run["start"]), "customizationLog": run["logUrl"]}
            if (run["snapshot"].get("validate") or {}).get("inVMValidations"):
                entry["validationLog"] = run["logUrl"].rsplit("/", 1)[0] + "/validation.log"
            runs.append(entry)
        return runs

    def internal(self, doc: dict) -> dict:
        """The stored document with the plan of each run, for debugging through the control API."""
        return {**doc, "rendered": self.render(doc)}


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------

def iso_at(seconds: float) -> str:
    return builds.iso_at(seconds)


def _error(code: str, message: str) -> dict:
    return {"provisioningErrorCode": code, "message": message}


def _security_problem(code: str, what: str, features: dict) -> dict | None:
    security = features.get("SecurityType") or features.get("securityType")
    if security in UNSUPPORTED_SECURITY_TYPES:
        return _error(code, f"The source {what} has security type '{security}', which Image Builder does not support "
                            "as a source. Use a source whose security type is Standard, TrustedLaunchSupported or "
                            f"ConfidentialVMSupported. For more troubleshooting steps go to {TROUBLESHOOTING}.")
    return None


def _target_regions(item: dict, location: str) -> list[str]:
    if item["type"] == "SharedImage":
        regions = [r["name"] for r in item.get("targetRegions") or []] or list(item.get("replicationRegions") or [])
        return regions or [location]
    if item["type"] == "ManagedImage":
        return [item["location"]]
    return []


def _output_resource(item: dict, location: str) -> dict | None:
    """The resource a distributor creates, as Azure Policy sees it (VHDs are blobs: none)."""
    tags = item.get("artifactTags") or {}
    if item["type"] == "ManagedImage":
        return {"id": item["imageId"], "name": item["imageId"].rsplit("/", 1)[-1], "type": "Microsoft.Compute/images",
                "location": normalize_location(item.get("location") or location), "tags": tags}
    if item["type"] == "SharedImage":
        target = item["galleryImageId"]
        return {"id": target, "name": target.rsplit("/", 1)[-1], "type": "Microsoft.Compute/galleries/images/versions",
                "location": location, "tags": tags}
    return None


def _storage_account_name() -> str:
    return secrets.token_hex(12)  # 24 lower-case hex characters, a valid storage account name


def _with_identity_ids(identity: dict) -> dict:
    """Fill principalId/clientId of each user-assigned identity (stable per identity id)."""
    identity = copy.deepcopy(identity)
    for key in list(identity.get("userAssignedIdentities") or {}):
        identity["userAssignedIdentities"][key] = identity_ids(key)
    return identity


def _who(claims: dict | None) -> tuple[str, str]:
    claims = claims or {}
    user = claims.get("upn") or claims.get("preferred_username")
    if user:
        return user, "User"
    return claims.get("appid") or claims.get("azp") or claims.get("oid") or "unknown", "Application"


def _system_data(claims: dict | None, at: str) -> dict:
    who, kind = _who(claims)
    return {"createdBy": who, "createdByType": kind, "createdAt": at, **_modified_by(claims, at)}


def _modified_by(claims: dict | None, at: str) -> dict:
    who, kind = _who(claims)
    return {"lastModifiedBy": who, "lastModifiedByType": kind, "lastModifiedAt": at}


def _check_trigger_source(props: dict) -> None:
    """A SourceImage trigger needs a 'latest' source and no fixed gallery version (DOC-TRIG)."""
    source = props["source"]
    where = "Trigger.properties"
    latest = (source["type"] == "PlatformImage" and source.get("version", "").lower() == "latest") or (
        source["type"] == "SharedImageVersion" and source["imageVersionId"].lower().endswith("/versions/latest"))
    if not latest:
        raise ArmError(400, "ValidationFailed",
                       f"Validation failed: '{where}': A SourceImage trigger needs the image template source to be a "
                       "platform image with version 'latest' or a gallery image version ending in '/versions/latest'.")
    for item in props["distribute"]:
        if item["type"] != "SharedImage":
            continue
        if "/versions/" in item["galleryImageId"].lower():
            raise ArmError(400, "ValidationFailed",
                           f"Validation failed: '{where}': A SourceImage trigger cannot be used when a distribution "
                           "target names an explicit gallery image version.")
        if source["type"] == "SharedImageVersion" and source["imageVersionId"].lower().rsplit("/versions/", 1)[0] == \
                item["galleryImageId"].lower():
            raise ArmError(400, "ValidationFailed",
                           f"Validation failed: '{where}': The source and the distribution target of a SourceImage "
                           "trigger must be different gallery image definitions.")

