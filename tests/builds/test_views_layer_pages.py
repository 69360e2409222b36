"""Layer pages: list, detail, version (steps, preview, build button)."""

import pytest
from django.urls import reverse

from builds.models import Build
from tests import factories
from tests.support.build_rows import make_build


@pytest.fixture
def gold(alice):
    image = factories.make_gold_image("ubuntu", actor=alice)
    factories.make_gold_version(image, "1.0.0", actor=alice)
    return factories.make_gold_version(image, "2.0.0", actor=alice)


@pytest.fixture
def layer(gold, bob, web):
    return factories.make_layer(web, gold.gold_image, "nginx", actor=bob)


@pytest.fixture
def layer_version(layer, bob):
    return factories.make_layer_version(layer, "1.0.0", actor=bob, accepts="^2.0", customize=[
        {"type": "Shell", "name": "install-nginx", "inline": ["sudo apt-get install -y nginx"]},
        {"type": "File", "name": "config", "sourceUri": "https://files.contoso.example/nginx.conf",
         "destination": "/tmp/nginx.conf"}])


def version_url(name, *extra):
    return reverse(f"builds:{name}", args=["web", "nginx", "1.0.0", *extra])


def test_editors_see_their_departments_layers_only(client, bob, carol, layer_version):
    client.force_login(bob)
    assert "nginx" in client.get(reverse("builds:layer-list")).content.decode()
    client.force_login(carol)
    page = client.get(reverse("builds:layer-list")).content.decode()
    assert "web/nginx" not in page and "No layers yet" in page
    assert client.get(reverse("builds:layer-detail", args=["web", "nginx"])).status_code == 404
    assert client.get(version_url("layer-version")).status_code == 404


def test_the_layer_page_lists_versions_with_their_range(client, dave, layer_version):
    client.force_login(dave)
    page = client.get(reverse("builds:layer-detail", args=["web", "nginx"])).content.decode()
    assert "^2.0" in page and "2 steps" in page


def test_the_version_page_renders_each_step_type_readably(client, bob, layer_version):
    client.force_login(bob)
    page = client.get(version_url("layer-version")).content.decode()
    assert "install-nginx" in page and 'sudo<span class="w"> </span>apt-get' in page
    assert "Copies <a href=\"https://files.contoso.example/nginx.conf\"" in page and "/tmp/nginx.conf" in page
    assert "Build nginx 1.0.0" in page
    # Only the versions the layer accepts can be built on.
    assert '<option value="2.0.0"' in page.split('id="build-gold"')[1].split("</select>")[0]
    assert '"1.0.0"' not in page.split('id="build-gold"')[1].split("</select>")[0]


