"""The security team's journey through the whole gold version wizard: browse the catalog, declare
the security type (checked live), add baseline steps, pick a gallery definition from the catalog,
set the build VM, review the checks and publish."""

import pytest

from builds import approvals
from builds.models import GoldImageVersion, PublishRequest
from tests.browser.support import check_accessibility, sign_in
from tests.support.aib import GEN1_DEFINITION, GEN2_DEFINITION

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_security_team_builds_a_gold_version_through_the_wizard(portal, page, alice, frank):
    sign_in(page, alice)
    page.goto("/wizard/")
    page.fill("input[name=slug]", "ubuntu-2204")
    page.fill("input[name=name]", "Ubuntu 22.04")
    page.check("input[name=os_type][value=Linux]")
    page.get_by_role("button", name="Start the wizard").click()

    # Source: browse publisher -> offer -> SKU with htmx look-ups, then save.
    page.wait_for_url("**/source/")
    # The progress list: Source is current, the six others still to do, none linked yet.
    steps = page.locator("nav.wizard-steps li")
    assert steps.count() == 7 and "1. 1." not in page.locator("nav.wizard-steps").inner_text()
    assert page.locator("nav.wizard-steps li.step-current [aria-current=step]").inner_text() == "Source"
    assert page.locator("nav.wizard-steps li.step-todo").count() == 6
    assert page.locator("nav.wizard-steps a").count() == 0
    # Typed quickly, key by key: the look-ups wait for a pause and none is aborted (no
    # htmx:sendAbort in the console, checked at the end).
    page.fill("input[name=location]", "")
    page.locator("input[name=location]").press_sequentially("eastus", delay=20)
    page.locator("input[name=publisher]").press_sequentially("Canonical", delay=20)
    page.wait_for_selector("datalist#offers option[value='0001-com-ubuntu-server-jammy']", state="attached")
    page.fill("input[name=offer]", "0001-com-ubuntu-server-jammy")
    page.locator("input[name=offer]").dispatch_event("change")
    page.wait_for_selector("datalist#skus option[value='22_04-lts-gen2']", state="attached")
    page.fill("input[name=sku]", "22_04-lts-gen2")
    page.fill("input[name=version]", "latest")
    page.locator("input[name=version]").dispatch_event("change")
    page.wait_for_selector(".source-facts:has-text('TrustedLaunchSupported')")
    check_accessibility(page, "wizard-source")
    page.get_by_role("button", name="Save and continue").click()

    # Security: a wrong declaration is flagged live, the right one passes.
    page.wait_for_url("**/security/")
    page.check("input[name=security_type][value=Standard]")
    page.wait_for_selector("#id_security_type-errors:has-text('Standard is declared')")
    page.check("input[name=security_type][value=TrustedLaunch]")
    page.wait_for_selector("text=The declaration matches the source.")
    page.get_by_role("button", name="Save and continue").click()

    # Customize: one baseline step before the layers.
    page.wait_for_url("**/customize/")
    page.get_by_role("link", name="Shell").first.click()
    page.fill("#editor input[name=name]", "harden")
    page.fill("#editor textarea[name=inline]", "sudo apt-get update\nsudo apt-get -y upgrade")
    page.get_by_role("button", name="Save step").click()
    page.wait_for_selector("ol.steps li:has-text('harden')")
    page.get_by_role("button", name="Continue").click()

    # Validate: nothing to add.
    page.wait_for_url("**/validate/")
    page.get_by_role("button", name="Save and continue").click()

    # Distribute: the Gen1 definition is refused next to its field; the Gen2 TL one is accepted.
    page.wait_for_url("**/distribute/")
    page.get_by_role("link", name="Gallery image definition").click()
    page.fill("input[name=galleryImageId]", GEN1_DEFINITION)
    page.get_by_role("button", name="Add target").click()
    page.wait_for_selector("#id_galleryImageId-errors")
    page.fill("input[name=galleryImageId]", GEN2_DEFINITION)
    page.get_by_role("button", name="Add a region").click()
    page.locator("input[name='targetRegions-1-name']").wait_for()
    page.fill("input[name='targetRegions-1-name']", "westeurope")
    page.fill("input[name='targetRegions-1-replicaCount']", "2")
    check_accessibility(page, "wizard-distribute")
    page.get_by_role("button", name="Add target").click()
    page.wait_for_selector("ol.steps li:has-text('SharedImage')")
    page.get_by_role("button", name="Continue").click()

    # Build VM and identity.
    page.wait_for_url("**/buildvm/")
    page.locator("select[name=vmSize] option", has_text="Standard_D2ds_v5: 2 vCPU").wait_for(state="attached")
    page.select_option("select[name=vmSize]", "Standard_D2ds_v5")
    check_accessibility(page, "wizard-buildvm")
    page.get_by_role("button", name="Save and review").click()

    # Review: every check passed; publish. Every earlier step is done and linked.
    page.wait_for_url("**/review/")
    assert page.locator("nav.wizard-steps li.step-done a").count() == 6
    page.wait_for_selector("ul.checks li.passed:has-text('Security type and Hyper-V generation')")
    assert page.locator("ul.checks li.failed").count() == 0
    check_accessibility(page, "wizard-review")
    page.get_by_role("button", name="Request publishing 1.0.0").click()
    page.wait_for_url("**/approvals/*/")
    # The request page was loaded whole (HX-Redirect), not swapped into the wizard's frame.
    page.locator("h1", has_text="1.0.0").wait_for()
    assert page.locator("#wizard").count() == 0
    assert "/review/" not in page.url
    # Four eyes: frank approves (his journey is test_journey_approvals.py).
    approvals.publish_request_approve(actor=frank, request=PublishRequest.objects.get())
    version = GoldImageVersion.objects.get(gold_image__slug="ubuntu-2204")
    assert version.status == "published" and version.security_type == "TrustedLaunch"
    assert version.customize_before[0]["name"] == "harden"
    assert version.distribute[0]["targetRegions"] == [{"name": "eastus"}, {"name": "westeurope", "replicaCount": 2}]
    assert page.console_errors == []
