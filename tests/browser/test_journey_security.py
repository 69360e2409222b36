"""The security team's journey from sign-in to result on the gold image pages: publish a new
version (alice asks, frank approves), compare it with the old one, revoke the old one with a reason and see every derived
build flagged in the lineage. (Creating a gold image through the wizard: test_journey_wizard.py.)"""

import pytest

from tests import factories
from tests.browser.support import approve_publishing, check_accessibility, request_publishing, sign_in
from tests.support import build_rows

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_security_team_publishes_compares_and_revokes_versions(live_server, page, alice, frank, bob, web,
                                                                   azure_emulator):
    image = factories.make_gold_image("ubuntu", actor=alice)
    old = factories.make_gold_version(image, "1.0.0", actor=alice)
    factories.make_gold_version(image, "1.1.0", actor=alice, publish=False, vm_profile={"vmSize": "Standard_D4ds_v5"})
    layer = factories.make_layer(web, image, "nginx", actor=bob)
    layer_version = factories.make_layer_version(layer, actor=bob)
    derived = build_rows.succeeded(old, [layer_version], requested_by=bob)

    sign_in(page, alice)
    check_accessibility(page, "security-home")
    page.get_by_role("link", name="Gold images", exact=True).click()
    check_accessibility(page, "gold-list")
    page.get_by_role("link", name="Test gold image").click()
    page.get_by_role("link", name="1.1.0", exact=True).first.click()
    # Four eyes: alice asks, frank approves.
    request_publishing(page, "1.1.0", "bigger build VM")
    check_accessibility(page, "gold-version")
    approve_publishing(page, frank, "ubuntu@1.1.0")

    page.goto("/gold/ubuntu/")
    page.select_option("#diff-from", "1.0.0")
    page.select_option("#diff-to", "1.1.0")
    page.get_by_role("button", name="Compare").click()
    assert page.locator("table.diff mark.del").first.inner_text() == "2"
    assert page.locator("table.diff mark.ins").first.inner_text() == "4"
    check_accessibility(page, "gold-diff")
    page.get_by_label("Unified").check()
    page.get_by_role("button", name="Compare").click()
    assert page.locator("table.diff.unified tr.added").count() == 1

    page.goto("/gold/ubuntu/v/1.0.0/")
    page.get_by_role("link", name="Revoke…").click()
    assert page.get_by_text("1 build made from this version.").is_visible()
    page.get_by_role("button", name="Revoke 1.0.0").click()  # the browser asks for the required reason first
    assert page.locator("textarea[name=reason]").evaluate("el => !el.validity.valid")
    page.fill("textarea[name=reason]", "CVE-2026-1234 in the kernel")
    page.get_by_role("button", name="Revoke 1.0.0").click()
    page.get_by_text("ubuntu@1.0.0 is now revoked.").wait_for()

    page.get_by_role("link", name="Lineage").click()
    build_node = page.locator(f"svg a[href='/builds/{derived.uuid}/'] g, svg g:has(a[href='/builds/{derived.uuid}/'])")
    assert "mark-revoked" in (build_node.first.get_attribute("class") or "")
    check_accessibility(page, "lineage")
    page.goto(f"/builds/{derived.uuid}/")
    assert page.get_by_text("Revoked source:").is_visible()
    assert page.console_errors == []
