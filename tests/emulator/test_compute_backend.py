"""The catalog's in-process interface that Image Builder calls (app.services["compute"]), and the seed."""

from __future__ import annotations

import json

import pytest

from emulator.app import Config, build_app
from emulator.core import ArmError
from emulator.core.store import Store

SUB = "22222222-2222-2222-2222-222222222222"
GALLERY_ID = f"/subscriptions/{SUB}/resourceGroups/goldsmith-galleries/providers/Microsoft.Compute/galleries/goldsmith_gallery"


@pytest.fixture(scope="module")
def app():
    return build_app()


@pytest.fixture
def compute(app):
    app.reset()
    return app.services["compute"]


def test_platform_image_resolves_latest_to_the_newest_listed_version(compute):
    image = compute.platform_image("East US", "Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2", "latest")

    assert image["version"] == "22.04.202411190"
    assert image["hyperVGeneration"] == "V2"
    assert image["features"]["SecurityType"] == "TrustedLaunchSupported"
    assert image["plan"] is None


def test_platform_image_answers_none_when_absent(compute):
    assert compute.platform_image("eastus", "Canonical", "nope", "x", "latest") is None
    assert compute.platform_image("eastus", "Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts", "1.0") is None


def test_gallery_image_version_latest_skips_versions_excluded_from_latest(compute):
    assert compute.gallery_image_version(f"{GALLERY_ID}/images/win2022-tl/versions/latest")["name"] == "1.0.0"
    assert compute.gallery_image_version(f"{GALLERY_ID}/images/ubuntu-gen2-tl/versions/latest")["name"] == "2.1.0"
    assert compute.gallery_image_version(f"{GALLERY_ID}/images/tlcvm/versions/latest") is None
    assert compute.gallery_image_version("not an id") is None


def test_gallery_image_is_the_flat_view_of_a_definition(compute):
    definition = compute.gallery_image(f"{GALLERY_ID.upper()}/images/CVM-DEF")  # ids are case-insensitive

    assert definition["features"] == {"SecurityType": "ConfidentialVMSupported"}
    assert (definition["osType"], definition["osState"], definition["hyperVGeneration"]) == ("Linux", "Generalized", "V2")
    assert compute.gallery_image(f"{GALLERY_ID}/images/missing") is None


@pytest.mark.parametrize(("definition", "major", "expected"), [
    ("ubuntu-gen2-tl", -1, "2.1.1"),  # seeded 0.1.2, 1.0.0, 1.2.0, 2.0.0, 2.1.0: aib-reference §2.6's example
    ("ubuntu-gen2-tl", 1, "1.2.1"),
    ("ubuntu-gen2-tl", 0, "0.1.3"),
    ("ubuntu-gen2-tl", 2, "2.1.1"),
    ("ubuntu-gen2-tl", 3, "3.0.0"),
    ("tlcvm", -1, "1.0.0"),  # no versions yet
    ("tlcvm", 0, "0.0.1"),
])
def test_next_gallery_version_follows_the_latest_scheme(compute, definition, major, expected):
    assert compute.next_gallery_version(f"{GALLERY_ID}/images/{definition}", major) == expected


def test_created_versions_and_images_become_visible(compute):
    version = compute.create_gallery_image_version(
        f"{GALLERY_ID}/images/tlcvm/versions/1.0.0", "eastus", [{"name": "westus2", "replicaCount": 2}],
        exclude_from_latest=False, tags={"build": "42"}, source="/subscriptions/x/images/src")
    image = compute.create_managed_image(
        f"/subscriptions/{SUB}/resourceGroups/goldsmith-images/providers/Microsoft.Compute/images/out", "eastus",
        "Linux", "V2", tags={"build": "42"})

    assert version["properties"]["publishingProfile"]["targetRegions"][0]["regionalReplicaCount"] == 2
    flat = compute.gallery_image_version(f"{GALLERY_ID}/images/tlcvm/versions/latest")
    assert (flat["name"], flat["targetRegions"][0]["name"], flat["source"]) == ("1.0.0", "westus2",
                                                                                "/subscriptions/x/images/src")
    assert compute.next_gallery_version(f"{GALLERY_ID}/images/tlcvm") == "1.0.1"
    assert compute.managed_image(image["id"])["hyperVGeneration"] == "V2"


def test_creating_outputs_refuses_missing_parents_and_bad_names(compute):
    with pytest.raises(ArmError) as no_definition:
        compute.create_gallery_image_version(f"{GALLERY_ID}/images/missing/versions/1.0.0", "eastus", [])
    with pytest.raises(ArmError) as bad_name:
        compute.create_gallery_image_version(f"{GALLERY_ID}/images/tlcvm/versions/1.0", "eastus", [])
    with pytest.raises(ArmError) as no_group:
        compute.create_managed_image(f"/subscriptions/{SUB}/resourceGroups/missing/providers/Microsoft.Compute/"
                                     "images/out", "eastus", "Linux", "V2")

    assert (no_definition.value.status, no_definition.value.code) == (404, "ResourceNotFound")
    assert bad_name.value.status == 400
    assert (no_group.value.status, no_group.value.code) == (404, "ResourceGroupNotFound")


def test_resources_backend_creates_and_deletes_groups(app):
    app.reset()
    resources = app.services["resources"]

    group = resources.create_resource_group(SUB, "IT_goldsmith-images_web_1234", "East US",
                                            tags={"createdBy": "AzureVMImageBuilder"})

    assert group["location"] == "eastus"
    assert resources.resource_group(SUB, "it_goldsmith-images_web_1234")["tags"] == {"createdBy": "AzureVMImageBuilder"}
    assert resources.delete_resource_group(SUB, "IT_goldsmith-images_web_1234") is True
    assert resources.delete_resource_group(SUB, "IT_goldsmith-images_web_1234") is False


def test_a_custom_seed_replaces_the_default_catalog(tmp_path):
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({
        "resourceGroups": [{"subscription": SUB, "name": "only-rg", "location": "westus2"}],
        "marketplace": [{"publisher": "Contoso", "offer": "o", "sku": "s", "hyperVGeneration": "V2",
                         "locations": ["westus2"], "versions": [{"version": "1.0.0"}]}],
        "users": [{"username": "zed", "roles": ["Goldsmith.Admin"]}],
    }))

    app = build_app(config=Config(seed_path=str(seed)))

    assert [group["name"] for group in app.services["resources"].resource_groups(SUB)] == ["only-rg"]
    assert app.services["compute"].platform_image("westus2", "Contoso", "o", "s", "latest")["version"] == "1.0.0"
    assert app.services["entra"].user("zed")["username"] == "zed@contoso.example"
    app.reset()  # the reset reloads the same file
    assert app.services["compute"].platform_image("eastus", "Canonical", "0001-com-ubuntu-server-jammy",
                                                  "22_04-lts-gen2", "latest") is None


def test_a_restart_keeps_state_and_signing_keys(tmp_path):
    path = tmp_path / "state.sqlite3"
    first = build_app(store=Store(path))
    first.services["compute"].add_platform_image({"location": "eastus", "publisher": "Contoso", "offer": "o",
                                                  "sku": "s", "version": "2.0.0"})
    kid = first.services["entra"].signing_keys()[0].kid
    first.store.close()

    second = build_app(store=Store(path))

    assert second.services["compute"].platform_image("eastus", "Contoso", "o", "s", "2.0.0") is not None
    assert second.services["entra"].signing_keys()[0].kid == kid
