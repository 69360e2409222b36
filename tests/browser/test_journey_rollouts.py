"""The monthly cycle, in the browser: alice asks for gold 1.1.0 to be published and frank approves
it (four eyes is the only publishing path: the approval rules have no exception for the security
team, and break-glass is an administrator's emergency, not a release). From the version page alice
plans the rollout: carol's layer and two of bob's are to be built on 1.1.0, bob's third layer
accepts only ~1.0 and is listed as needing action; one click prepares its draft on 1.1.0. She
starts it with a canary of 1, waves of 2 and a threshold of 40%: the canary (carol's layer)
succeeds, one of bob's layers fails in its customizer step, so its wave fails 50% and the
rollout stops, saying which layer failed in which step. Bob's department publishes the fix
(the department's own work, made with the factories), alice resumes, the failed layer is built
again on the fix and the rollout succeeds. Bob sees only his department's entries.

Everything runs for real: the live server, an RQ worker process driving the rollout and the
builds against the emulator, the sweep; the rollout page updates itself (htmx), never reloaded.
"""

from __future__ import annotations

import re

import pytest

from builds.models import Build, LayerVersion, Rollout, RolloutItem
from tests import factories
from tests.browser.support import (
    approve_publishing,
    assert_not_reloaded,
    check_accessibility,
    mark_page,
    request_publishing,
    sign_in,
    switch_user,
)

pytestmark = pytest.mark.django_db(transaction=True)
FAILING = [{"type": "Shell", "name": "configure-front", "inline": ["echo configuring", "exit 3"]}]
FIXED = [{"type": "Shell", "name": "configure-front", "inline": ["echo configuring"]}]
LIVE = 60_000  # ms: the rollout's builds run on the emulator at a high time scale, each in seconds


def caption(page, text: str):
    return page.locator("#rollout-live caption", has_text=text)


