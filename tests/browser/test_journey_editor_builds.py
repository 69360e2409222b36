"""An editor's journeys, from sign-in to result: create a layer through the layer forms, preview
and build it, and watch it succeed live; see a failing build point at its failing step;
cancel a running build. The last two start from a layer made with the factories.
"""

import re

import pytest

from builds import approvals
from builds.models import Build, PublishRequest
from tests import factories
from tests.browser.support import assert_not_reloaded, check_accessibility, follow, mark_page, sign_in, submit

pytestmark = pytest.mark.django_db(transaction=True)
BUILD_URL = re.compile(r".*/builds/[0-9a-f-]{36}/$")


@pytest.fixture
def catalog(alice, bob, web):
    image = factories.make_gold_image("ubuntu-2204-base", actor=alice)
    gold = factories.make_gold_version(image, "1.0.0", actor=alice)
    layer = factories.make_layer(web, image, "nginx", actor=bob)
    return {"image": image, "gold": gold, "layer": layer}


def open_layer_version(page, layer_name: str, version: str) -> None:
    page.get_by_role("link", name="Layers", exact=True).click()
    page.get_by_role("link", name=layer_name).click()
    page.get_by_role("link", name=version, exact=True).click()


def request_build(page, label: str) -> None:
    page.get_by_role("button", name=label).click()
    page.wait_for_url(BUILD_URL)


def test_an_editor_creates_previews_and_builds_a_layer_and_watches_it_succeed_without_reloading(
        portal, page, alice, bob, catalog):
    sign_in(page, bob)
    check_accessibility(page, "editor-home")
    follow(page, "New layer")
    page.select_option("select[name=gold_image]", "ubuntu-2204-base")
    page.fill("input[name=slug]", "cache")
    page.fill("input[name=name]", "Redis cache")
    submit(page, "Create and edit version 1.0.0")
    follow(page, "Shell")
    page.fill("#editor input[name=name]", "install-redis")
    page.fill("#editor textarea[name=inline]", "sudo apt-get install -y redis-server")
    submit(page, "Save step")
    page.get_by_role("button", name="Publish 1.0.0").click()
    # Four eyes: publishing is a request another person approves (test_journey_approvals.py).
    page.wait_for_url("**/approvals/*/")
    approvals.publish_request_approve(actor=alice, request=PublishRequest.objects.get())
    page.goto("/layers/web/cache/v/1.0.0/")
    assert page.locator("ol.steps").get_by_text("install-redis").is_visible()
    check_accessibility(page, "layer-version")

    page.select_option("#preview-gold", "1.0.0")
    page.get_by_role("button", name="Preview the template").click()
    preview = page.locator("#preview")
    preview.get_by_text("passes every template rule").wait_for()
    assert "apt-get install -y redis-server" in preview.locator("pre").inner_text()
    assert "/preview/" not in page.url  # htmx swapped the preview in; the page stayed

    request_build(page, "Build cache 1.0.0")
    mark_page(page)
    live = page.locator("#build-live")
    assert live.get_attribute("data-state") in ("pending", "submitting", "running")
    assert "follows it live" in page.locator("#messages").inner_text()
    page.locator("#build-live[data-state=succeeded]").wait_for(timeout=90_000)
    assert_not_reloaded(page)
    # Outside the status block too: nothing still waits for Image Builder to start.
    assert page.locator("#source-resolved").inner_text() != "known once Image Builder starts"
    assert "known once Image Builder starts" not in page.locator("#staging-group").inner_text()
    page.locator("#staging-group", has_text="deleted with the template").wait_for()  # the clean-up, seen live
    assert page.locator("#messages").inner_text() == ""
    assert_not_reloaded(page)
    assert page.locator("#build-state").inner_text().startswith("Succeeded")
    bars = page.locator("svg g.phase[data-outcome=done]")
    assert bars.count() >= 4
    output = page.locator("#build-live table code").first
    assert output.inner_text().startswith("/subscriptions/")
    assert page.get_by_role("button", name="Copy id").is_visible()
    check_accessibility(page, "build-succeeded")
    build = Build.objects.get()
    assert build.state == Build.State.SUCCEEDED and build.requested_by == bob
    assert page.console_errors == []


def test_a_failing_build_shows_the_failing_step_and_azures_message(portal, page, bob, catalog, settings):
    # Image Builder deletes the log with the template; with the default retention of 0 the
    # sweep deletes it as soon as the build ends, before the page's next poll could read it.
    settings.BUILD_TEMPLATE_RETENTION_HOURS = 1
    factories.make_layer_version(catalog["layer"], "1.0.0", actor=bob, customize=[
        {"type": "Shell", "name": "configure-app", "inline": ["echo configuring", "exit 3"]}])
    sign_in(page, bob)
    open_layer_version(page, "Test layer", "1.0.0")
    request_build(page, "Build nginx 1.0.0")
    page.locator("#build-live[data-state=failed]").wait_for(timeout=90_000)
    assert page.locator("#failing-step").inner_text() == "configure-app"
    assert page.locator("#error-code").inner_text() == "PackerBuildFailed"
    assert "exit status: 3" in page.locator("#build-error").inner_text()
    assert page.locator("svg g.phase[data-outcome=failed]").get_attribute("data-phase") == "Customizing"
    check_accessibility(page, "build-failed")

    page.get_by_role("link", name=re.compile("Open the build log")).click()
    # The link lands on the failing line (marked apart from the other error lines) and scrolls to it.
    error_line = page.locator("pre.log .failing-line")
    assert "non-zero exit status: 3" in error_line.inner_text()
    assert page.url.endswith("#" + error_line.get_attribute("id"))
    assert page.get_by_text("Failing step:").is_visible()
    assert page.console_errors == []


def test_an_editor_cancels_a_running_build(portal, page, bob, catalog):
    factories.make_layer_version(catalog["layer"], "1.0.0", actor=bob)
    portal.emulator.set_time_scale(30)  # a build of minutes, so there is time to cancel it
    sign_in(page, bob)
    open_layer_version(page, "Test layer", "1.0.0")
    request_build(page, "Build nginx 1.0.0")
    mark_page(page)
    # Cancel once the build VM is being built (a cancel while Image Builder still queues the run
    # is reported to the orchestration work: the run then went on to succeed).
    page.locator("#build-live[data-state=running][data-sub-state=building]").wait_for(timeout=60_000)
    page.get_by_role("button", name="Cancel build").click()
    page.locator("#build-live[data-state=canceled]").wait_for(timeout=90_000)
    assert_not_reloaded(page)
    assert "follows it live" not in page.locator("#messages").inner_text()
    assert "known once Image Builder starts" not in page.locator("main").inner_text()
    assert page.get_by_role("button", name="Cancel build").count() == 0
    assert page.get_by_role("button", name="Rebuild").is_visible()
    assert Build.objects.get().state == Build.State.CANCELED
    assert page.console_errors == []
