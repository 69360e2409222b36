"""Gallery writes through azure-mgmt-compute: galleries, image definitions and image versions
created, updated and deleted with their LROs, and Azure's refusals."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.compute import models

from tests.support.emulator import SUBSCRIPTION_ID

RG = "goldsmith-galleries"
SEED_GALLERY = "goldsmith_gallery"
MANAGED_GEN2 = (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/goldsmith-images/providers/Microsoft.Compute/"
                "images/ubuntu-2204-gen2-base")
MANAGED_GEN1 = (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/goldsmith-images/providers/Microsoft.Compute/"
                "images/ubuntu-2204-gen1-base")


@pytest.fixture
def compute(emulator):
    return emulator.compute_client()


def gallery_body(location: str = "eastus", description: str = "team images") -> models.Gallery:
    return models.Gallery(location=location, properties=models.GalleryProperties(description=description))


def definition_body(sku: str = "web", *, generation: str | None = "V2", security_type: str | None = "TrustedLaunchSupported",
                    os_type: str = "Linux", **extra) -> models.GalleryImage:
    features = [models.GalleryImageFeature(name="SecurityType", value=security_type)] if security_type else None
    return models.GalleryImage(location="eastus", properties=models.GalleryImageProperties(
        os_type=os_type, os_state="Generalized", hyper_v_generation=generation, features=features,
        identifier=models.GalleryImageIdentifier(publisher="Contoso", offer="goldsmith", sku=sku), **extra))


def version_body(source: str = MANAGED_GEN2, regions=(("eastus", 1),), **publishing) -> models.GalleryImageVersion:
    return models.GalleryImageVersion(location="eastus", properties=models.GalleryImageVersionProperties(
        publishing_profile=models.GalleryImageVersionPublishingProfile(
            target_regions=[models.TargetRegion(name=name, regional_replica_count=count) for name, count in regions],
            **publishing),
        storage_profile=models.GalleryImageVersionStorageProfile(source=models.GalleryArtifactVersionFullSource(id=source))))


def make_gallery(compute, name: str = "team_gallery"):
    return compute.galleries.begin_create_or_update(RG, name, gallery_body()).result()


def make_definition(compute, name: str = "web", gallery: str = "team_gallery", **kwargs):
    return compute.gallery_images.begin_create_or_update(RG, gallery, name, definition_body(name, **kwargs)).result()


def test_it_creates_a_gallery_with_an_lro(compute):
    gallery = make_gallery(compute)

    assert gallery.provisioning_state == "Succeeded"
    assert gallery.description == "team images"
    assert compute.galleries.get(RG, "team_gallery").identifier.unique_name == f"{SUBSCRIPTION_ID}-TEAM_GALLERY"


def test_the_put_answers_201_creating_with_an_async_operation_and_retry_after(emulator, compute):
    emulator.settings(retry_after=None)  # the default rule: 10 s / time scale, at least 1
    emulator.freeze()
    poller = compute.galleries.begin_create_or_update(RG, "team_gallery", gallery_body(), polling=False)
    initial = poller.polling_method()._initial_response.http_response

    assert initial.status_code == 201
    assert initial.headers["Retry-After"] == "1"
    status_url = initial.headers["Azure-AsyncOperation"]
    assert "/providers/Microsoft.Compute/locations/eastus/capsOperations/" in status_url
    assert compute.galleries.get(RG, "team_gallery").provisioning_state == "Creating"
    first = emulator.http.get(status_url, headers=bearer(emulator), verify=str(emulator.ca_path), timeout=10)
    assert first.json()["status"] == "InProgress"
    assert first.headers["Retry-After"] == "1"

    emulator.advance_simulated(20)
    assert emulator.http.get(status_url, headers=bearer(emulator), verify=str(emulator.ca_path),
                             timeout=10).json()["status"] == "Succeeded"
    assert compute.galleries.get(RG, "team_gallery").provisioning_state == "Succeeded"


def bearer(emulator) -> dict:
    token = emulator.credential().get_token("https://management.azure.com/.default").token
    return {"Authorization": f"Bearer {token}"}


def test_a_second_put_updates_and_patch_changes_the_description(compute):
    make_gallery(compute)

    again = compute.galleries.begin_create_or_update(RG, "team_gallery", gallery_body(description="v2")).result()
    patched = compute.galleries.begin_update(RG, "team_gallery", models.GalleryUpdate(
        properties=models.GalleryProperties(description="patched"), tags={"team": "web"})).result()

    assert again.description == "v2"
    assert patched.description == "patched"
    assert compute.galleries.get(RG, "team_gallery").tags == {"team": "web"}


def test_a_gallery_refuses_another_location_and_a_bad_name(compute):
    make_gallery(compute)
    with pytest.raises(ResourceExistsError) as moved:
        compute.galleries.begin_create_or_update(RG, "team_gallery", gallery_body(location="westus2"))
    with pytest.raises(HttpResponseError) as bad_name:
        compute.galleries.begin_create_or_update(RG, "team-gallery", gallery_body())

    assert moved.value.error.code == "InvalidResourceLocation"
    assert bad_name.value.status_code == 400 and bad_name.value.error.code == "InvalidParameter"


def test_it_creates_a_trusted_launch_gen2_definition(compute):
    make_gallery(compute)

    definition = make_definition(compute, "web")

    assert definition.provisioning_state == "Succeeded"
    assert definition.hyper_v_generation == "V2"
    assert [(item.name, item.value) for item in definition.features] == [("SecurityType", "TrustedLaunchSupported")]
    assert definition.identifier.sku == "web"
    assert [item.name for item in compute.gallery_images.list_by_gallery(RG, "team_gallery")] == ["web"]


def test_new_definitions_default_to_gen2_trusted_launch_supported_since_2025_03_03(compute):
    make_gallery(compute)
    default = make_definition(compute, "plain", generation=None, security_type=None)
    old = compute.gallery_images.begin_create_or_update(
        RG, "team_gallery", "legacy", definition_body("legacy", generation=None, security_type=None),
        api_version="2024-03-03").result()

    assert default.hyper_v_generation == "V2"
    assert [(item.name, item.value) for item in default.features] == [("SecurityType", "TrustedLaunchSupported")]
    assert old.hyper_v_generation == "V1" and not old.features


def test_a_definition_needs_its_gallery_and_the_required_fields(compute):
    with pytest.raises(ResourceNotFoundError) as no_gallery:
        make_definition(compute, "web", gallery="nope")
    make_gallery(compute)
    with pytest.raises(HttpResponseError) as gen1_trusted:
        make_definition(compute, "web", generation="V1", security_type="TrustedLaunchSupported")
    with pytest.raises(HttpResponseError) as bad_security:
        make_definition(compute, "web", security_type="Shielded")

    assert no_gallery.value.error.code == "ParentResourceNotFound"
    assert gen1_trusted.value.status_code == 400
    assert gen1_trusted.value.error.target == "galleryImage.properties.hyperVGeneration"
    assert bad_security.value.error.code == "InvalidParameter"


def test_the_identifier_is_unique_within_a_gallery(compute):
    make_gallery(compute)
    make_definition(compute, "web")
    duplicate = definition_body("web")

    with pytest.raises(ResourceExistsError) as caught:
        compute.gallery_images.begin_create_or_update(RG, "team_gallery", "web-copy", duplicate)

    assert caught.value.error.target == "galleryImage.properties.identifier"
    assert "'web'" in caught.value.error.message
    other_gallery = make_gallery(compute, "other_gallery")
    assert make_definition(compute, "web", gallery=other_gallery.name).provisioning_state == "Succeeded"


@pytest.mark.parametrize(("change", "path"), [
    ({"os_type": "Windows"}, "galleryImage.properties.osType"),
    ({"hyper_v_generation": "V1", "features": []}, "galleryImage.properties.hyperVGeneration"),
    ({"features": [models.GalleryImageFeature(name="SecurityType", value="ConfidentialVMSupported")]},
     "galleryImage.properties.features"),
    ({"identifier": models.GalleryImageIdentifier(publisher="Contoso", offer="goldsmith", sku="other")},
     "galleryImage.properties.identifier"),
])
def test_immutable_definition_fields_cannot_change(compute, change, path):
    make_gallery(compute)
    make_definition(compute, "web")
    body = definition_body("web")
    for name, value in change.items():
        setattr(body.properties, name, value)

    with pytest.raises(ResourceExistsError) as caught:
        compute.gallery_images.begin_create_or_update(RG, "team_gallery", "web", body)

    assert caught.value.status_code == 409
    assert caught.value.error.code == "PropertyChangeNotAllowed"
    assert caught.value.error.message == f"Changing property '{path}' is not allowed."


def test_patch_changes_the_mutable_definition_fields(compute):
    make_gallery(compute)
    make_definition(compute, "web")

    patched = compute.gallery_images.begin_update(RG, "team_gallery", "web", models.GalleryImageUpdate(
        properties=models.GalleryImageProperties(
            os_type="Linux", os_state="Generalized",
            identifier=models.GalleryImageIdentifier(publisher="Contoso", offer="goldsmith", sku="web"),
            description="web servers", eula="none", end_of_life_date="2030-01-01T00:00:00Z",
            recommended=models.RecommendedMachineConfiguration(
                v_cp_us=models.ResourceRange(min=2, max=8))))).result()

    assert patched.description == "web servers"
    assert patched.eula == "none"
    assert patched.end_of_life_date.year == 2030
    assert patched.recommended.v_cp_us.max == 8
    assert patched.hyper_v_generation == "V2"
    with pytest.raises(ResourceExistsError):
        compute.gallery_images.begin_update(RG, "team_gallery", "web", models.GalleryImageUpdate(
            properties=models.GalleryImageProperties(
                os_type="Windows", os_state="Generalized",
                identifier=models.GalleryImageIdentifier(publisher="Contoso", offer="goldsmith", sku="web"))))


def test_it_publishes_a_version_from_a_managed_image_and_replicates_by_the_clock(emulator, compute):
    make_gallery(compute)
    make_definition(compute, "web")
    emulator.freeze()
    poller = compute.gallery_image_versions.begin_create_or_update(
        RG, "team_gallery", "web", "1.0.0", version_body(regions=(("eastus", 2), ("westeurope", 1))))
    emulator.advance_simulated(150)
    halfway = compute.gallery_image_versions.get(RG, "team_gallery", "web", "1.0.0", expand="ReplicationStatus")

    assert halfway.provisioning_state == "Creating"
    assert halfway.replication_status.aggregated_state == "InProgress"
    assert [(item.region, item.state, item.progress) for item in halfway.replication_status.summary] == [
        ("East US", "Replicating", 50), ("West Europe", "Replicating", 35)]

    emulator.advance_simulated(300)
    version = poller.result()
    done = compute.gallery_image_versions.get(RG, "team_gallery", "web", "1.0.0", expand="ReplicationStatus")
    assert version.provisioning_state == "Succeeded"
    assert [(item.name, item.regional_replica_count) for item in version.publishing_profile.target_regions] == [
        ("East US", 2), ("West Europe", 1)]
    assert version.storage_profile.source.id == MANAGED_GEN2
    assert done.replication_status.aggregated_state == "Completed"
    assert {item.progress for item in done.replication_status.summary} == {100}


def test_version_names_and_sources_are_checked(compute):
    make_gallery(compute)
    make_definition(compute, "web")
    versions = compute.gallery_image_versions

    with pytest.raises(HttpResponseError) as bad_name:
        versions.begin_create_or_update(RG, "team_gallery", "web", "1.0", version_body())
    with pytest.raises(HttpResponseError) as too_big:
        versions.begin_create_or_update(RG, "team_gallery", "web", "1.0.4294967296", version_body())
    with pytest.raises(HttpResponseError) as missing_source:
        versions.begin_create_or_update(RG, "team_gallery", "web", "1.0.0", version_body(
            source=MANAGED_GEN2.replace("gen2-base", "nope")))
    with pytest.raises(HttpResponseError) as wrong_generation:
        versions.begin_create_or_update(RG, "team_gallery", "web", "1.0.0", version_body(source=MANAGED_GEN1))
    with pytest.raises(HttpResponseError) as too_many_replicas:
        versions.begin_create_or_update(RG, "team_gallery", "web", "1.0.0", version_body(regions=(("eastus", 101),)))
    with pytest.raises(ResourceNotFoundError) as no_definition:
        versions.begin_create_or_update(RG, "team_gallery", "nope", "1.0.0", version_body())

    assert bad_name.value.error.target == "galleryImageVersionName"
    assert too_big.value.status_code == 400
    assert missing_source.value.status_code == 404
    assert wrong_generation.value.status_code == 400 and "'V1'" in wrong_generation.value.error.message
    assert too_many_replicas.value.error.code == "InvalidParameter"
    assert no_definition.value.error.code == "ParentResourceNotFound"


def test_a_version_can_be_made_from_another_gallery_version(fast_emulator, compute):
    make_gallery(compute)
    make_definition(compute, "web")
    source = (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RG}/providers/Microsoft.Compute/galleries/"
              f"{SEED_GALLERY}/images/ubuntu-gen2-tl/versions/2.1.0")

    version = compute.gallery_image_versions.begin_create_or_update(
        RG, "team_gallery", "web", "0.1.0", version_body(source=source)).result()

    assert version.storage_profile.source.id == source


def test_patch_updates_exclude_from_latest_end_of_life_and_replicas(fast_emulator, compute):
    make_gallery(compute)
    make_definition(compute, "web")
    versions = compute.gallery_image_versions
    versions.begin_create_or_update(RG, "team_gallery", "web", "1.0.0", version_body()).result()

    patched = versions.begin_update(RG, "team_gallery", "web", "1.0.0", models.GalleryImageVersionUpdate(
        properties=models.GalleryImageVersionProperties(
            publishing_profile=models.GalleryImageVersionPublishingProfile(
                exclude_from_latest=True, end_of_life_date="2031-06-30T00:00:00Z",
                target_regions=[models.TargetRegion(name="eastus", regional_replica_count=3),
                                models.TargetRegion(name="westus2")])))).result()

    assert patched.publishing_profile.exclude_from_latest is True
    assert patched.publishing_profile.end_of_life_date.year == 2031
    assert [(item.name, item.regional_replica_count) for item in patched.publishing_profile.target_regions] == [
        ("East US", 3), ("West US 2", 1)]
    with pytest.raises(ResourceExistsError) as source_change:
        versions.begin_update(RG, "team_gallery", "web", "1.0.0", models.GalleryImageVersionUpdate(
            properties=models.GalleryImageVersionProperties(
                publishing_profile=models.GalleryImageVersionPublishingProfile(),
                storage_profile=models.GalleryImageVersionStorageProfile(
                    source=models.GalleryArtifactVersionFullSource(id=MANAGED_GEN1)))))
    assert source_change.value.error.code == "PropertyChangeNotAllowed"


def test_deletes_are_lros_and_parents_with_children_are_refused(fast_emulator, compute):
    make_gallery(compute)
    make_definition(compute, "web")
    compute.gallery_image_versions.begin_create_or_update(RG, "team_gallery", "web", "1.0.0", version_body()).result()

    with pytest.raises(ResourceExistsError) as gallery_refused:
        compute.galleries.begin_delete(RG, "team_gallery")
    with pytest.raises(ResourceExistsError) as definition_refused:
        compute.gallery_images.begin_delete(RG, "team_gallery", "web")

    assert gallery_refused.value.error.code == "CannotDeleteResource"
    assert gallery_refused.value.error.message == (
        "Cannot delete resource while nested resources exist. Some existing nested resource IDs include: "
        "'Microsoft.Compute/galleries/team_gallery/images/web'. Please delete all nested resources before deleting "
        "this resource.")
    assert "'Microsoft.Compute/galleries/team_gallery/images/web/versions/1.0.0'" in definition_refused.value.error.message

    compute.gallery_image_versions.begin_delete(RG, "team_gallery", "web", "1.0.0").result()
    compute.gallery_images.begin_delete(RG, "team_gallery", "web").result()
    compute.galleries.begin_delete(RG, "team_gallery").result()
    with pytest.raises(ResourceNotFoundError):
        compute.galleries.get(RG, "team_gallery")


def test_a_delete_answers_202_then_deleting_until_the_clock_says(emulator, compute):
    make_gallery(compute)
    emulator.freeze()
    poller = compute.galleries.begin_delete(RG, "team_gallery", polling=False)
    initial = poller.polling_method()._initial_response.http_response

    assert initial.status_code == 202
    assert "monitor=true" in initial.headers["Location"]
    assert "Retry-After" in initial.headers
    assert compute.galleries.get(RG, "team_gallery").provisioning_state == "Deleting"
    emulator.advance_simulated(20)
    with pytest.raises(ResourceNotFoundError):
        compute.galleries.get(RG, "team_gallery")
    compute.galleries.begin_delete(RG, "team_gallery").result()  # nothing left: 204


def test_image_builder_distribution_still_publishes_into_a_created_definition(emulator, compute):
    make_gallery(compute)
    make_definition(compute, "web")
    definition_id = (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RG}/providers/Microsoft.Compute/galleries/"
                     "team_gallery/images/web")

    emulator.control("POST", "catalog/gallery-image-versions", {"id": f"{definition_id}/versions/1.0.0"}, expect=201)

    version = compute.gallery_image_versions.get(RG, "team_gallery", "web", "1.0.0", expand="ReplicationStatus")
    assert version.provisioning_state == "Succeeded"
    assert version.replication_status.aggregated_state == "Completed"
