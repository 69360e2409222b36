"""GET /api/v1/layers/, /layers/{department}/{slug}/ and /layers/{department}/{slug}/versions/{version}/."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.models import Membership
from tests import factories

LAYERS = "/api/v1/layers/"


def refs(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [f"{layer['department']}/{layer['slug']}" for layer in response.json()["results"]]


def test_editors_list_their_departments_layers_and_security_and_auditors_all(api, alice, bob, carol, dave, world):
    assert refs(api(bob).get(LAYERS)) == ["web/nginx"]
    assert refs(api(carol).get(LAYERS)) == ["data/tools"]
    assert refs(api(alice).get(LAYERS)) == refs(api(dave).get(LAYERS)) == ["data/tools", "web/nginx"]


def test_an_editor_of_two_departments_sees_both(api, bob, data_dept, world):
    Membership.objects.create(user=bob, role="editor", department=data_dept)

    assert refs(api(bob).get(LAYERS)) == ["data/tools", "web/nginx"]
    assert refs(api(bob).get(LAYERS, {"department": "data"})) == ["data/tools"]


def test_a_layer_lists_its_versions_with_what_they_accept(api, bob, world):
    [layer] = api(bob).get(LAYERS, {"gold_image": "ubuntu"}).json()["results"]

    assert layer["gold_image"] == "ubuntu" and layer["name"] == "Test layer"
    assert [(v["version"], v["status"], v["accepts"]) for v in layer["versions"]] == [
        ("1.1.0", "draft", "*"), ("1.0.0", "published", "*")]
    assert layer["versions"][1]["url"] == "http://testserver/api/v1/layers/web/nginx/versions/1.0.0/"
    assert refs(api(bob).get(LAYERS, {"gold_image": "windows"})) == []


def test_a_layer_version_has_its_steps_and_the_reference_builds_take(api, bob, world):
    response = api(bob).get(reverse("api:layer-version", kwargs={"department": "web", "slug": "nginx",
                                                                 "version": "1.0.0"}))

    version = response.json()
    assert version["ref"] == "web/nginx@1.0.0" and version["id"] == str(world.web_version.uuid)
    assert version["customize"] == [{"type": "Shell", "name": "app", "inline": ["echo app"]}]
    assert version["status"] == "published" and version["created_by"] == "bob"
    layer = api(bob).get(reverse("api:layer-detail", kwargs={"department": "web", "slug": "nginx"})).json()
    assert [v["version"] for v in layer["versions"]] == ["1.1.0", "1.0.0"]


@pytest.mark.parametrize("persona, expected", [
    ("alice", 200), ("bob", 200), ("carol", 404), ("dave", 200), ("erin", 403), ("sam", 403), (None, 401)])
def test_who_reads_a_department_s_layer_version(api, world, request, persona, expected):
    user = request.getfixturevalue(persona) if persona else None

    response = api(user).get(reverse("api:layer-version", kwargs={"department": "web", "slug": "nginx",
                                                                  "version": "1.0.0"}))

    assert response.status_code == expected


def test_an_outsider_s_404_is_a_missing_layer_s_404(api, carol, world):
    theirs = api(carol).get(reverse("api:layer-detail", kwargs={"department": "web", "slug": "nginx"}))
    missing = api(carol).get(reverse("api:layer-detail", kwargs={"department": "web", "slug": "nope"}))

    assert theirs.status_code == missing.status_code == 404
    assert theirs.content == missing.content


def test_the_list_pages_in_constant_queries(api, alice, bob, web, data_dept, django_assert_num_queries):
    gold = factories.make_gold_image("ubuntu", actor=alice)
    for department in (web, data_dept):
        for index in range(4):
            layer = factories.make_layer(department, gold, f"layer-{index}", actor=bob)
            factories.make_layer_version(layer, "1.0.0", actor=bob)
            factories.make_layer_version(layer, "1.1.0", actor=bob, publish=False)
    client = api(alice)
    client.get(LAYERS)

    seen, url = [], f"{LAYERS}?limit=3"
    while url:
        with django_assert_num_queries(4):  # token, roles, layers, their versions
            page = client.get(url).json()
        seen += [f"{layer['department']}/{layer['slug']}" for layer in page["results"]]
        assert all(len(layer["versions"]) == 2 for layer in page["results"])
        url = page["next"]

    assert seen == [f"{d}/layer-{i}" for d in ("data", "web") for i in range(4)]
