"""Image Builder's staging storage: the storage account in each staging resource group, and the
writer that copies every run's build logs into Azurite as the run advances.

Accounts (the design, see emulator/README.md "Staging storage and Azurite"): Azurite knows a fixed
pool of accounts (emulator/storage/azurite.py). When a template is created the emulator claims
one pool account for it, starting at a position derived from the template id and taking the
next free one, and records the claim; when a run starts the account appears as
Microsoft.Storage/storageAccounts in the staging group, with `primaryEndpoints.blob` pointing at
Azurite's path-style URL for it. So the portal does exactly what it does on Azure: list the
storage accounts of `exactStagingResourceGroup`, take `primaryEndpoints.blob`, open container
`packerlogs`, list `<runFolder>/…` and read `customization.log` by byte range. Deleting the
template releases the account and deletes its `packerlogs` container (Azure deletes the staging
group and its account); a claimed account's container is emptied first, since Azurite outlives
emulator resets.

Writing: the log text is a pure function of a run's plan and the clock (imagebuilder/builds.py)
and only ever grows, so each log is an **append blob**: `sync()` renders every unfinished log for
`now` and appends the bytes Azurite does not have yet. It runs on a background thread every half
second (wall clock) and at once after the control API moves the clock, so a test that advances
the clock reads the new lines straight away. Azurite is reached with a bearer token the emulator
mints from its own Entra (`iss` https://sts.windows.net/<tenant>/, `aud` https://storage.azure.com).

Without `--azurite` none of this is active: no account is claimed or reported and nothing is written.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import TYPE_CHECKING

from emulator.core import ArmError
from emulator.resources.backend import DEFAULT_TENANT
from emulator.storage.azurite import POOL_SIZE, pool_accounts
from emulator.storage.blobs import BlobClient, BlobError

if TYPE_CHECKING:
    from emulator.core.pipeline import App

log = logging.getLogger(__name__)

T_ACCOUNT = "st_account"  # account name -> {"name", "template": template key, "resource": ARM document | None}
CONTAINER = "packerlogs"
ACCOUNT_TYPE = "Microsoft.Storage/storageAccounts"
STORAGE_AUDIENCE = "https://storage.azure.com"
WRITER_CLIENT_ID = "azure-vm-image-builder"  # the appid on the tokens the emulator uses for itself
SYNC_SECONDS = 0.5


class Storage:
    """app.services["storage"]: staging accounts and the log writer (inactive without an endpoint)."""

    def __init__(self, app: App, *, endpoint: str | None = None, pool: int = POOL_SIZE, ca_path: str | None = None):
        self.app = app
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.pool = pool_accounts(pool) if self.endpoint else []
        self._pool_set = set(self.pool)
        self.client = BlobClient(self.endpoint, ca_path=ca_path, token=self._token) if self.endpoint else None
        self._lock = threading.RLock()
        self._written: dict[str, int] = {}  # "account/run/file" -> bytes Azurite holds
        self._complete: set[str] = set()  # blobs of finished runs, fully written
        self._token_value = ""
        self._token_expires = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.endpoint is not None

    # -- accounts --------------------------------------------------------------------------
    def claim(self, template_key: str) -> str | None:
        """A free pool account for the template (None when inactive or the pool is used up).

        The search starts at a position derived from the template id, so the same template in
        the same state of the pool gets the same account. The container is emptied first: it
        may hold the logs of a template from before an emulator reset.
        """
        if not self.enabled:
            return None
        with self._lock:
            start = int(hashlib.sha256(template_key.encode()).hexdigest(), 16) % len(self.pool)
            for offset in range(len(self.pool)):
                name = self.pool[(start + offset) % len(self.pool)]
                if self.app.store.get(T_ACCOUNT, name) is None:
                    self.app.store.put(T_ACCOUNT, name, {"name": name, "template": template_key, "resource": None})
                    self._forget(name)
                    self._call(self.client.delete_container, name, CONTAINER)
                    return name
            log.warning("all %d staging storage accounts are in use: template %s gets no build logs",
                        len(self.pool), template_key)
            return None

    def provision(self, name: str, *, staging_id: str, location: str, tags: dict | None, now: str) -> dict | None:
        """Show the claimed account in the staging group (when a run starts) and create its
        `packerlogs` container; returns the ARM document (None for an account not in the pool)."""
        if name not in self._pool_set:
            return None
        with self._lock:
            record = self.app.store.get(T_ACCOUNT, name)
            if record is None:
                return None
            if record["resource"] is None or record["resource"]["id"].rsplit("/providers/", 1)[0] != staging_id:
                record["resource"] = self._document(name, staging_id, location, tags, now)
                self.app.store.put(T_ACCOUNT, name, record)
            self._call(self.client.create_container, name, CONTAINER)
            return record["resource"]

    def release(self, name: str) -> None:
        """The template is gone: the account leaves its staging group and its logs are deleted."""
        if name not in self._pool_set:
            return
        with self._lock:
            self.app.store.delete(T_ACCOUNT, name)
            self._forget(name)
            self._call(self.client.delete_container, name, CONTAINER)

    def drop_resource_group(self, subscription: str, resource_group: str) -> None:
        """Resource-group delete hook: accounts shown in that group disappear with their logs
        (the claim stays with its template, which shows the account again at its next run)."""
        prefix = f"/subscriptions/{subscription}/resourcegroups/{resource_group}/providers/".lower()
        with self._lock:
            for record in self.app.store.list(T_ACCOUNT):
                resource = record.get("resource")
                if resource and resource["id"].lower().startswith(prefix):
                    record["resource"] = None
                    self.app.store.put(T_ACCOUNT, record["name"], record)
                    self._forget(record["name"])
                    self._call(self.client.delete_container, record["name"], CONTAINER)

    def accounts(self, subscription: str, resource_group: str | None = None) -> list[dict]:
        """The ARM documents of the accounts shown in a subscription (or one of its groups)."""
        prefix = f"/subscriptions/{subscription}/resourcegroups/".lower()
        if resource_group is not None:
            prefix += f"{resource_group}/providers/".lower()
        found = []
        for record in self.app.store.list(T_ACCOUNT):
            resource = record.get("resource")
            if resource and resource["id"].lower().startswith(prefix):
                # Azurite may have moved since the account was recorded (another port after a restart).
                resource["properties"]["primaryEndpoints"]["blob"] = f"{self.endpoint}/{resource['name']}/"
                found.append(resource)
        return sorted(found, key=lambda resource: resource["name"])

    def account(self, subscription: str, resource_group: str, name: str) -> dict:
        for resource in self.accounts(subscription, resource_group):
            if resource["name"] == name.lower():
                return resource
        raise ArmError(404, "ResourceNotFound",
                       f"The Resource '{ACCOUNT_TYPE}/{name}' under resource group '{resource_group}' was not found. "
                       "For more details please go to https://aka.ms/ARMResourceNotFoundFix")

    def generic_resources(self, subscription: str, resource_group: str | None) -> list[dict]:
        return [{key: resource[key] for key in ("id", "name", "type", "location", "tags", "sku", "kind")}
                for resource in self.accounts(subscription, resource_group)]

    def blob_url(self, name: str, blob: str) -> str | None:
        """Azurite's URL of a blob in the account's packerlogs container (None outside the pool)."""
        if name not in self._pool_set:
            return None
        return f"{self.endpoint}/{name}/{CONTAINER}/{blob}"

    def _document(self, name: str, staging_id: str, location: str, tags: dict | None, now: str) -> dict:
        endpoint = f"{self.endpoint}/{name}/"
        return {
            "id": f"{staging_id}/providers/{ACCOUNT_TYPE}/{name}", "name": name, "type": ACCOUNT_TYPE,
            "location": location, "tags": dict(tags or {}),
            "sku": {"name": "Standard_LRS", "tier": "Standard"}, "kind": "StorageV2",
            "properties": {
                "provisioningState": "Succeeded", "creationTime": now, "primaryLocation": location,
                "statusOfPrimary": "available", "accessTier": "Hot", "supportsHttpsTrafficOnly": True,
                "minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": False, "allowSharedKeyAccess": False,
                # Azurite serves only blobs; Azure would list queue, table, file, dfs and web too.
                "primaryEndpoints": {"blob": endpoint},
                "encryption": {"keySource": "Microsoft.Storage",
                               "services": {"blob": {"enabled": True, "keyType": "Account"}}},
            },
        }

    # -- writing the logs ------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer thread (once; only when an endpoint is configured)."""
        if not self.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="staging-log-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(SYNC_SECONDS):
            try:
                self.sync()
            except Exception:  # the writer must outlive any one failure; the next tick retries
                log.exception("writing build logs to Azurite failed")

    def sync(self) -> None:
        """Bring every unfinished log in Azurite up to the text rendered for the clock's `now`."""
        imagebuilder = self.app.services.get("imagebuilder")
        if not self.enabled or imagebuilder is None:
            return
        imagebuilder.settle()  # distributor results first: a line must never appear behind later ones
        with self._lock:
            for record in self.app.store.list(T_ACCOUNT):
                if record.get("resource") is None:
                    continue
                name = record["name"]
                skip = {key.split("/", 1)[1] for key in self._complete if key.startswith(name + "/")}
                for blob, text, final in imagebuilder.log_blobs(record["template"], skip):
                    if not self._write(name, blob, text.encode()):
                        return  # Azurite is not answering: try again at the next tick
                    if final:
                        self._complete.add(f"{name}/{blob}")

    def _write(self, account: str, blob: str, data: bytes) -> bool:
        key = f"{account}/{blob}"
        try:
            written = self._written.get(key)
            if written is None:
                existing = self.client.read(account, CONTAINER, blob)
                if existing is not None and data.startswith(existing):
                    written = len(existing)
                elif data:
                    if existing is not None:  # not ours (an older emulator state): start it again
                        self.client.delete_blob(account, CONTAINER, blob)
                    self._create(account, blob)
                    written = 0
                else:
                    return True  # nothing to show yet (validation.log before validation starts)
            if len(data) > written:
                self.client.append(account, CONTAINER, blob, data[written:])
                written = len(data)
            self._written[key] = written
            self._warned = False
            return True
        except (BlobError, OSError) as error:
            self._written.pop(key, None)  # read it back next time: an append may have half-happened
            if not self._warned:
                log.warning("cannot write %s to Azurite at %s: %s", key, self.endpoint, error)
                self._warned = True
            return False

    def _create(self, account: str, blob: str) -> None:
        try:
            self.client.create_append_blob(account, CONTAINER, blob)
        except BlobError as error:
            if error.status != 404:
                raise
            self.client.create_container(account, CONTAINER)  # deleted behind our back: make it again
            self.client.create_append_blob(account, CONTAINER, blob)

    def _forget(self, account: str) -> None:
        prefix = account + "/"
        for key in [key for key in self._written if key.startswith(prefix)]:
            del self._written[key]
        self._complete = {key for key in self._complete if not key.startswith(prefix)}

    def on_reset(self) -> None:
        with self._lock:
            self._written.clear()
            self._complete.clear()

    def _call(self, method, *args) -> None:
        """A container call that must not fail the ARM request it serves (Azurite may be down)."""
        try:
            method(*args)
        except (BlobError, OSError) as error:
            log.warning("Azurite at %s: %s", self.endpoint, error)

    def _token(self) -> str:
        """A storage token from the emulator's own Entra, renewed five minutes before it expires."""
        if time.time() > self._token_expires - 300:
            token, claims = self.app.services["entra"].issue_access_token(
                client_id=WRITER_CLIENT_ID, tenant=DEFAULT_TENANT, audience=STORAGE_AUDIENCE)
            self._token_value, self._token_expires = token, float(claims["exp"])
        return self._token_value
