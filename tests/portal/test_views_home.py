"""The home page per role."""

import pytest
from django.urls import reverse

from tests import factories
from tests.support import build_rows

URL = "/"


@pytest.fixture
def catalog(alice, bob, web):
    image = factories.make_gold_image("ubuntu", actor=alice)
    v1 = factories.make_gold_version(image, "1.0.0", actor=alice)
    layer = factories.make_layer(web, image, "nginx", actor=bob)
    lv = factories.make_layer_version(layer, actor=bob)
    return {"image": image, "v1": v1, "layer": layer, "lv": lv}


def test_url_name_matches():
    assert reverse("portal:home") == URL


def test_strangers_are_sent_to_sign_in(client):
    assert client.get(URL)["Location"].startswith(reverse("portal:login"))


def test_the_security_team_sees_gold_images_recent_builds_and_failures(client, alice, bob, catalog):
    failed = build_rows.failed(catalog["v1"], [catalog["lv"]], requested_by=bob)
    client.force_login(alice)
    page = client.get(URL).content.decode()
    assert "Gold images" in page and "1.0.0" in page
    assert "Recent failures" in page and str(failed.uuid) in page and "PackerBuildFailed" in page


def test_an_editor_sees_their_layers_builds_in_flight_and_what_is_out_of_date(client, alice, bob, catalog):
    build_rows.succeeded(catalog["v1"], [catalog["lv"]], requested_by=bob)
    running = build_rows.running(catalog["v1"], [catalog["lv"]], requested_by=bob)
    factories.make_gold_version(catalog["image"], "1.1.0", actor=alice)
    client.force_login(bob)
    page = client.get(URL).content.decode()
    assert "Your department's layers" in page and "nginx" in page
    assert str(running.uuid)[:8] in page
    assert "out of date" in page
    # The advice is something the editor can do: the layer accepts 1.1.0, so build it on it.
    assert f'">Build {catalog["lv"].version}</a> on 1.1.0' in page


def test_an_editor_without_layers_is_told_what_to_do(client, bob):
    client.force_login(bob)
    page = client.get(URL).content.decode()
    assert "Your department has no layers yet." in page and "Nothing is building right now." in page


def test_an_admin_sees_the_operations_summary(client, erin):
    client.force_login(erin)
    page = client.get(URL).content.decode()
    assert "Operations" in page and reverse("portal:operator") in page
    assert "Gold images" not in page.split("<main")[1]


def test_someone_without_a_role_is_told_whom_to_ask(client, sam):
    client.force_login(sam)
    assert "You have no role in Goldsmith yet." in client.get(URL).content.decode()


def test_an_auditor_lands_on_the_history(client, dave):
    client.force_login(dave)
    response = client.get(URL)
    try:
        history = reverse("portal:audit-history")
    except Exception:  # the auditor pages are not there yet: the home page stands in
        assert response.status_code == 200 and "History" in response.content.decode()
    else:
        assert response.status_code == 302 and response["Location"] == history


def test_the_navigation_shows_only_the_pages_a_role_opens(client, bob, erin):
    client.force_login(bob)
    nav = client.get(URL).content.decode().split('<nav aria-label="Main">')[1].split("</nav>")[0]
    assert "Builds" in nav and "Operator" not in nav and 'aria-current="page"' in nav
    client.force_login(erin)
    nav = client.get(URL).content.decode().split('<nav aria-label="Main">')[1].split("</nav>")[0]
    assert "Operator" in nav and "Layers" not in nav
