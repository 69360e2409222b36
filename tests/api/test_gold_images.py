"""GET /api/v1/gold-images/, /gold-images/{slug}/ and /gold-images/{slug}/versions/{version}/."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests import factories


def test_security_sees_every_version_with_links(api, alice, world):
    response = api(alice).get(reverse("api:gold-list"))

    assert response.status_code == 200
    [image] = response.json()["results"]
    assert image["slug"] == "ubuntu" and image["os_type"] == "Linux"
    assert [(v["version"], v["status"]) for v in image["versions"]] == [("1.1.0", "draft"), ("1.0.0", "published")]
    assert image["url"] == "http://testserver/api/v1/gold-images/ubuntu/"
    assert image["versions"][1]["url"] == "http://testserver/api/v1/gold-images/ubuntu/versions/1.0.0/"
    assert response.json()["next"] is None


def test_editors_never_see_drafts(api, bob, world):
    client = api(bob)

    [image] = client.get(reverse("api:gold-list")).json()["results"]
    draft = client.get(reverse("api:gold-version", kwargs={"slug": "ubuntu", "version": "1.1.0"}))
    missing = client.get(reverse("api:gold-version", kwargs={"slug": "ubuntu", "version": "9.9.9"}))

    assert [v["version"] for v in image["versions"]] == ["1.0.0"]
    assert draft.status_code == missing.status_code == 404
    assert draft.content == missing.content


def test_an_image_with_only_drafts_is_hidden_from_editors(api, alice, bob, world):
    factories.make_gold_version(factories.make_gold_image("secret-image", actor=alice), "0.1.0", publish=False,
                                actor=alice)

    listed = [image["slug"] for image in api(bob).get(reverse("api:gold-list")).json()["results"]]
    detail = api(bob).get(reverse("api:gold-detail", kwargs={"slug": "secret-image"}))

    assert listed == ["ubuntu"]
    assert detail.status_code == 404


@pytest.mark.parametrize("persona, expected", [
    ("alice", 200), ("bob", 200), ("carol", 200), ("dave", 200), ("erin", 403), ("sam", 403), (None, 401)])
def test_who_reads_a_gold_version(api, world, request, persona, expected):
    user = request.getfixturevalue(persona) if persona else None

    response = api(user).get(reverse("api:gold-version", kwargs={"slug": "ubuntu", "version": "1.0.0"}))

    assert response.status_code == expected
    if expected != 200:
        assert set(response.json()["error"]) == {"code", "message"}


def test_a_gold_version_carries_its_composed_baseline(api, dave, world):
    response = api(dave).get(reverse("api:gold-version", kwargs={"slug": "ubuntu", "version": "1.0.0"}))

    version = response.json()
    assert version["id"] == str(world.published.uuid)
    assert version["status"] == "published" and version["buildable"] is True
    template = version["template"]
    assert template["properties"]["source"]["type"] == "PlatformImage"
    assert [step["name"] for step in template["properties"]["customize"]] == ["update", "audit"]
    assert not any(tag.startswith("goldsmith.") for tag in template.get("tags", {}))
    assert version["web_url"].endswith(reverse("builds:gold-version", kwargs={"slug": "ubuntu", "version": "1.0.0"}))


def test_the_list_pages_with_a_cursor_in_constant_queries(api, alice, django_assert_num_queries):
    for index in range(7):
        image = factories.make_gold_image(f"image-{index}", actor=alice)
        factories.make_gold_version(image, "1.0.0", actor=alice)
        factories.make_gold_version(image, "1.1.0", actor=alice)
    client = api(alice)
    client.get(reverse("api:gold-list"))  # the token's first use writes last_used_at

    seen, url = [], reverse("api:gold-list") + "?limit=3"
    while url:
        with django_assert_num_queries(4):  # token, roles, images, their visible versions
            page = client.get(url).json()
        seen += [image["slug"] for image in page["results"]]
        assert all(len(image["versions"]) == 2 for image in page["results"])
        url = page["next"]

    assert seen == [f"image-{index}" for index in range(7)]


def test_a_foreign_cursor_is_a_validation_error(api, alice, world):
    response = api(alice).get(reverse("api:gold-list") + "?cursor=not-ours")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert error["problems"] == [{"rule": "request.cursor", "path": "cursor", "severity": "error",
                                  "message": "This cursor was not made by this list: use the `next` link as given."}]
