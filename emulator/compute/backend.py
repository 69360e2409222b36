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

from emulator.core import ArmError
from emulator.core.clock import iso
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
            "imageDeprecationStatus": entry.get("imageDeprecationStatus") or {"imageState": "Active"},
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
        found = self.store.get("gallery", key)
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
        return self.store.get("galleryimage", _gallery_key(parse_gallery_id(definition_id)))

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
        return sorted(self.store.list("galleryimageversion", prefix), key=lambda version: version_key(version["name"]))

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
        definition = self.store.get("galleryimage", _gallery_key({**parts, "version": ""}))
        if definition is None:
            raise not_found("Microsoft.Compute/galleries", f"{parts['gallery']}/images/{parts['image']}", parts["rg"])
        key = _gallery_key(parts)
        if self.store.get("galleryimageversion", key):
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
        return self.store.get("galleryimageversion", _gallery_key(parts))

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


def _with_replication(version: dict) -> dict:
    """A version with replicationStatus, as $expand=ReplicationStatus answers (all replicated)."""
    regions = version["properties"]["publishingProfile"]["targetRegions"]
    summary = [{"region": region["name"], "state": "Completed", "details": "", "progress": 100} for region in regions]
    return {**version, "properties": {**version["properties"],
                                      "replicationStatus": {"aggregatedState": "Completed", "summary": summary}}}

