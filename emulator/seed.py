"""The seed catalog: resource groups, Marketplace images, galleries, managed images, identities.

Loaded into a new (empty) store at start-up and again after the control API's reset, from
emulator/seed.json or the file given with --seed. The file's sections, all optional:

  resourceGroups:   [{"subscription", "name", "location", "tags"}]
  marketplace:      [{"publisher", "offer", "sku", "hyperVGeneration", "architecture", "features",
                      "plan", "osType", "locations": [...], "versions": [{"version",
                      "imageDeprecationStatus"?}]}]   (one record per location and version)
  galleryImages:    [{"id", "location", "osType", "osState", "hyperVGeneration", "architecture",
                      "features", "versions": [{"version", "targetRegions", "excludeFromLatest"}]}]
  managedImages:    [{"id", "location", "osType", "hyperVGeneration"}]
  principals:       [{"client_id", "secret", "name", "oid", "roles", "redirect_uris"}]
  users:            [{"username", "name", "oid", "roles", "tenant", "description"}]
"""

from __future__ import annotations

import json
from pathlib import Path

DEFAULT_SEED = Path(__file__).with_name("seed.json")
_MARKER = ("seed", "applied")


def is_empty(app) -> bool:
    """True until a seed has been applied to this store (a restart with --data-dir keeps it)."""
    return app.store.get(*_MARKER) is None


def load(path: str | Path | None = None) -> dict:
    with open(path or DEFAULT_SEED, encoding="utf-8") as handle:
        return json.load(handle)


def apply(app) -> None:
    """Load the seed file (app.config.seed_path or emulator/seed.json) into the store."""
    data = load(app.config.seed_path)
    resources = app.services["resources"]
    compute = app.services["compute"]
    entra = app.services["entra"]
    for group in data.get("resourceGroups", []):
        resources.create_resource_group(group["subscription"], group["name"], group["location"], group.get("tags"))
    for entry in data.get("marketplace", []):
        for record in expand_marketplace(entry):
            compute.add_platform_image(record)
    for definition in data.get("galleryImages", []):
        compute.add_gallery_image(definition)
        for version in definition.get("versions", []):
            compute.create_gallery_image_version(f"{definition['id']}/versions/{version['version']}",
                                                 version.get("location") or definition.get("location"),
                                                 version.get("targetRegions") or [],
                                                 bool(version.get("excludeFromLatest")), version.get("tags"))
    for image in data.get("managedImages", []):
        compute.create_managed_image(image["id"], image["location"], image.get("osType") or "Linux",
                                     image.get("hyperVGeneration") or "V1", image.get("tags"))
    for principal in data.get("principals", []):
        entra.add_principal(principal)
    for user in data.get("users", []):
        entra.add_user(user)
    # The reset wiped the signing keys from the store; keep using the same ones so tokens
    # the clients hold stay valid.
    entra.persist_keys()
    app.store.put(*_MARKER, {"source": str(app.config.seed_path or DEFAULT_SEED)})


def expand_marketplace(entry: dict) -> list[dict]:
    """One catalog record per location and version of a seed SKU entry."""
    shared = {key: value for key, value in entry.items() if key not in ("locations", "versions")}
    records = []
    for location in entry.get("locations", ["eastus"]):
        for version in entry.get("versions", []):
            records.append({**shared, **version, "location": location})
    return records