def test_a_rollout_rebuilds_every_layer_in_waves_stops_at_the_threshold_and_resumes_after_the_fix(
        portal, page, alice, frank, bob, carol, web, data_dept, monkeypatch):
    portal.emulator.set_time_scale(20000)
    monkeypatch.setattr("web.views_rollouts.POLL_SECONDS", 1)
    image = factories.make_gold_image("ubuntu", actor=alice)
    factories.make_gold_version(image, "1.0.0", actor=alice)
    new = factories.make_gold_version(image, "1.1.0", actor=alice, publish=False)
    etl = factories.make_layer(data_dept, image, "etl", actor=carol)
    factories.make_layer_version(etl, "1.0.0", accepts=">=1.0, <2.0", actor=carol)
    api = factories.make_layer(web, image, "api", actor=bob)
    factories.make_layer_version(api, "1.0.0", accepts=">=1.0, <2.0", actor=bob)
    front = factories.make_layer(web, image, "front", actor=bob)
    factories.make_layer_version(front, "1.0.0", accepts="^1", actor=bob, customize=FAILING)
    cache = factories.make_layer(web, image, "cache", actor=bob)
    factories.make_layer_version(cache, "1.0.0", accepts="~1.0", actor=bob)

    # alice asks for 1.1.0 to be published; frank approves from his home page.
    sign_in(page, alice)
    page.goto("/gold/ubuntu/v/1.1.0/")
    request_publishing(page, "1.1.0", "kernel fix for CVE-2026-1234")
    approve_publishing(page, frank, "ubuntu@1.1.0")
    new.refresh_from_db()
    assert new.status == "published"

    # alice plans the rollout from the version page: canary 1, then waves of 2, stop above 40%.
    switch_user(page, alice)
    page.goto("/gold/ubuntu/v/1.1.0/")
    page.get_by_role("link", name="Plan a rollout…").click()
    assert page.get_by_label("Gold image").input_value() == "ubuntu"
    assert page.get_by_label("Version").input_value() == "1.1.0"
    page.get_by_label("Canary wave").fill("1")
    page.get_by_label("Wave size").fill("2")
    page.get_by_label("Stop above failure rate").fill("0.4")
    page.get_by_role("button", name="Show the plan").click()
    page.get_by_role("heading", name="Rollout of ubuntu@1.1.0").wait_for()
    rollout = Rollout.objects.get()
    assert rollout.state == Rollout.State.PLANNED
    assert Build.objects.count() == 0  # nothing is built before she starts it
    live = page.locator("#rollout-live")
    assert "Planned" in live.inner_text()
    assert "3 builds in 2 waves (canary 1, then 2 per wave)" in live.inner_text()
    assert "build-hours" in live.inner_text()
    canary, wave_1 = live.locator("table").nth(0), live.locator("table").nth(1)
    assert caption(page, "Canary: pending").is_visible()
    assert canary.get_by_role("cell", name="data/etl@1.0.0").is_visible()
    assert wave_1.get_by_role("cell", name="web/api@1.0.0").is_visible()
    assert wave_1.get_by_role("cell", name="web/front@1.0.0").is_visible()
    needs = live.locator("table", has=page.locator("caption", has_text="must publish a new layer version"))
    assert needs.get_by_role("cell", name="web/cache@1.0.0").is_visible()
    assert needs.get_by_role("cell", name="~1.0").is_visible()
    check_accessibility(page, "rollout-planned")

    # One click prepares bob's draft, rebased on 1.1.0, for his department to review and publish.
    page.get_by_role("button", name="Prepare a draft on 1.1.0").click()
    page.get_by_text("Draft web/cache@1.1.0 prepared").wait_for()
    assert needs.get_by_role("cell", name="web/cache@1.1.0 (draft)").is_visible()
    draft = LayerVersion.objects.get(layer=cache, version="1.1.0")
    assert draft.status == LayerVersion.Status.DRAFT
    assert draft.accepts == "~1.0 || ^1"  # widened to accept 1.1.0, the steps unchanged
    assert draft.customize == LayerVersion.objects.get(layer=cache, version="1.0.0").customize
    assert draft.changelog.startswith("Rebased on ubuntu@1.1.0")
    assert rollout.items.get(kind=RolloutItem.Kind.NEEDS_ACTION).draft == draft

    # She starts it; the canary succeeds, then bob's front layer fails its customizer step and
    # its wave (1 of 2 failed: 50%) stops the rollout. The page follows without a reload.
    page.get_by_role("button", name="Start").click()
    page.get_by_text("State: Running").wait_for()
    mark_page(page)
    caption(page, "Canary: succeeded").wait_for(timeout=LIVE)
    page.get_by_text("State: Stopped at the failure threshold").wait_for(timeout=LIVE)
    assert_not_reloaded(page)
    assert caption(page, "Wave 1: failed (50% of its builds failed)").is_visible()
    assert page.get_by_text("1 of 2 builds of the wave 1 failed (50%), above the threshold of 40%.").is_visible()
    failed_row = wave_1.locator("tr", has_text="web/front@1.0.0")
    assert re.search(r"\bfailed\b", failed_row.locator("td").nth(1).inner_text())
    assert "step configure-front" in failed_row.locator("td").nth(3).inner_text()
    assert wave_1.locator("tr", has_text="web/api@1.0.0").locator("td").nth(1).inner_text() == "succeeded"
    failed_build = rollout.items.get(layer=front).build
    assert failed_row.get_by_role("link").get_attribute("href") == f"/builds/{failed_build.uuid}/"
    assert page.get_by_role("button", name="Resume").is_visible()  # the actions follow the state too
    assert not page.get_by_role("button", name="Pause").count()
    check_accessibility(page, "rollout-stopped")

    # Bob's department publishes the fix; alice resumes: only the failed layer is built again.
    factories.make_layer_version(front, "1.1.0", accepts="^1", actor=bob, customize=FIXED)
    page.get_by_role("button", name="Resume").click()
    page.get_by_text("State: Succeeded").wait_for(timeout=LIVE)
    retried = wave_1.locator("tr", has_text="web/front@1.1.0 (attempt 2)")
    assert retried.locator("td").nth(1).inner_text() == "succeeded"
    assert caption(page, "Wave 1: succeeded (0% of its builds failed)").is_visible()
    rollout.refresh_from_db()
    assert rollout.state == Rollout.State.SUCCEEDED
    assert Build.objects.count() == 4  # three layers, and the fixed one once more
    assert Build.objects.filter(state=Build.State.SUCCEEDED).count() == 3

    # Bob sees his department's entries, not carol's.
    switch_user(page, bob)
    page.get_by_role("link", name="Rollouts").click()
    page.get_by_role("link", name="ubuntu@1.1.0").click()
    live = page.locator("#rollout-live")
    assert "web/front@1.1.0" in live.inner_text()
    assert "web/cache@1.1.0 (draft)" in live.inner_text()
    assert "data/etl" not in live.inner_text()
    assert live.get_by_text("No entries of yours in this wave.").is_visible()
    assert not page.get_by_role("button", name="Resume").count()
    check_accessibility(page, "rollout-editor")
    assert page.console_errors == []
    assert portal.sweeper.errors == []
