"""The portal's gallery look-ups (builds.azure) on galleries a user created through the real
azure-mgmt-compute SDK against the emulator (not only on the seeded ones)."""

from __future__ import annotations

from azure.mgmt.compute import models

from builds import azure
from tests.support.emulator import SUBSCRIPTION_ID

RG = "goldsmith-galleries"
GALLERY_ID = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RG}/providers/Microsoft.Compute/galleries/user_gallery"
MANAGED_GEN2 = (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/goldsmith-images/providers/Microsoft.Compute/"
                "images/ubuntu-2204-gen2-base")


def create_definition(compute, name: str, *, generation: str, security_type: str | None) -> None:
    features = [models.GalleryImageFeature(name="SecurityType", value=security_type)] if security_type else None
    compute.gallery_images.begin_create_or_update(RG, "user_gallery", name, models.GalleryImage(
        location="eastus", properties=models.GalleryImageProperties(
            os_type="Linux", os_state="Generalized", hyper_v_generation=generation, features=features,
            identifier=models.GalleryImageIdentifier(publisher="Contoso", offer="user", sku=name)))).result()


def test_it_reads_the_security_type_of_a_definition_a_user_created(azure_emulator):
    compute = azure_emulator.compute_client()
    assert azure.gallery_image(f"{GALLERY_ID}/images/web-tl") is None  # "not found" is never cached
    compute.galleries.begin_create_or_update(RG, "user_gallery", models.Gallery(location="eastus")).result()
    create_definition(compute, "web-tl", generation="V2", security_type="TrustedLaunchSupported")
    create_definition(compute, "web-standard", generation="V1", security_type="Standard")

    trusted = azure.gallery_image(f"{GALLERY_ID}/images/web-tl")
    standard = azure.gallery_image(f"{GALLERY_ID}/images/web-standard")

    assert (trusted.security_type, trusted.hyper_v_generation, trusted.os_type) == (
        "TrustedLaunchSupported", "V2", "Linux")
    assert trusted.gallery == "user_gallery" and trusted.location == "eastus"
    assert (standard.security_type, standard.hyper_v_generation) == ("Standard", "V1")


def test_it_reads_a_version_published_by_the_sdk_as_latest(azure_emulator):
    azure_emulator.set_time_scale(20000)
    compute = azure_emulator.compute_client()
    compute.galleries.begin_create_or_update(RG, "user_gallery", models.Gallery(location="eastus")).result()
    create_definition(compute, "web-tl", generation="V2", security_type="TrustedLaunchSupported")
    compute.gallery_image_versions.begin_create_or_update(RG, "user_gallery", "web-tl", "1.0.0", models.GalleryImageVersion(
        location="eastus", properties=models.GalleryImageVersionProperties(
            publishing_profile=models.GalleryImageVersionPublishingProfile(
                target_regions=[models.TargetRegion(name="eastus"), models.TargetRegion(name="westeurope")]),
            storage_profile=models.GalleryImageVersionStorageProfile(
                source=models.GalleryArtifactVersionFullSource(id=MANAGED_GEN2))))).result()

    version = azure.gallery_image_version(f"{GALLERY_ID}/images/web-tl/versions/latest")

    assert version.name == "1.0.0"
    assert set(version.regions) == {"eastus", "westeurope"}
