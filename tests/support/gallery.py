"""Gallery image versions in the emulator, made through the real SDK as a build would leave them."""

from __future__ import annotations

from azure.mgmt.compute import models

from tests.support.emulator import SUBSCRIPTION_ID

RG = "goldsmith-galleries"
GALLERY = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RG}/providers/Microsoft.Compute/galleries/release_gallery"
SOURCE = (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/goldsmith-images/providers/Microsoft.Compute/"
          "images/ubuntu-2204-gen2-base")
PATCH = "GalleryImageVersions_Update"


def make_gallery_versions(emulator, count: int, *, first: int = 0, exclude_from_latest: bool = False) -> list[str]:
    """`count` versions of one definition, replicated, as a build would have left them."""
    emulator.set_time_scale(20000)
    compute = emulator.compute_client()
    compute.galleries.begin_create_or_update(RG, "release_gallery", models.Gallery(location="eastus")).result()
    compute.gallery_images.begin_create_or_update(RG, "release_gallery", "web", models.GalleryImage(
        location="eastus", properties=models.GalleryImageProperties(
            os_type="Linux", os_state="Generalized", hyper_v_generation="V2",
            identifier=models.GalleryImageIdentifier(publisher="Contoso", offer="web", sku="web")))).result()
    ids = []
    for index in range(first, first + count):
        name = f"1.0.{index}"
        compute.gallery_image_versions.begin_create_or_update(RG, "release_gallery", "web", name,
                                                              models.GalleryImageVersion(
            location="eastus", properties=models.GalleryImageVersionProperties(
                publishing_profile=models.GalleryImageVersionPublishingProfile(
                    target_regions=[models.TargetRegion(name="eastus")], exclude_from_latest=exclude_from_latest),
                storage_profile=models.GalleryImageVersionStorageProfile(
                    source=models.GalleryArtifactVersionFullSource(id=SOURCE))))).result()
        ids.append(f"{GALLERY}/images/web/versions/{name}")
    return ids


def profile_of(emulator, version_id: str) -> dict:
    """The publishing profile as the SDK reads it (ARM's camelCase keys)."""
    compute = emulator.compute_client()
    parts = version_id.split("/")
    return compute.gallery_image_versions.get(RG, parts[8], parts[10], parts[12]).as_dict()["properties"][
        "publishingProfile"]
