"""The build page's live log panel in Chromium, on a build running in the emulator that writes
its Packer log into Azurite as its clock moves: lines arrive without a reload while following,
stop while paused, and the log page's step sections fold."""

from __future__ import annotations

import time

import pytest

from builds.models import Build
from tests.browser.support import assert_not_reloaded, mark_page, sign_in
from tests.builds.test_buildlogs import BEFORE_CUSTOMIZING, request_build, running, shell
from tests.support.workers import run_sweeps

pytestmark = pytest.mark.django_db(transaction=True)


def live_lines(page) -> list[str]:
    return page.locator("#live-log > span:not(.muted)").all_inner_texts()


def test_the_live_panel_follows_pauses_and_its_steps_fold(azure_storage, live_server, page, alice, monkeypatch):
    monkeypatch.setattr("web.logpanel.POLL_SECONDS", 1)
    azure_storage.settings(provision_seconds=0)
    azure_storage.freeze()
    build = running(azure_storage, request_build(alice, [shell("first", "echo alpha-one"),
                                                         shell("second", "echo bravo-two"),
                                                         shell("third", "echo charlie-three")]))
    azure_storage.advance_simulated(BEFORE_CUSTOMIZING + 60)
    run_sweeps(lambda: Build.objects.get(pk=build.pk).sub_state == "Customizing", timeout=20)

    sign_in(page, alice)
    page.goto(f"/builds/{build.uuid}/")
    mark_page(page)
    page.locator("#live-log span", has_text="echo alpha-one").first.wait_for()
    assert not any("bravo-two" in line for line in live_lines(page))

    # Following: the second step's lines arrive without a reload.
    azure_storage.advance_simulated(150)
    page.locator("#live-log span", has_text="echo bravo-two").first.wait_for(timeout=15_000)
    assert_not_reloaded(page)

    # Paused: no poller, and nothing new however far the build goes.
    page.get_by_role("link", name="Pause").click()
    page.wait_for_url("**follow=0**")
    assert page.locator("[data-log-poll]").count() == 0
    before = live_lines(page)
    azure_storage.advance_simulated(150)
    time.sleep(3)  # three polling periods
    assert live_lines(page) == before
    assert not any("charlie-three" in line for line in before)
    page.get_by_role("link", name="Follow").click()
    page.locator("#live-log span", has_text="echo charlie-three").first.wait_for(timeout=15_000)

    # The whole log, one foldable section per step.
    page.get_by_role("link", name="Open the whole log").click()
    step = page.locator("details.log-section", has=page.locator("summary", has_text="first")).first
    assert step.evaluate("element => element.open")
    assert step.locator("pre").is_visible()
    step.locator("summary").click()
    assert not step.evaluate("element => element.open")
    assert not step.locator("pre").is_visible()
    assert page.console_errors == []
