"""Gold image pages: list, detail, version, diff, publish/deprecate/revoke, lineage."""

import pytest
from django.urls import reverse

from builds import approvals, compose
from builds.models import GoldImageVersion
from portal.models import AuditEvent
from tests import factories
from tests.support import build_rows


@pytest.fixture
def image(alice):
    return factories.make_gold_image("ubuntu", actor=alice)


@pytest.fixture
def versions(image, alice):
    v1 = factories.make_gold_version(image, "1.0.0", actor=alice)
    v2 = factories.make_gold_version(image, "1.1.0", actor=alice, vm_profile={"vmSize": "Standard_D4ds_v5"})
    draft = factories.make_gold_version(image, "1.2.0", actor=alice, publish=False)
    return v1, v2, draft


def test_it_lists_gold_images_with_their_versions_for_each_role(client, alice, bob, versions):
    client.force_login(alice)
    page = client.get(reverse("builds:gold-list")).content.decode()
    assert "1.2.0" in page and "Draft" in page
    client.force_login(bob)
    page = client.get(reverse("builds:gold-list")).content.decode()
    assert "1.1.0" in page and "1.2.0" not in page


def test_it_refuses_the_admin_and_sends_strangers_to_sign_in(client, erin, versions):
    assert client.get(reverse("builds:gold-list")).status_code == 302
    client.force_login(erin)
    assert client.get(reverse("builds:gold-list")).status_code == 403


def test_it_says_what_to_do_when_there_are_no_gold_images(client, bob):
    client.force_login(bob)
    page = client.get(reverse("builds:gold-list")).content.decode()
    assert "No gold images yet" in page and "security team has not published" in page


def test_it_shows_the_versions_of_an_image_and_hides_drafts_from_editors(client, alice, bob, versions):
    client.force_login(alice)
    page = client.get(reverse("builds:gold-detail", args=["ubuntu"])).content.decode()
    assert page.count("status-") >= 3 and "Compare two versions" in page
    client.force_login(bob)
    page = client.get(reverse("builds:gold-detail", args=["ubuntu"])).content.decode()
    assert "1.2.0" not in page
    assert client.get(reverse("builds:gold-version", args=["ubuntu", "1.2.0"])).status_code == 404


def test_the_version_page_shows_steps_highlighted_and_the_baseline_hash(client, alice, versions):
    v1 = versions[0]
    client.force_login(alice)
    response = client.get(reverse("builds:gold-version", args=["ubuntu", "1.0.0"]))
    page = response.content.decode()
    body = compose.without_provenance(compose.compose(v1, [], compose.BuildContext(location="eastus")))
    assert compose.template_sha256(body) in page
    assert 'sudo<span class="w"> </span>apt-get' in page  # the Shell step, through Pygments
    assert "<span class=\"nt\">\"properties\"</span>" in page  # the template JSON
    assert "A newer version" in page and "1.1.0" in page  # out of date
    assert "Deprecate…" in page and "Revoke…" in page


def test_the_diff_shows_changed_lines_side_by_side_and_unified(client, bob, versions):
    client.force_login(bob)
    url = reverse("builds:gold-diff", args=["ubuntu"])
    page = client.get(url, {"from": "1.0.0", "to": "1.1.0"}).content.decode()
    assert '<mark class="del">2</mark>' in page and '<mark class="ins">4</mark>' in page
    page = client.get(url, {"from": "1.0.0", "to": "1.1.0", "mode": "unified"}).content.decode()
    assert '<tr class="removed">' in page and '<tr class="added">' in page and "@@ -" in page


def test_the_diff_names_a_version_it_cannot_show_next_to_the_field(client, bob, versions):
    client.force_login(bob)
    page = client.get(reverse("builds:gold-diff", args=["ubuntu"]), {"from": "1.2.0", "to": "1.1.0"}).content.decode()
    assert 'id="from-error"' in page and "no version 1.2.0" in page


