"""Microsoft.Compute, the image catalog: Marketplace images, galleries, managed images.

Only the look-ups the portal's wizard and Image Builder need (aib-reference §3.3): the
Marketplace tree publisher -> offer -> sku -> version with each version's generation,
architecture, features (SecurityType...), plan and deprecation status; gallery image
definitions and versions; managed images. Entries come from the seed catalog, the control API
(POST /_emulator/catalog/...) and Image Builder's run outputs (create_managed_image,
create_gallery_image_version).

Storage keys (kind: key, case-insensitive):
  vmimage: location/publisher/offer/sku/version            (the catalog record, see platform_image)
  gallery: sub/rg/gallery                                  (ARM JSON)
  galleryimage: sub/rg/gallery/definition                  (ARM JSON)
  galleryimageversion: sub/rg/gallery/definition/version   (ARM JSON)
  image: sub/rg/name                                       (ARM JSON of a managed image)
"""

from __future__ import annotations

import re
from typing import Any

from emulator.compute import schema
from emulator.core import ArmError
from emulator.core.clock import iso
from emulator.core.lro import ClockOperations
from emulator.resources import locations
from emulator.resources.backend import normalize_location

# Versions azure-mgmt-compute 39.0.0 sends (2026-04-01 for VM images and managed images,
# 2026-03-03 for galleries) and the published ones before them.
COMPUTE_API_VERSIONS = (
    "2015-06-15", "2016-03-30", "2016-04-30-preview", "2017-03-30", "2017-12-01", "2018-04-01", "2018-06-01",
    "2018-10-01", "2019-03-01", "2019-07-01", "2019-12-01", "2020-06-01", "2020-12-01", "2021-03-01",
    "2021-04-01", "2021-07-01", "2021-11-01", "2022-03-01", "2022-08-01", "2022-11-01", "2023-03-01",
    "2023-07-01", "2023-09-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-04-01", "2025-11-01",
    "2026-04-01",
)
GALLERY_API_VERSIONS = (
    "2018-06-01", "2019-03-01", "2019-07-01", "2019-12-01", "2020-09-30", "2021-07-01", "2021-10-01",
    "2022-01-03", "2022-03-03", "2022-08-03", "2023-07-03", "2024-03-03", "2025-03-03", "2026-03-03",
)

_PROVIDER = r"/providers/Microsoft\.Compute"
_GALLERY_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Compute/galleries/"
    r"(?P<gallery>[^/]+)(?:/images/(?P<image>[^/]+)(?:/versions/(?P<version>[^/]+))?)?/?$", re.IGNORECASE)
_IMAGE_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Compute/images/"
    r"(?P<name>[^/]+)/?$", re.IGNORECASE)
_GALLERY_VERSION_NAME = re.compile(r"^\d+\.\d+\.\d+$")

# Simulated seconds gallery LROs take (divided by the time scale, like everything else).
GALLERY_SECONDS = {"create": 20, "update": 10, "delete": 20}
DEFINITION_SECONDS = {"create": 15, "update": 10, "delete": 20}
# A version replicates to its first target region in `replicate` seconds and to each further
# region `stagger` seconds later; its create (or a target-region change) lasts until the last one.
VERSION_SECONDS = {"replicate": 300, "stagger": 120, "update": 10, "delete": 60}


def version_key(version: str) -> tuple:
    """Order image versions as Azure does: dotted parts compared as numbers."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in version.split("."))


def display_name(location: str) -> str:
    """Gallery APIs answer region display names in targetRegions and replication summaries."""
    return locations.display_name(location)


def not_found(resource_type: str, name: str, resource_group: str) -> ArmError:
    """ARM's 404 for a resource in a resource group."""
    return ArmError(404, "ResourceNotFound",
                    f"The Resource '{resource_type}/{name}' under resource group '{resource_group}' was not found. "
                    "For more details please go to https://aka.ms/ARMResourceNotFoundFix")


def _vm_image_not_found() -> ArmError:
    return ArmError(404, "NotFound", "Artifact: VMImage was not found.")


def _features_list(features: Any) -> list[dict]:
    """Accept {name: value} or ARM's [{name, value}] and answer ARM's list."""
    if not features:
        return []
    if isinstance(features, dict):
        return [{"name": name, "value": str(value)} for name, value in features.items()]
    return [dict(item) for item in features]


def _features_dict(features: list[dict] | None) -> dict[str, str]:
    return {item["name"]: item.get("value") for item in features or []}


def parse_gallery_id(resource_id: str) -> dict[str, str]:
    """Split a gallery, definition or version id; ArmError 400 when it is not one."""
    found = _GALLERY_ID.match(resource_id or "")
    if not found:
        raise ArmError(400, "InvalidParameter", f"'{resource_id}' is not a valid gallery resource id.")
    return {key: value for key, value in found.groupdict().items() if value}


def parse_image_id(resource_id: str) -> dict[str, str]:
    found = _IMAGE_ID.match(resource_id or "")
    if not found:
        raise ArmError(400, "InvalidParameter", f"'{resource_id}' is not a valid managed image id.")
    return found.groupdict()


