"""Gallery replication on the build page: azure.gallery_version_replication against the
emulator's clock-driven replication, and the status block's fragment (builds/replication.py)."""

from __future__ import annotations

import pytest
from azure.mgmt.compute import models
from django.urls import reverse

from builds import azure
from tests import factories
from tests.support import build_rows
from tests.support.emulator import SUBSCRIPTION_ID

pytestmark = pytest.mark.django_db

RG = "goldsmith-galleries"
DEFINITION = (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RG}/providers/Microsoft.Compute/galleries/"
              "goldsmith_gallery/images/ubuntu-gen2-tl")
MANAGED_GEN2 = (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/goldsmith-images/providers/Microsoft.Compute/"
                "images/ubuntu-2204-gen2-base")


def publish(emulator, version: str, regions=("eastus", "westeurope")) -> str:
    """Start creating a version (as Image Builder's distributor does) on a frozen clock."""
    emulator.compute_client().gallery_image_versions.begin_create_or_update(
        RG, "goldsmith_gallery", "ubuntu-gen2-tl", version, models.GalleryImageVersion(
            location="eastus", properties=models.GalleryImageVersionProperties(
                publishing_profile=models.GalleryImageVersionPublishingProfile(
                    target_regions=[models.TargetRegion(name=region) for region in regions]),
                storage_profile=models.GalleryImageVersionStorageProfile(
                    source=models.GalleryArtifactVersionFullSource(id=MANAGED_GEN2)))), polling=False)
    return f"{DEFINITION}/versions/{version}"


def states(found):
    return [(region.region, region.state, region.progress) for region in found.regions]


def test_replication_follows_the_emulator_clock_region_by_region(azure_emulator):
    azure_emulator.freeze()
    version_id = publish(azure_emulator, "9.0.1")

    found = azure.gallery_version_replication(version_id)
    assert found.aggregated_state == "InProgress"
    assert states(found) == [("eastus", "Replicating", 0), ("westeurope", "Replicating", 0)]

    azure_emulator.advance_simulated(150)  # eastus takes 300 s, westeurope 420 s
    assert states(azure.gallery_version_replication(version_id)) == [
        ("eastus", "Replicating", 50), ("westeurope", "Replicating", 35)]

    azure_emulator.advance_simulated(300)
    done = azure.gallery_version_replication(version_id)
    assert done.aggregated_state == "Completed"
    assert states(done) == [("eastus", "Completed", 100), ("westeurope", "Completed", 100)]
    assert azure.gallery_version_replication(f"{DEFINITION}/versions/9.9.9") is None


def test_the_build_page_shows_each_region_and_refreshes_while_it_replicates(azure_emulator, client, bob, web):
    azure_emulator.freeze()
    gold = factories.make_gold_version()
    build = build_rows.succeeded(gold, requested_by=bob, department=web)
    version_id = publish(azure_emulator, "9.0.2")
    build.outputs.update(artifact_id=version_id)
    client.force_login(bob)
    status = reverse("builds:build-status", args=[build.uuid])

    page = client.get(reverse("builds:build-detail", args=[build.uuid])).content.decode()
    assert 'id="replication"' in page
    assert '<tr data-region="westeurope"><td>westeurope</td><td>Replicating' in page
    assert f'hx-get="{status}" hx-trigger="every 3s"' in page  # the status block keeps polling after success

    azure_emulator.advance_simulated(450)
    azure_emulator.unfreeze()
    azure_emulator.wait_for(lambda: "Completed</span>" in client.get(status, HTTP_HX_REQUEST="true").content.decode(),
                            timeout=10, interval=0.5)
    fragment = client.get(status, HTTP_HX_REQUEST="true").content.decode()
    assert fragment.count("<td>Completed</td>") == 2
    assert "hx-trigger" not in fragment  # nothing moves any more: the polling stops


def test_a_watched_page_costs_one_read_per_refresh_per_version(azure_emulator, client, bob, web):
    azure_emulator.freeze()
    gold = factories.make_gold_version()
    build = build_rows.succeeded(gold, requested_by=bob, department=web)
    build.outputs.update(artifact_id=publish(azure_emulator, "9.0.3"))
    client.force_login(bob)
    status = reverse("builds:build-status", args=[build.uuid])
    since = azure_emulator.last_seq()

    for _viewer in range(5):  # five people watching the same build within one refresh
        assert "Replicating" in client.get(status, HTTP_HX_REQUEST="true").content.decode()

    reads = [r for r in azure_emulator.requests(since) if "/versions/9.0.3" in r.get("path", r.get("url", ""))]
    assert len(reads) == 1


def test_a_running_build_shows_replication_only_while_distributing(azure_emulator, client, bob, web):
    gold = factories.make_gold_version()
    customizing = build_rows.running(gold, requested_by=bob, department=web)
    distributing = build_rows.running(gold, requested_by=bob, department=web, sub_state="Distributing")
    client.force_login(bob)
    assert 'id="replication"' not in client.get(reverse("builds:build-detail", args=[customizing.uuid])).content.decode()
    page = client.get(reverse("builds:build-detail", args=[distributing.uuid])).content.decode()
    assert 'data-output="gallery"' in page
    assert "the version is known once Image Builder reports its run output" in page
