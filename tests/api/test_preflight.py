"""The pre-flight endpoints (api/views_preflight.py) against the emulator: a region's build VM
sizes, a gold version's review, the template check's environment checks, a layer's network."""

import json

import pytest

from builds import validation
from tests import factories
from tests.support.aib import template_body

pytestmark = pytest.mark.django_db


def test_vm_sizes_are_the_regions_sizes_that_fit(api, bob, azure_emulator, settings, tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"Standard_D2ds_v5": 0.11}))
    settings.BUILD_VM_PRICES_FILE = str(prices)
    response = api(bob).get("/api/v1/vm-sizes/", {"location": "eastus", "generation": "V2"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["location"] == "eastus" and body["note"] == ""
    found = {size["name"]: size for size in body["sizes"]}
    assert found["Standard_D2ds_v5"]["vcpus"] == 2 and found["Standard_D2ds_v5"]["memory_gb"] == 8
    assert found["Standard_D2ds_v5"]["price_per_hour"] == 0.11
    assert "per build-hour" in found["Standard_D2ds_v5"]["label"]
    assert all("V2" in size["generations"] for size in body["sizes"])
    assert "Standard_D1_v2" not in found  # Gen1 only


def test_vm_sizes_filter_by_architecture(api, bob, azure_emulator):
    sizes = api(bob).get("/api/v1/vm-sizes/", {"location": "eastus", "architecture": "Arm64"}).json()["sizes"]
    every = api(bob).get("/api/v1/vm-sizes/", {"location": "eastus"}).json()["sizes"]
    assert len(sizes) < len(every)


@pytest.mark.parametrize("query, path", [({}, "location"), ({"location": "eastus", "generation": "V3"}, "generation"),
                                         ({"location": "East US"}, "location"), ({"location": ""}, "location")])
def test_vm_sizes_refuse_bad_parameters(api, bob, query, path):
    response = api(bob).get("/api/v1/vm-sizes/", query)
    assert response.status_code == 400
    assert path in {problem["path"] for problem in response.json()["error"]["problems"]}


def test_the_review_lists_every_check_group_with_its_problems(api, alice, azure_emulator):
    gold = factories.make_gold_image("ubuntu", actor=alice)
    factories.make_gold_version(gold, "1.0.0", publish=False, actor=alice, location="mars-north")
    response = api(alice).get("/api/v1/gold-images/ubuntu/versions/1.0.0/review/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [check["group"] for check in body["checks"]] == list(validation.GROUPS)
    region = next(check for check in body["checks"] if check["group"] == "region")
    assert region["ran"] and not region["passed"]
    assert "region.unknown" in {problem["rule"] for problem in region["problems"]}
    assert body["ok"] is False
    assert body["policy"]["gallery_versioning"] == "" and body["policy"]["additional_data_disks"] is True


def test_the_review_of_a_good_version_passes(api, bob, azure_emulator):
    gold_version = factories.make_gold_version(factories.make_gold_image("ubuntu"))
    body = api(bob).get(f"/api/v1/gold-images/ubuntu/versions/{gold_version.version}/review/").json()
    assert body["publishable"] is True
    assert all(check["ran"] for check in body["checks"] if check["group"] in ("region", "vm-size", "identity"))


def test_an_editor_cannot_review_a_draft(api, bob, alice):
    factories.make_gold_version(factories.make_gold_image("ubuntu"), publish=False)
    assert api(bob).get("/api/v1/gold-images/ubuntu/versions/1.0.0/review/").status_code == 404


def test_the_template_check_runs_the_environment_checks_unless_offline(api, bob, azure_emulator):
    body = template_body(location="mars-north")
    found = api(bob).post("/api/v1/templates/check/", body, format="json").json()
    assert "region.unknown" in {problem["rule"] for problem in found["problems"]}
    ran = {check["group"]: check["ran"] for check in found["checks"]}
    assert ran["region"] and ran["permission"] and ran["staging"]
    offline = api(bob).post("/api/v1/templates/check/?offline=true", body, format="json").json()
    assert "region.unknown" not in {problem["rule"] for problem in offline["problems"]}
    assert not {group for group, was in ((c["group"], c["ran"]) for c in offline["checks"]) if was} & {
        "region", "vm-size", "identity", "permission", "staging", "azure-policy"}


def test_a_layer_version_shows_its_network(api, bob, web):
    gold = factories.make_gold_image("ubuntu")
    factories.make_gold_version(gold)
    layer = factories.make_layer(web, gold, "nginx", actor=bob)
    subnet = "/subscriptions/s1/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/corp/subnets/web"
    factories.make_layer_version(layer, publish=False, actor=bob, network={"subnetId": subnet})
    body = api(bob).get("/api/v1/layers/web/nginx/versions/1.0.0/").json()
    assert body["network"] == {"subnetId": subnet}