class Compute:
    """The catalog backend (app.services["compute"]). Look-ups return None when absent."""

    def __init__(self, app):
        self.app = app
        self.operations = ClockOperations(app, "computeoperation")

    @property
    def store(self):
        return self.app.store

    # -- Marketplace ----------------------------------------------------------------------------

    def add_platform_image(self, entry: dict) -> dict:
        """Add or replace a Marketplace image version from a catalog record (see platform_image)."""
        missing = [name for name in ("location", "publisher", "offer", "sku", "version") if not entry.get(name)]
        if missing:
            raise ArmError(400, "InvalidParameter", f"Missing catalog fields: {', '.join(missing)}.")
        record = {
            "location": normalize_location(entry["location"]),
            "publisher": entry["publisher"],
            "offer": entry["offer"],
            "sku": entry["sku"],
            "version": entry["version"],
            "hyperVGeneration": entry.get("hyperVGeneration") or "V1",
            "architecture": entry.get("architecture") or "x64",
            "features": dict(entry.get("features") or {}),
            "plan": entry.get("plan") or None,
            "osType": entry.get("osType") or _guess_os(entry["publisher"]),
            "imageDeprecationStatus": _deprecation_status(entry.get("imageDeprecationStatus")),
        }
        record["osDiskSizeGB"] = int(entry.get("osDiskSizeGB") or (127 if record["osType"] == "Windows" else 30))
        self.store.put("vmimage", self._vm_key(record), record)
        return record

    @staticmethod
    def _vm_key(record: dict) -> str:
        return "/".join(record[name] for name in ("location", "publisher", "offer", "sku", "version"))

    def platform_versions(self, location: str, publisher: str, offer: str, sku: str, *,
                          include_deprecated: bool = False) -> list[dict]:
        """The SKU's versions, oldest first; Deprecated ones only when asked for."""
        prefix = f"{normalize_location(location)}/{publisher}/{offer}/{sku}/"
        records = [record for record in self.store.list("vmimage", prefix)
                   if include_deprecated or record["imageDeprecationStatus"].get("imageState") != "Deprecated"]
        return sorted(records, key=lambda record: version_key(record["version"]))

    def platform_image(self, location: str, publisher: str, offer: str, sku: str, version: str) -> dict | None:
        """The catalog record of a Marketplace image version, or None.

        "latest" resolves to the newest listed (not Deprecated) version. The record is
        {"location","publisher","offer","sku","version","hyperVGeneration","architecture",
        "features": {name: value}, "plan": None | {"name","product","publisher"}, "osType",
        "osDiskSizeGB", "imageDeprecationStatus"}.
        """
        if version.lower() == "latest":
            versions = self.platform_versions(location, publisher, offer, sku)
            return versions[-1] if versions else None
        return self.store.get("vmimage", f"{normalize_location(location)}/{publisher}/{offer}/{sku}/{version}")

    def _catalog(self, location: str) -> list[dict]:
        return self.store.list("vmimage", f"{normalize_location(location)}/")

    def publishers(self, location: str) -> list[str]:
        return _distinct(record["publisher"] for record in self._catalog(location))

    def offers(self, location: str, publisher: str) -> list[str]:
        prefix = f"{normalize_location(location)}/{publisher}/"
        return _distinct(record["offer"] for record in self.store.list("vmimage", prefix))

    def skus(self, location: str, publisher: str, offer: str) -> list[str]:
        prefix = f"{normalize_location(location)}/{publisher}/{offer}/"
        return _distinct(record["sku"] for record in self.store.list("vmimage", prefix))

    # -- galleries ------------------------------------------------------------------------------

    def ensure_gallery(self, subscription: str, resource_group: str, name: str, location: str) -> dict:
        """The gallery, created (with its resource group) when missing."""
        key = f"{subscription}/{resource_group}/{name}"
        found = self._doc("gallery", key)
        if found:
            return found
        resources = self.app.services["resources"]
        group = resources.resource_group(subscription, resource_group)
        if group is None:
            group = resources.create_resource_group(subscription, resource_group, location)
        gallery = {
            "id": f"{group['id']}/providers/Microsoft.Compute/galleries/{name}",
            "name": name,
            "type": "Microsoft.Compute/galleries",
            "location": normalize_location(location),
            "tags": {},
            "properties": {
                "description": "",
                "identifier": {"uniqueName": f"{subscription}-{name.upper()}"},
                "provisioningState": "Succeeded",
            },
        }
        self.store.put("gallery", key, gallery)
        return gallery

    def add_gallery_image(self, entry: dict) -> dict:
        """Add or replace a gallery image definition (its gallery and group appear with it)."""
        parts = parse_gallery_id(entry.get("id", ""))
        if "image" not in parts or "version" in parts:
            raise ArmError(400, "InvalidParameter", f"'{entry.get('id')}' is not a gallery image definition id.")
        location = normalize_location(entry.get("location") or "eastus")
        gallery = self.ensure_gallery(parts["sub"], parts["rg"], parts["gallery"], location)
        os_type = entry.get("osType") or "Linux"
        definition = {
            "id": f"{gallery['id']}/images/{parts['image']}",
            "name": parts["image"],
            "type": "Microsoft.Compute/galleries/images",
            "location": location,
            "tags": dict(entry.get("tags") or {}),
            "properties": {
                "osType": os_type,
                "osState": entry.get("osState") or "Generalized",
                "hyperVGeneration": entry.get("hyperVGeneration") or "V1",
                "architecture": entry.get("architecture") or "x64",
                "identifier": entry.get("identifier") or {
                    "publisher": "Goldsmith", "offer": parts["gallery"], "sku": parts["image"]},
                "features": _features_list(entry.get("features")),
                "recommended": {"vCPUs": {"min": 1, "max": 16}, "memory": {"min": 1, "max": 32}},
                "provisioningState": "Succeeded",
            },
        }
        if entry.get("description"):
            definition["properties"]["description"] = entry["description"]
        if entry.get("purchasePlan"):
            definition["properties"]["purchasePlan"] = dict(entry["purchasePlan"])
        self.store.put("galleryimage", _gallery_key(parts), definition)
        return definition

    def gallery_image_arm(self, definition_id: str) -> dict | None:
        return self._doc("galleryimage", _gallery_key(parse_gallery_id(definition_id)))

    def gallery_image(self, definition_id: str) -> dict | None:
        """{"id","location","osType","osState","hyperVGeneration","architecture","features": {name: value}}."""
        try:
            definition = self.gallery_image_arm(definition_id)
        except ArmError:
            return None
        if definition is None:
            return None
        props = definition["properties"]
        return {
            "id": definition["id"],
            "name": definition["name"],
            "location": definition["location"],
            "osType": props["osType"],
            "osState": props["osState"],
            "hyperVGeneration": props.get("hyperVGeneration") or "V1",
            "architecture": props.get("architecture") or "x64",
            "features": _features_dict(props.get("features")),
            "identifier": props.get("identifier"),
            "purchasePlan": props.get("purchasePlan"),
        }

    def _definition_versions(self, parts: dict[str, str]) -> list[dict]:
        prefix = f"{parts['sub']}/{parts['rg']}/{parts['gallery']}/{parts['image']}/"
        return sorted(self._docs("galleryimageversion", prefix), key=lambda version: version_key(version["name"]))

    def create_gallery_image_version(self, version_id: str, location: str, target_regions: list[dict],
                                     exclude_from_latest: bool = False, tags: dict | None = None,
                                     source: str | None = None) -> dict:
        """Publish a gallery image version (Image Builder's SharedImage output, or a test's).

        target_regions items are {"name", "regionalReplicaCount" | "replicaCount", "storageAccountType"};
        empty means the definition's region. Returns ARM JSON. Raises ArmError 404 when the
        definition does not exist, 400 for a malformed version name, 409 when the version exists.
        """
        parts = parse_gallery_id(version_id)
        if "version" not in parts:
            raise ArmError(400, "InvalidParameter", f"'{version_id}' is not a gallery image version id.")
        if not _GALLERY_VERSION_NAME.match(parts["version"]):
            raise ArmError(400, "InvalidParameter",
                           f"The gallery image version name '{parts['version']}' is invalid. It must follow the "
                           "format <MajorVersion>.<MinorVersion>.<Patch>, each a 32-bit integer.",
                           target="galleryImageVersionName")
        definition = self._doc("galleryimage", _gallery_key({**parts, "version": ""}))
        if definition is None:
            raise not_found("Microsoft.Compute/galleries", f"{parts['gallery']}/images/{parts['image']}", parts["rg"])
        key = _gallery_key(parts)
        if self._doc("galleryimageversion", key):
            raise ArmError(409, "Conflict", f"Gallery image version '{parts['version']}' already exists.")
        version = self._version_document(definition, parts["version"], location, target_regions,
                                         exclude_from_latest, tags, source)
        self.store.put("galleryimageversion", key, version)
        return version

    def _version_document(self, definition: dict, name: str, location: str | None, target_regions: list[dict],
                          exclude_from_latest: bool, tags: dict | None, source: str | None) -> dict:
        location = normalize_location(location or definition["location"])
        regions = [{
            "name": display_name(region["name"]),
            "regionalReplicaCount": int(region.get("regionalReplicaCount") or region.get("replicaCount") or 1),
            "storageAccountType": region.get("storageAccountType") or "Standard_LRS",
        } for region in target_regions or []] or [
            {"name": display_name(location), "regionalReplicaCount": 1, "storageAccountType": "Standard_LRS"}]
        windows = definition["properties"]["osType"] == "Windows"
        return {
            "id": f"{definition['id']}/versions/{name}",
            "name": name,
            "type": "Microsoft.Compute/galleries/images/versions",
            "location": location,
            "tags": dict(tags or {}),
            "properties": {
                "publishingProfile": {
                    "targetRegions": regions,
                    "replicaCount": 1,
                    "excludeFromLatest": bool(exclude_from_latest),
                    "publishedDate": iso(self.app.clock.now()),
                    "storageAccountType": "Standard_LRS",
                    "replicationMode": "Full",
                },
                "storageProfile": {
                    "osDiskImage": {"sizeInGB": 127 if windows else 30, "hostCaching": "ReadWrite"},
                    **({"source": {"id": source}} if source else {}),
                },
                "safetyProfile": {"allowDeletionOfReplicatedLocations": True, "reportedForPolicyViolation": False},
                "provisioningState": "Succeeded",
            },
        }

    def gallery_image_version_arm(self, version_id: str) -> dict | None:
        parts = parse_gallery_id(version_id)
        if "version" not in parts:
            return None
        if parts["version"].lower() == "latest":
            candidates = [version for version in self._definition_versions(parts)
                          if not version["properties"]["publishingProfile"].get("excludeFromLatest")]
            return candidates[-1] if candidates else None
        return self._doc("galleryimageversion", _gallery_key(parts))

    def gallery_image_version(self, version_id: str) -> dict | None:
        """{"id","name","location","targetRegions":[{"name","regionalReplicaCount","storageAccountType"}],
        "excludeFromLatest","publishedDate","source","tags"}; ".../versions/latest" is the newest
        version not excluded from latest. None when absent."""
        try:
            version = self.gallery_image_version_arm(version_id)
        except ArmError:
            return None
        if version is None:
            return None
        profile = version["properties"]["publishingProfile"]
        return {
            "id": version["id"],
            "name": version["name"],
            "location": version["location"],
            "targetRegions": [{**region, "name": normalize_location(region["name"])}
                              for region in profile["targetRegions"]],
            "excludeFromLatest": profile["excludeFromLatest"],
            "publishedDate": profile["publishedDate"],
            "source": (version["properties"]["storageProfile"].get("source") or {}).get("id"),
            "tags": version.get("tags") or {},
        }

    def next_gallery_version(self, definition_id: str, major: int = -1) -> str:
        """The version Image Builder's "Latest" scheme would publish next (aib-reference §2.6).

        One patch above the highest existing version (within `major` when it is >= 0): with
        versions up to 2.1.0, major -1 -> 2.1.1, major 1 -> 1.2.1 (highest 1.x is 1.2.0).
        With nothing to follow: 1.0.0 when major is unset, M.0.0 for major M >= 1, 0.0.1 for major 0.
        """
        parts = parse_gallery_id(definition_id)
        prefix = f"{parts['sub']}/{parts['rg']}/{parts['gallery']}/{parts['image']}/"
        # Keys only: a thousand builds publishing at once must not each parse every version.
        numbers = [tuple(int(piece) for piece in key.rsplit("/", 1)[1].split("."))
                   for key in self.store.keys("galleryimageversion", prefix)]
        if major >= 0:
            numbers = [number for number in numbers if number[0] == major]
        if numbers:
            top = max(numbers)
            return f"{top[0]}.{top[1]}.{top[2] + 1}"
        if major < 0:
            return "1.0.0"
        return f"{major}.0.0" if major > 0 else "0.0.1"

    # -- gallery writes (PUT, PATCH, DELETE with LROs) -------------------------------------------
    #
    # A written resource carries "_emulator" (never rendered): {"state": "Creating"|"Updating",
    # "until": when provisioning ends, "deleting": when it is gone, "replication": {region:
    # [start, end]}}; provisioningState and replication progress are computed from the clock on
    # every read (render), and a resource whose delete has ended is dropped when next read.

    def operation(self, subscription: str, op_id: str) -> dict:
        return self.operations.poll(subscription, op_id)

    def _doc(self, kind: str, key: str) -> dict | None:
        doc = self.store.get(kind, key)
        if doc is not None and self._gone(kind, doc):
            return None
        return doc

    def _docs(self, kind: str, prefix: str) -> list[dict]:
        return [doc for doc in self.store.list(kind, prefix) if not self._gone(kind, doc)]

    def _gone(self, kind: str, doc: dict) -> bool:
        deleting = (doc.get("_emulator") or {}).get("deleting")
        if deleting is None or self.app.clock.now().timestamp() < deleting:
            return False
        self.store.delete(kind, _key_from_id(doc["id"]))
        return True

    def render(self, doc: dict, *, replication: bool = False) -> dict:
        """A stored resource as ARM answers it (provisioningState from the clock)."""
        state = doc.get("_emulator") or {}
        body = {key: value for key, value in doc.items() if key != "_emulator"}
        now = self.app.clock.now().timestamp()
        provisioning = "Succeeded"
        if state.get("deleting") is not None:
            provisioning = "Deleting"
        elif state.get("until") is not None and now < state["until"]:
            provisioning = state.get("state") or "Creating"
        body["properties"] = {**body["properties"], "provisioningState": provisioning}
        if replication:
            body["properties"]["replicationStatus"] = _replication_status(doc, now)
        return body

    def _begin(self, kind: str, key: str, doc: dict, state: str, seconds: float, until: float | None = None) -> dict:
        """Save doc with its provisioning state and start the operation that ends with it."""
        now = self.app.clock.now().timestamp()
        op_seconds = max(seconds, ((until or now) - now) * self.app.clock.time_scale)
        op = self.operations.start(subscription=doc["id"].split("/")[2], location=doc["location"],
                                   seconds=op_seconds, resource=doc["id"])
        doc["_emulator"] = {**(doc.get("_emulator") or {}), "state": state, "until": op["until"]}
        self.store.put(kind, key, doc)
        return op

    def _delete(self, kind: str, key: str, doc: dict, seconds: float) -> dict:
        op = self.operations.start(subscription=doc["id"].split("/")[2], location=doc["location"],
                                   seconds=seconds, resource=doc["id"])
        doc["_emulator"] = {**(doc.get("_emulator") or {}), "deleting": op["until"]}
        self.store.put(kind, key, doc)
        return op

    def _parent(self, kind: str, key: str, name: str) -> dict:
        parent = self._doc(kind, key)
        if parent is None or (parent.get("_emulator") or {}).get("deleting") is not None:
            raise ArmError(404, "ParentResourceNotFound",
                           f"Can not perform requested operation on nested resource. Parent resource '{name}' not found.")
        return parent

    def _nested(self, kind: str, prefix: str) -> None:
        children = self._docs(kind, prefix)
        if children:
            nested = children[0]["id"].split("/providers/", 1)[1]
            raise ArmError(409, "CannotDeleteResource",
                           "Cannot delete resource while nested resources exist. Some existing nested resource IDs "
                           f"include: '{nested}'. Please delete all nested resources before deleting this resource.")

    @staticmethod
    def _same_location(existing: dict, location: str, resource_group: str) -> None:
        if normalize_location(existing["location"]) != location:
            raise ArmError(409, "InvalidResourceLocation",
                           f"The resource '{existing['name']}' already exists in location '{existing['location']}' in "
                           f"resource group '{resource_group}'. A resource with the same name cannot be created in "
                           f"location '{location}'. Please select a new resource name.")

    # galleries

    def list_galleries(self, subscription: str, resource_group: str | None = None) -> list[dict]:
        prefix = f"{subscription}/{resource_group}/" if resource_group else f"{subscription}/"
        return [self.render(doc) for doc in self._docs("gallery", prefix)]

    def get_gallery(self, subscription: str, resource_group: str, name: str) -> dict:
        return self.render(self._require("gallery", (subscription, resource_group, name)))

    def _require(self, kind: str, names: tuple[str, ...]) -> dict:
        self.app.services["resources"].require_resource_group(names[0], names[1])
        doc = self._doc(kind, "/".join(names))
        if doc is None:
            path = "/images/".join(names[2:4]) + (f"/versions/{names[4]}" if len(names) == 5 else "")
            raise not_found("Microsoft.Compute/galleries", path, names[1])
        return doc

    def create_or_update_gallery(self, subscription: str, resource_group: str, name: str, body: Any) -> tuple[dict, int, dict]:
        """Galleries_CreateOrUpdate: (the gallery, 201 created | 200 updated, the operation)."""
        group = self.app.services["resources"].require_resource_group(subscription, resource_group)
        schema.check_name(name, schema.GALLERY_NAME, schema.GALLERY_NAME_RULE, "galleryName")
        body = schema.body_object(body, "gallery")
        location = schema.require_location(body)
        props = schema.properties_of(body, "gallery")
        key = f"{subscription}/{resource_group}/{name}"
        doc = self._doc("gallery", key)
        if doc is not None:
            self._same_location(doc, location, resource_group)
            doc["tags"] = dict(body.get("tags") or {})
            doc["properties"]["description"] = str(props.get("description") or "")
            op = self._begin("gallery", key, doc, "Updating", GALLERY_SECONDS["update"])
            return self.render(doc), 200, op
        doc = {
            "id": f"{group['id']}/providers/Microsoft.Compute/galleries/{name}",
            "name": name,
            "type": "Microsoft.Compute/galleries",
            "location": location,
            "tags": dict(body.get("tags") or {}),
            "properties": {
                "description": str(props.get("description") or ""),
                "identifier": {"uniqueName": f"{subscription}-{name.upper()}"},
                "provisioningState": "Creating",
            },
        }
        op = self._begin("gallery", key, doc, "Creating", GALLERY_SECONDS["create"])
        return self.render(doc), 201, op

    def update_gallery(self, subscription: str, resource_group: str, name: str, body: Any) -> tuple[dict, dict]:
        """Galleries_Update (PATCH): description and tags."""
        doc = self._require("gallery", (subscription, resource_group, name))
        body = schema.body_object(body, "gallery")
        props = schema.properties_of(body, "gallery")
        if body.get("tags") is not None:
            doc["tags"] = dict(body["tags"])
        if props.get("description") is not None:
            doc["properties"]["description"] = str(props["description"])
        op = self._begin("gallery", _key_from_id(doc["id"]), doc, "Updating", GALLERY_SECONDS["update"])
        return self.render(doc), op

    def delete_gallery(self, subscription: str, resource_group: str, name: str) -> dict | None:
        """Galleries_Delete: the operation, or None when there is nothing to delete (204)."""
        self.app.services["resources"].require_resource_group(subscription, resource_group)
        key = f"{subscription}/{resource_group}/{name}"
        doc = self._doc("gallery", key)
        if doc is None:
            return None
        self._nested("galleryimage", key + "/")
        return self._delete("gallery", key, doc, GALLERY_SECONDS["delete"])

    # gallery image definitions

    def list_gallery_images(self, subscription: str, resource_group: str, gallery: str) -> list[dict]:
        self._require("gallery", (subscription, resource_group, gallery))
        return [self.render(doc) for doc in self._docs("galleryimage", f"{subscription}/{resource_group}/{gallery}/")]

    def get_gallery_image(self, subscription: str, resource_group: str, gallery: str, name: str) -> dict:
        return self.render(self._require("galleryimage", (subscription, resource_group, gallery, name)))

    def create_or_update_gallery_image(self, subscription: str, resource_group: str, gallery: str, name: str,
                                       body: Any, api_version: str) -> tuple[dict, int, dict]:
        """GalleryImages_CreateOrUpdate: (the definition, 201 | 200, the operation)."""
        self.app.services["resources"].require_resource_group(subscription, resource_group)
        parent = self._parent("gallery", f"{subscription}/{resource_group}/{gallery}", gallery)
        schema.check_name(name, schema.IMAGE_NAME, schema.IMAGE_NAME_RULE, "galleryImageName")
        body = schema.body_object(body, "galleryImage")
        location = schema.require_location(body)
        props = schema.properties_of(body, "galleryImage")
        key = f"{subscription}/{resource_group}/{gallery}/{name}"
        doc = self._doc("galleryimage", key)
        if doc is not None:
            self._same_location(doc, location, resource_group)
            schema.definition_changes(doc["properties"], props)
            kept = {field: doc["properties"][field] for field in schema.DEFINITION_IMMUTABLE
                    if field in doc["properties"]}
            doc["properties"] = {**kept, **schema.mutable_definition_properties(props)}
            doc["tags"] = dict(body.get("tags") or {})
            op = self._begin("galleryimage", key, doc, "Updating", DEFINITION_SECONDS["update"])
            return self.render(doc), 200, op
        cleaned = schema.new_definition_properties(props, api_version)
        self._unique_identifier(f"{subscription}/{resource_group}/{gallery}/", name, cleaned["identifier"], gallery)
        doc = {
            "id": f"{parent['id']}/images/{name}",
            "name": name,
            "type": "Microsoft.Compute/galleries/images",
            "location": location,
            "tags": dict(body.get("tags") or {}),
            "properties": {**cleaned, "provisioningState": "Creating"},
        }
        op = self._begin("galleryimage", key, doc, "Creating", DEFINITION_SECONDS["create"])
        return self.render(doc), 201, op

    def _unique_identifier(self, prefix: str, name: str, identifier: dict, gallery: str) -> None:
        wanted = tuple(identifier[part].lower() for part in ("publisher", "offer", "sku"))
        for other in self._docs("galleryimage", prefix):
            theirs = other["properties"].get("identifier") or {}
            if other["name"].lower() != name.lower() and tuple(
                    str(theirs.get(part, "")).lower() for part in ("publisher", "offer", "sku")) == wanted:
                raise ArmError(409, "Conflict",
                               f"Gallery image definition '{other['name']}' in gallery '{gallery}' already has the "
                               f"identifier (publisher: '{identifier['publisher']}', offer: '{identifier['offer']}', "
                               f"sku: '{identifier['sku']}'). The identifier must be unique within a gallery.",
                               target="galleryImage.properties.identifier")

    def update_gallery_image(self, subscription: str, resource_group: str, gallery: str, name: str,
                             body: Any) -> tuple[dict, dict]:
        """GalleryImages_Update (PATCH): only the mutable fields may change."""
        doc = self._require("galleryimage", (subscription, resource_group, gallery, name))
        body = schema.body_object(body, "galleryImage")
        props = schema.properties_of(body, "galleryImage")
        schema.definition_changes(doc["properties"], props)
        doc["properties"].update(schema.mutable_definition_properties(props))
        if body.get("tags") is not None:
            doc["tags"] = dict(body["tags"])
        op = self._begin("galleryimage", _key_from_id(doc["id"]), doc, "Updating", DEFINITION_SECONDS["update"])
        return self.render(doc), op

    def delete_gallery_image(self, subscription: str, resource_group: str, gallery: str, name: str) -> dict | None:
        self.app.services["resources"].require_resource_group(subscription, resource_group)
        key = f"{subscription}/{resource_group}/{gallery}/{name}"
        doc = self._doc("galleryimage", key)
        if doc is None:
            return None
        self._nested("galleryimageversion", key + "/")
        return self._delete("galleryimage", key, doc, DEFINITION_SECONDS["delete"])

    # gallery image versions

    def list_gallery_image_versions(self, subscription: str, resource_group: str, gallery: str, image: str) -> list[dict]:
        self._require("galleryimage", (subscription, resource_group, gallery, image))
        found = self._docs("galleryimageversion", f"{subscription}/{resource_group}/{gallery}/{image}/")
        return [self.render(doc) for doc in sorted(found, key=lambda version: version_key(version["name"]))]

    def get_gallery_image_version(self, subscription: str, resource_group: str, gallery: str, image: str,
                                  name: str, *, replication: bool = False) -> dict:
        doc = self._require("galleryimageversion", (subscription, resource_group, gallery, image, name))
        return self.render(doc, replication=replication)

    def create_or_update_gallery_image_version(self, subscription: str, resource_group: str, gallery: str, image: str,
                                               name: str, body: Any) -> tuple[dict, int, dict]:
        """GalleryImageVersions_CreateOrUpdate: (the version, 201 | 200, the operation). The LRO
        lasts until every target region has replicated."""
        self.app.services["resources"].require_resource_group(subscription, resource_group)
        definition = self._parent("galleryimage", f"{subscription}/{resource_group}/{gallery}/{image}", image)
        schema.check_version_name(name)
        body = schema.body_object(body, "galleryImageVersion")
        location = schema.require_location(body)
        props = schema.properties_of(body, "galleryImageVersion")
        publishing = props.get("publishingProfile") or {}
        storage = props.get("storageProfile") or {}
        key = f"{subscription}/{resource_group}/{gallery}/{image}/{name}"
        doc = self._doc("galleryimageversion", key)
        if doc is not None:
            self._same_location(doc, location, resource_group)
            self._version_changes(doc, publishing, storage)
            doc["tags"] = dict(body.get("tags") or {})
            return (*self._publish(key, doc, publishing, location, "Updating", replace=True),)
        source = self._version_source(storage, definition)
        doc = self._version_document(definition, name, location, [], False, body.get("tags"), source)
        profile = doc["properties"]["publishingProfile"]
        profile["storageAccountType"] = schema.one_of(
            publishing.get("storageAccountType") or "Standard_LRS", schema.STORAGE_TYPES,
            "galleryImageVersion.properties.publishingProfile.storageAccountType")
        profile["replicationMode"] = schema.one_of(
            publishing.get("replicationMode") or "Full", schema.REPLICATION_MODES,
            "galleryImageVersion.properties.publishingProfile.replicationMode")
        safety = props.get("safetyProfile") or {}
        if safety.get("allowDeletionOfReplicatedLocations") is not None:
            doc["properties"]["safetyProfile"]["allowDeletionOfReplicatedLocations"] = bool(
                safety["allowDeletionOfReplicatedLocations"])
        return self._publish(key, doc, publishing, location, "Creating", replace=True, status=201)

    def _publish(self, key: str, doc: dict, publishing: dict, location: str, state: str, *, replace: bool,
                 status: int = 200) -> tuple[dict, int, dict]:
        """Apply the publishing profile's mutable fields and (re)start replication where the target
        regions changed; save, start the operation."""
        profile = doc["properties"]["publishingProfile"]
        if replace or publishing.get("targetRegions") is not None or publishing.get("replicaCount") is not None:
            given = dict(publishing)
            if not replace and given.get("targetRegions") is None:
                given["targetRegions"] = profile["targetRegions"]
            given.setdefault("storageAccountType", profile.get("storageAccountType"))
            regions = schema.target_regions(given, location)
            profile["targetRegions"] = regions
            if publishing.get("replicaCount") is not None:
                profile["replicaCount"] = publishing["replicaCount"]
        if publishing.get("excludeFromLatest") is not None or replace:
            profile["excludeFromLatest"] = bool(publishing.get("excludeFromLatest"))
        if publishing.get("endOfLifeDate") is not None:
            profile["endOfLifeDate"] = schema.date_time(
                publishing["endOfLifeDate"], "galleryImageVersion.properties.publishingProfile.endOfLifeDate")
        until = self._replicate(doc)
        op = self._begin("galleryimageversion", key, doc, state,
                         VERSION_SECONDS["update"] if state == "Updating" else 0, until)
        return self.render(doc), status, op

    def _replicate(self, doc: dict) -> float:
        """Give each target region a replication window: unchanged regions keep theirs, new or
        changed ones start now (staggered, as regions replicate one after another). Returns when
        the last one ends."""
        now = self.app.clock.now().timestamp()
        state = doc.setdefault("_emulator", {})
        before = state.get("replication") or {}
        configs = state.get("regionConfig") or {}
        windows: dict[str, list[float]] = {}
        fresh = 0
        for region in doc["properties"]["publishingProfile"]["targetRegions"]:
            name = normalize_location(region["name"])
            config = [region["regionalReplicaCount"], region["storageAccountType"]]
            if name in before and configs.get(name) == config:
                windows[name] = before[name]
            else:
                seconds = VERSION_SECONDS["replicate"] + VERSION_SECONDS["stagger"] * fresh
                windows[name] = [now, now + self.app.clock.scaled(seconds).total_seconds()]
                fresh += 1
            configs[name] = config
        state["replication"] = windows
        state["regionConfig"] = {name: configs[name] for name in windows}
        return max((end for _, end in windows.values()), default=now)

    def _version_changes(self, doc: dict, publishing: dict, storage: dict) -> None:
        base = "galleryImageVersion.properties"
        current = (doc["properties"]["storageProfile"].get("source") or {}).get("id")
        given = ((storage or {}).get("source") or {}).get("id")
        if given and current and given.lower() != current.lower():
            raise schema.property_change(f"{base}.storageProfile.source.id")
        profile = doc["properties"]["publishingProfile"]
        for name in schema.VERSION_PUBLISHING_IMMUTABLE:
            if publishing.get(name) and str(publishing[name]).lower() != str(profile.get(name, "")).lower():
                raise schema.property_change(f"{base}.publishingProfile.{name}")

    def _version_source(self, storage: dict, definition: dict) -> str:
        """storageProfile.source.id: a managed image, a gallery image version or a VM, which must exist
        and match the definition's OS type and generation."""
        path = "galleryImageVersion.properties.storageProfile.source.id"
        source = (storage.get("source") or {}) if isinstance(storage, dict) else {}
        source_id = source.get("id") or source.get("virtualMachineId")
        if not source_id:
            raise schema.missing("galleryImageVersion.properties.storageProfile.source")
        facts = None
        if "/providers/microsoft.compute/images/" in source_id.lower():
            image = self.managed_image(source_id)
            if image:
                facts = (image["osType"], image["hyperVGeneration"])
        elif "/providers/microsoft.compute/galleries/" in source_id.lower():
            version = self.gallery_image_version(source_id)
            if version:
                parent = self.gallery_image(version["id"].rsplit("/versions/", 1)[0]) or {}
                facts = (parent.get("osType"), parent.get("hyperVGeneration"))
        if facts is None:  # unknown, missing, or a VM (the emulator holds no virtual machines)
            raise ArmError(404, "NotFound", f"The source resource '{source_id}' of the gallery image version was "
                           "not found.", target=path)
        props = definition["properties"]
        if facts[0] and facts[0].lower() != props["osType"].lower():
            raise ArmError(400, "InvalidParameter", f"The OS type '{facts[0]}' of the source '{source_id}' does not "
                           f"match the OS type '{props['osType']}' of the gallery image definition.", target=path)
        if facts[1] and facts[1] != props.get("hyperVGeneration", "V1"):
            raise ArmError(400, "InvalidParameter", f"The Hyper-V generation '{facts[1]}' of the source "
                           f"'{source_id}' does not match the Hyper-V generation "
                           f"'{props.get('hyperVGeneration', 'V1')}' of the gallery image definition.", target=path)
        return source_id

    def update_gallery_image_version(self, subscription: str, resource_group: str, gallery: str, image: str,
                                     name: str, body: Any) -> tuple[dict, dict]:
        """GalleryImageVersions_Update (PATCH): excludeFromLatest, endOfLifeDate, targetRegions,
        replicaCount, tags, safetyProfile.allowDeletionOfReplicatedLocations."""
        doc = self._require("galleryimageversion", (subscription, resource_group, gallery, image, name))
        body = schema.body_object(body, "galleryImageVersion")
        props = schema.properties_of(body, "galleryImageVersion")
        publishing = props.get("publishingProfile") or {}
        self._version_changes(doc, publishing, props.get("storageProfile") or {})
        if body.get("tags") is not None:
            doc["tags"] = dict(body["tags"])
        safety = props.get("safetyProfile") or {}
        if safety.get("allowDeletionOfReplicatedLocations") is not None:
            doc["properties"]["safetyProfile"]["allowDeletionOfReplicatedLocations"] = bool(
                safety["allowDeletionOfReplicatedLocations"])
        rendered, _, op = self._publish(_key_from_id(doc["id"]), doc, publishing, doc["location"], "Updating",
                                        replace=False)
        return rendered, op

    def delete_gallery_image_version(self, subscription: str, resource_group: str, gallery: str, image: str,
                                     name: str) -> dict | None:
        self.app.services["resources"].require_resource_group(subscription, resource_group)
        key = f"{subscription}/{resource_group}/{gallery}/{image}/{name}"
        doc = self._doc("galleryimageversion", key)
        if doc is None:
            return None
        return self._delete("galleryimageversion", key, doc, VERSION_SECONDS["delete"])

    # -- managed images -------------------------------------------------------------------------

    def create_managed_image(self, image_id: str, location: str, os_type: str, hyper_v_generation: str,
                             tags: dict | None = None, source: str | None = None) -> dict:
        """Create or replace a managed image (ARM JSON). ArmError 404 when its group is missing."""
        parts = parse_image_id(image_id)
        group = self.app.services["resources"].require_resource_group(parts["sub"], parts["rg"])
        windows = (os_type or "Linux").lower() == "windows"
        image = {
            "id": f"{group['id']}/providers/Microsoft.Compute/images/{parts['name']}",
            "name": parts["name"],
            "type": "Microsoft.Compute/images",
            "location": normalize_location(location),
            "tags": dict(tags or {}),
            "properties": {
                "storageProfile": {
                    "osDisk": {"osType": "Windows" if windows else "Linux", "osState": "Generalized",
                               "diskSizeGB": 127 if windows else 30, "caching": "ReadWrite",
                               "storageAccountType": "Standard_LRS"},
                    "dataDisks": [],
                    "zoneResilient": False,
                },
                "provisioningState": "Succeeded",
                "hyperVGeneration": hyper_v_generation or "V1",
            },
        }
        if source:
            image["properties"]["sourceVirtualMachine"] = {"id": source}
        self.store.put("image", f"{parts['sub']}/{parts['rg']}/{parts['name']}", image)
        return image

    def managed_image_arm(self, image_id: str) -> dict | None:
        try:
            parts = parse_image_id(image_id)
        except ArmError:
            return None
        return self.store.get("image", f"{parts['sub']}/{parts['rg']}/{parts['name']}")

    def managed_image(self, image_id: str) -> dict | None:
        """{"id","name","location","osType","hyperVGeneration","tags"} or None."""
        image = self.managed_image_arm(image_id)
        if image is None:
            return None
        return {
            "id": image["id"],
            "name": image["name"],
            "location": image["location"],
            "osType": image["properties"]["storageProfile"]["osDisk"]["osType"],
            "hyperVGeneration": image["properties"]["hyperVGeneration"],
            "tags": image.get("tags") or {},
        }

    # -- housekeeping ---------------------------------------------------------------------------

    def generic_resources(self, subscription: str, resource_group: str | None) -> list[dict]:
        """Galleries, image definitions, image versions and managed images, as az resource list shows them."""
        prefix = f"{subscription}/{resource_group}/" if resource_group else f"{subscription}/"
        found = []
        for kind in ("gallery", "galleryimage", "galleryimageversion", "image"):
            for document in self.store.list(kind, prefix):
                item = {key: document[key] for key in ("id", "type", "location", "tags") if key in document}
                # Nested resources are named by their path: gallery/definition/1.0.0
                item["name"] = "/".join(document["id"].split("/providers/", 1)[1].split("/")[2::2])
                found.append(item)
        return found

    def drop_resource_group(self, subscription: str, resource_group: str) -> None:
        """Delete every compute resource in a group (the resource group's delete hook)."""
        prefix = f"{subscription}/{resource_group}/"
        for kind in ("galleryimageversion", "galleryimage", "gallery", "image"):
            for document in self.store.list(kind, prefix):
                self.store.delete(kind, _key_from_id(document["id"]))