def test_the_preview_is_a_fragment_for_htmx_and_a_page_without(client, bob, layer_version):
    client.force_login(bob)
    response = client.get(version_url("layer-version-preview"), {"gold": "2.0.0"}, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert response.status_code == 200 and "<html" not in page and 'id="preview"' in page
    assert "HX-Request" in response["Vary"]
    assert "install-nginx" in page and "passes every template rule" in page
    page = client.get(version_url("layer-version-preview"), {"gold": "2.0.0"}).content.decode()
    assert "<html" in page and "Preview of" in page


def test_the_preview_warns_when_the_layer_does_not_accept_the_gold_version(client, bob, layer_version):
    client.force_login(bob)
    page = client.get(version_url("layer-version-preview"), {"gold": "1.0.0"}).content.decode()
    assert "accepts gold versions ^2.0, not 1.0.0" in page


def test_the_preview_asks_for_a_gold_version_it_can_use(client, bob, layer_version):
    client.force_login(bob)
    response = client.get(version_url("layer-version-preview"), {"gold": "9.9.9"})
    assert response.status_code == 422 and "Choose one of the published versions" in response.content.decode()


def test_the_build_button_requests_a_build_and_opens_its_page(client, bob, layer_version, azure_emulator):
    client.force_login(bob)
    response = client.post(version_url("layer-version-build"), {"gold": "2.0.0"})
    build = Build.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("builds:build-detail", args=[build.uuid])
    assert [bl.layer_version for bl in build.build_layers.all()] == [layer_version]
    assert build.department.slug == "web" and build.gold_version.version == "2.0.0"


def test_the_build_form_offers_build_on_production_and_the_pages_show_the_channel(client, alice, frank, bob, gold,
                                                                                  layer_version, azure_emulator):
    from builds import approvals

    request = approvals.promotion_request_create(actor=alice, gold_version=gold, channel="production")
    approvals.publish_request_approve(actor=frank, request=request)
    client.force_login(bob)
    page = client.get(version_url("layer-version")).content.decode()
    assert '<option value="channel:production">build on production (now ubuntu@2.0.0)</option>' in page

    response = client.post(version_url("layer-version-build"), {"gold": "channel:production"})
    build = Build.objects.get()
    assert response.status_code == 302, response.content.decode()[:2000]
    assert build.channel == "production" and build.gold_version == gold
    detail = client.get(reverse("builds:build-detail", args=[build.uuid])).content.decode()
    assert "on channel <strong>production</strong>, resolved to 2.0.0 when requested" in detail
    client.force_login(alice)
    provenance = client.get(reverse("portal:audit-provenance", args=[build.uuid])).content.decode()
    assert 'id="provenance-channel"' in provenance and "<strong>production</strong>" in provenance


def test_a_channel_that_points_nowhere_is_refused_next_to_the_gold_version(client, bob, layer_version):
    client.force_login(bob)
    response = client.post(version_url("layer-version-build"), {"gold": "channel:candidate"})
    assert response.status_code == 422 and not Build.objects.exists()
    assert 'id="build-gold-error"' in response.content.decode()


def test_a_refused_build_shows_the_reason_next_to_the_gold_version(client, bob, layer):
    factories.make_layer_version(layer, "1.0.0", actor=bob, publish=False)
    client.force_login(bob)
    response = client.post(version_url("layer-version-build"), {"gold": "2.0.0"})
    assert response.status_code == 422
    page = response.content.decode()
    assert 'id="build-gold-error"' in page and "publish it before building" in page
    assert not Build.objects.exists()


def test_only_the_departments_editors_build_its_layers(client, alice, carol, dave, layer_version):
    for user, status in ((alice, 403), (dave, 403), (carol, 404)):
        client.force_login(user)
        assert client.post(version_url("layer-version-build"), {"gold": "2.0.0"}).status_code == status
    assert not Build.objects.exists()


def test_the_build_button_is_post_only(client, bob, layer_version):
    client.force_login(bob)
    assert client.get(version_url("layer-version-build")).status_code == 405


@pytest.fixture
def overridden(alice, bob, web):
    """ubuntu@1.0.0 sets owner=security; web/app@1.0.0 sets owner=web-team (ignored) and team=web."""
    gold = factories.make_gold_version(factories.make_gold_image("ubuntu", actor=alice), actor=alice,
                                       tags={"owner": "security"})
    app = factories.make_layer(web, gold.gold_image, "app", actor=bob)
    return gold, factories.make_layer_version(app, actor=bob, tags={"owner": "web-team", "team": "web"})


IGNORED = ("<code>owner = web-team</code> from <code>web/app@1.0.0</code> is ignored")


def test_the_layer_version_page_shows_the_effective_tags_and_the_override(client, bob, overridden):
    client.force_login(bob)
    page = client.get(reverse("builds:layer-version", args=["web", "app", "1.0.0"])).content.decode()
    assert "Tags in a build on 1.0.0" in page
    assert "<td><code>owner</code></td><td><code>security</code></td><td><code>ubuntu@1.0.0</code></td>" in page
    assert "<td><code>team</code></td><td><code>web</code></td><td><code>web/app@1.0.0</code></td>" in page
    assert IGNORED in page and "<code>ubuntu@1.0.0</code> sets <code>security</code>" in page


def test_the_preview_warns_of_the_override_instead_of_passing_every_rule(client, bob, overridden):
    client.force_login(bob)
    page = client.get(reverse("builds:layer-version-preview", args=["web", "app", "1.0.0"]),
                      {"gold": "1.0.0"}, HTTP_HX_REQUEST="true").content.decode()
    assert "passes every template rule" not in page
    assert "Warnings:" in page and "<code>tags.owner</code>: The gold image sets &#x27;owner&#x27;" in page
    assert IGNORED in page


def test_the_gold_version_and_build_pages_show_the_override(client, bob, overridden):
    gold, layer_version = overridden
    client.force_login(bob)
    page = client.get(reverse("builds:gold-version", args=["ubuntu", "1.0.0"])).content.decode()
    assert "Baseline tags" in page and "<td><code>owner</code></td><td><code>security</code></td>" in page
    assert IGNORED in page
    build = make_build(gold, [layer_version], requested_by=bob)
    page = client.get(reverse("builds:build-detail", args=[build.uuid])).content.decode()
    assert build.template["tags"]["owner"] == "security"
    assert "<td><code>owner</code></td><td><code>security</code></td><td><code>ubuntu@1.0.0</code></td>" in page
    assert IGNORED in page