def test_publishing_asks_for_confirmation_then_publishes_and_audits(client, alice, frank, versions, azure_emulator):
    _, _, draft = versions
    client.force_login(alice)
    url = reverse("builds:gold-version-action", args=["ubuntu", "1.2.0", "publish"])
    page = client.get(url).content.decode()
    assert "Request publishing Test gold image 1.2.0?" in page and "Reason (optional)" in page
    response = client.post(url, {"reason": "quarterly patch"})
    assert response.status_code == 302
    # Four eyes: the page makes a request; frank's approval publishes.
    assert draft.publish_requests.get().comment == "quarterly patch"
    approvals.publish_request_approve(actor=frank, request=draft.publish_requests.get())
    draft.refresh_from_db()
    assert draft.status == GoldImageVersion.Status.PUBLISHED
    assert AuditEvent.objects.filter(action="gold_version.publish", object_id=str(draft.uuid)).exists()


def test_publishing_a_draft_with_problems_lists_them(client, alice, image):
    draft = factories.make_gold_version(image, "2.0.0", actor=alice, publish=False, distribute=[])
    client.force_login(alice)
    response = client.post(reverse("builds:gold-version-action", args=["ubuntu", "2.0.0", "publish"]), {"reason": ""})
    assert response.status_code == 422
    assert "cannot be published yet" in response.content.decode()
    draft.refresh_from_db()
    assert draft.is_draft


def test_revoking_needs_a_reason_shown_next_to_the_field(client, alice, versions):
    v1 = versions[0]
    client.force_login(alice)
    url = reverse("builds:gold-version-action", args=["ubuntu", "1.0.0", "revoke"])
    response = client.post(url, {"reason": "  "})
    assert response.status_code == 422
    page = response.content.decode()
    assert 'id="reason-error"' in page and "A reason is required." in page
    response = client.post(url, {"reason": "CVE-2026-0001 in the kernel"})
    assert response.status_code == 302
    v1.refresh_from_db()
    assert v1.status == GoldImageVersion.Status.REVOKED and v1.status_reason == "CVE-2026-0001 in the kernel"


def test_only_the_security_team_changes_gold_versions(client, bob, dave, versions):
    for user, status in ((bob, 403), (dave, 403)):
        client.force_login(user)
        url = reverse("builds:gold-version-action", args=["ubuntu", "1.0.0", "deprecate"])
        assert client.post(url, {"reason": "x"}).status_code == status
    assert GoldImageVersion.objects.get(version="1.0.0").status == "published"


def test_an_unknown_action_is_not_found(client, alice, versions):
    client.force_login(alice)
    assert client.get(reverse("builds:gold-version-action", args=["ubuntu", "1.0.0", "delete"])).status_code == 404


def test_the_lineage_draws_versions_layers_builds_and_artifacts_with_marks(client, alice, bob, web, versions):
    v1, v2, _ = versions
    layer = factories.make_layer(web, v1.gold_image, "nginx", actor=bob)
    lv = factories.make_layer_version(layer, "1.0.0", actor=bob)
    old = build_rows.succeeded(v1, [lv], requested_by=bob)
    build_rows.failed(v2, [lv], requested_by=bob)
    client.force_login(alice)
    client.post(reverse("builds:gold-version-action", args=["ubuntu", "1.0.0", "revoke"]), {"reason": "bad"})
    page = client.get(reverse("builds:gold-lineage", args=["ubuntu"])).content.decode()
    assert "<svg" in page and page.count('class="node') == 3 + 1 + 2 + 1
    assert "mark-revoked" in page and "mark-failed" in page
    assert reverse("builds:build-detail", args=[old.uuid]) in page


def test_the_page_refuses_to_publish_a_source_image_builder_cannot_use(client, alice, image, azure_emulator):
    # A TrustedLaunch-only Marketplace image: only the catalog look-up knows, and the service runs it.
    azure_emulator.add_image(location="eastus", publisher="Goldsmith-Tests", offer="security", sku="tl-only",
                             version="1.0.0", hyperVGeneration="V2", features={"SecurityType": "TrustedLaunch"})
    draft = factories.make_gold_version(image, "1.0.0", actor=alice, publish=False, source={
        "type": "PlatformImage", "publisher": "Goldsmith-Tests", "offer": "security", "sku": "tl-only",
        "version": "latest"}, security_type="TrustedLaunch")
    client.force_login(alice)
    response = client.post(reverse("builds:gold-version-action", args=["ubuntu", "1.0.0", "publish"]), {"reason": ""})
    assert response.status_code == 422
    assert "security.source-unsupported" in {p.rule for p in response.context["problems"]}
    draft.refresh_from_db()
    assert draft.is_draft
    assert not AuditEvent.objects.filter(action="gold_version.publish", object_id=str(draft.uuid)).exists()