def _gallery_key(parts: dict[str, str]) -> str:
    names = [parts["sub"], parts["rg"], parts["gallery"], parts.get("image"), parts.get("version")]
    return "/".join(name for name in names if name)


def _key_from_id(resource_id: str) -> str:
    """The store key of a compute resource, from its ARM id."""
    found = _GALLERY_ID.match(resource_id)
    if found:
        return _gallery_key({key: value for key, value in found.groupdict().items() if value})
    parts = parse_image_id(resource_id)
    return f"{parts['sub']}/{parts['rg']}/{parts['name']}"


def _distinct(names) -> list[str]:
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name.lower(), name)
    return list(seen.values())


def _deprecation_status(given: dict | None) -> dict:
    """imageDeprecationStatus as Azure answers it: imageState, scheduledDeprecationTime and
    alternativeOption ({type: None|Offer|Plan, value}) always present (null when not set)."""
    given = dict(given or {})
    state = given.get("imageState") or "Active"
    if state not in ("Active", "ScheduledForDeprecation", "Deprecated"):
        raise ArmError(400, "InvalidParameter", f"Unknown imageState '{state}'.")
    return {"imageState": state, "scheduledDeprecationTime": given.get("scheduledDeprecationTime"),
            "alternativeOption": given.get("alternativeOption")}


