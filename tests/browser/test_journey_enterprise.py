"""The enterprise journey in the browser (the issue's proof): a department editor chooses a
private subnet on the layer form, publishes the layer and asks for a build; the build is refused
with the missing Network Contributor role and the exact `az role assignment create` that grants
it; the role is granted through the emulator's control API (Image Builder enforcing
permissions); the editor asks again and the build runs to success on the real worker.
tests/builds/test_enterprise_journey.py is the same journey at service level."""

import re

import pytest
from django.urls import reverse

from builds import approvals
from builds.models import Build, PublishRequest
from tests import factories
from tests.browser.support import check_accessibility, sign_in, submit
from tests.support.emulator import SUBSCRIPTION_ID
from tests.support.workers import enforce_without_network_role, grant

pytestmark = pytest.mark.django_db(transaction=True)
BUILD_URL = re.compile(r".*/builds/[0-9a-f-]{36}/$")
VNET = (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/goldsmith-network/providers/Microsoft.Network/"
        "virtualNetworks/build-vnet")
SUBNET = f"{VNET}/subnets/private-builds"


def test_an_editor_builds_in_a_private_subnet_after_the_missing_role_is_granted(portal, page, alice, bob, web):
    image = factories.make_gold_image("ubuntu-2204-base", actor=alice)
    factories.make_gold_version(image, "1.0.0", actor=alice)
    layer = factories.make_layer(web, image, "intranet", actor=bob)
    factories.make_layer_version(layer, publish=False, actor=bob,
                                 customize=[{"type": "Shell", "name": "mirror", "inline": ["echo internal mirror"]}])
    principal = enforce_without_network_role(portal.emulator)

    sign_in(page, bob)
    page.goto(portal(reverse("builds:layer-version-edit", args=["web", "intranet", "1.0.0"])))
    page.fill("input[name=subnetId]", SUBNET)
    submit(page, "Save details")
    assert page.locator("input[name=subnetId]").input_value() == SUBNET
    check_accessibility(page, "layer-edit-network")
    page.get_by_role("button", name="Publish 1.0.0").click()
    # Four eyes: publishing is a request another person approves (test_journey_approvals.py).
    page.wait_for_url("**/approvals/*/")
    approvals.publish_request_approve(actor=alice, request=PublishRequest.objects.get())
    page.goto(portal(reverse("builds:layer-version", args=["web", "intranet", "1.0.0"])))
    assert SUBNET in page.get_by_text("Builds run in the subnet").inner_text()

    page.get_by_role("button", name="Build intranet 1.0.0").click()
    refused = page.locator(".problems", has_text="The build was refused")
    refused.wait_for()
    fix = f'az role assignment create --assignee {principal} --role "Network Contributor" --scope {VNET}'
    assert fix in refused.inner_text()
    assert "properties.vmProfile.vnetConfig.subnetId" in refused.inner_text()
    check_accessibility(page, "build-refused-permission")
    assert not Build.objects.exists()

    grant(portal.emulator, principal, "Network Contributor", VNET)

    page.get_by_role("button", name="Build intranet 1.0.0").click()
    page.wait_for_url(BUILD_URL)
    page.locator("#build-live[data-state=succeeded]").wait_for(timeout=90_000)
    build = Build.objects.get()
    assert build.state == Build.State.SUCCEEDED
    assert build.template["properties"]["vmProfile"]["vnetConfig"]["subnetId"] == SUBNET
    # The refused request answers 422, which Chromium notes in the console; nothing else may appear.
    assert [error for error in page.console_errors if "status of 422" not in error] == []