def _guess_os(publisher: str) -> str:
    return "Windows" if publisher.lower().startswith("microsoftwindows") else "Linux"


# -- REST rendering ---------------------------------------------------------------------------

def _marketplace_id(subscription: str, location: str, *names: str) -> str:
    """Marketplace ids come back capitalised this way from Azure."""
    labels = ("Publishers", "ArtifactTypes/VMImage/Offers", "Skus", "Versions")
    path = "".join(f"/{label}/{name}" for label, name in zip(labels, names, strict=False))
    return f"/Subscriptions/{subscription}/Providers/Microsoft.Compute/Locations/{location}{path}"


def render_vm_image(record: dict, subscription: str, *, properties: bool) -> dict:
    """A VirtualMachineImage (properties=True) or VirtualMachineImageResource."""
    body: dict[str, Any] = {
        "location": record["location"],
        "name": record["version"],
        "id": _marketplace_id(subscription, record["location"], record["publisher"], record["offer"],
                              record["sku"], record["version"]),
    }
    if not properties:
        return body
    props: dict[str, Any] = {
        "hyperVGeneration": record["hyperVGeneration"],
        "architecture": record["architecture"],
        "replicaType": "Unmanaged",
        "disallowed": {"vmDiskType": "Unmanaged"},
        "automaticOSUpgradeProperties": {"automaticOSUpgradeSupported": False},
        "imageDeprecationStatus": record["imageDeprecationStatus"],
        "osDiskImage": {"operatingSystem": record["osType"], "sizeInGb": record["osDiskSizeGB"]},
        "dataDiskImages": [],
    }
    if record["features"]:
        props["features"] = _features_list(record["features"])
    if record.get("plan"):
        props["plan"] = dict(record["plan"])
    body["properties"] = props
    return body


def _replication_status(doc: dict, now: float) -> dict:
    """$expand=ReplicationStatus: per target region Replicating (progress by the clock) or Completed."""
    windows = (doc.get("_emulator") or {}).get("replication") or {}
    summary = []
    for region in doc["properties"]["publishingProfile"]["targetRegions"]:
        start, end = windows.get(normalize_location(region["name"]), (now, now))
        if now >= end:
            summary.append({"region": region["name"], "state": "Completed", "details": "", "progress": 100})
        else:
            progress = int(100 * (now - start) / (end - start)) if end > start else 0
            summary.append({"region": region["name"], "state": "Replicating", "details": "", "progress": progress})
    done = all(item["state"] == "Completed" for item in summary)
    return {"aggregatedState": "Completed" if done else "InProgress", "summary": summary}
