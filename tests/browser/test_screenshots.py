"""`make screenshots`: the main pages with the demo data, as PNGs for the README; and the
layout check: key pages at a desktop width (1280) and a phone width (390) never scroll
sideways, and checkboxes sit on their label's line.

The README's pictures are skipped unless GOLDSMITH_SCREENSHOTS names the folder to write to
(make screenshots sets it to docs/screenshots). The data is `seeddemo`'s, plus what a morning
of work adds: a newer gold version, a successful, a failed and a running build, all made by
the real worker against the emulator. The layout check always runs (on factory rows, without a
worker) and leaves its pictures in test-results/browser/layout/.
"""

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from builds import demo, services
from builds.models import Build, GoldImageVersion, LayerVersion
from portal import audit
from tests import factories
from tests.browser.support import output_dir, sign_in, switch_user
from tests.support import build_rows

TARGET = os.environ.get("GOLDSMITH_SCREENSHOTS", "")
pytestmark = pytest.mark.django_db(transaction=True)
needs_target = pytest.mark.skipif(not TARGET, reason="set GOLDSMITH_SCREENSHOTS (make screenshots) to render them")


def wait_for(portal, predicate, timeout=90):
    return portal.emulator.wait_for(predicate, timeout=timeout, interval=0.2)


def shoot(page, name: str, *, full_page: bool = True) -> None:
    folder = Path(TARGET)
    folder.mkdir(parents=True, exist_ok=True)
    page.wait_for_load_state("networkidle") if "/builds/" not in page.url else page.wait_for_timeout(300)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)


@needs_target
def test_render_the_main_pages(portal, browser, page, settings):
    settings.BUILD_TEMPLATE_RETENTION_HOURS = 1  # keep the failed build's log readable (see the failing journey)
    demo.seed_demo()
    users = {user.username: user for user in get_user_model().objects.all()}
    alice, bob, erin = users["alice"], users["bob"], users["erin"]
    ubuntu = GoldImageVersion.objects.get(gold_image__slug="ubuntu-2204-base", version="1.0.0")
    newer = services.gold_version_create(actor=alice, gold_image=ubuntu.gold_image, version="1.1.0", based_on=ubuntu,
                                         changelog="Bigger build VM; audit step reports CIS level 2",
                                         vm_profile={"vmSize": "Standard_D4ds_v5", "osDiskSizeGB": 64},
                                         customize_after=[{"type": "Shell", "name": "cis-audit",
                                                           "inline": ["echo 'CIS level 2 checks passed'"]}])
    newer = services.gold_version_publish(actor=alice, gold_version=newer, reason="monthly baseline", lookups=False)
    nginx = LayerVersion.objects.get(layer__slug="nginx")
    broken = services.layer_version_create(actor=bob, layer=nginx.layer, version="1.1.0", based_on=nginx,
                                           customize=[*nginx.customize, {"type": "Shell", "name": "load-site-config",
                                                                         "inline": ["test -f /etc/nginx/site.conf",
                                                                                    "exit 2"]}])
    broken = services.layer_version_publish(actor=bob, layer_version=broken)

    good = services.build_request(actor=bob, gold_version=ubuntu, layer_versions=[nginx])
    bad = services.build_request(actor=bob, gold_version=newer, layer_versions=[broken])
    wait_for(portal, lambda: all(Build.objects.get(pk=b.pk).is_terminal for b in (good, bad)))
    portal.emulator.set_time_scale(20)  # one build stays in progress while the pictures are taken
    running = services.build_request(actor=bob, gold_version=newer, layer_versions=[nginx])
    wait_for(portal, lambda: Build.objects.get(pk=running.pk).sub_state.lower() in ("customizing", "building"))

    sign_in(page, alice, demo.DEMO_PASSWORD)
    shoot(page, "home-security")
    page.goto("/gold/ubuntu-2204-base/")
    shoot(page, "gold-image")
    page.goto("/gold/ubuntu-2204-base/v/1.1.0/")
    shoot(page, "gold-version")
    page.goto("/gold/ubuntu-2204-base/diff/?from=1.0.0&to=1.1.0")
    shoot(page, "gold-diff")
    page.goto("/gold/ubuntu-2204-base/lineage/")
    shoot(page, "lineage")
    page.goto("/builds/")
    shoot(page, "builds")

    switch_user(page, bob, demo.DEMO_PASSWORD)
    shoot(page, "home-editor")
    page.goto("/layers/web/nginx/v/1.0.0/")
    page.select_option("#preview-gold", "1.1.0")
    page.get_by_role("button", name="Preview the template").click()
    page.locator("#preview pre").wait_for()
    shoot(page, "layer-preview")
    page.goto(f"/builds/{good.uuid}/")
    shoot(page, "build-succeeded")
    page.goto(f"/builds/{bad.uuid}/")
    page.locator("#failing-step").wait_for()
    shoot(page, "build-failed")
    page.goto(f"/builds/{running.uuid}/")
    shoot(page, "build-running")

    phone = browser.new_context(base_url=page.url.split("/builds/")[0], viewport={"width": 390, "height": 844},
                                device_scale_factor=2, is_mobile=True, has_touch=True, timezone_id="Europe/Paris")
    try:
        mobile = phone.new_page()
        sign_in(mobile, bob, demo.DEMO_PASSWORD)
        mobile.goto(f"/builds/{bad.uuid}/")
        mobile.locator("#failing-step").wait_for()
        shoot(mobile, "phone-build-failed", full_page=False)
    finally:
        phone.close()

    switch_user(page, erin, demo.DEMO_PASSWORD)
    page.goto("/operator/")
    shoot(page, "operator")


# --- Layout at a desktop and a phone width ----------------------------------------------------

WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def horizontal_overflow(page) -> int:
    """How many pixels the document is wider than the window (0: nothing scrolls sideways)."""
    return page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")


def checkboxes_off_their_label_line(page) -> list[str]:
    """Names of the checkboxes whose label is not beside them: the label's first line of text on
    the box's line (vertical centres within 6 px of each other) and to its right."""
    return page.evaluate("""() => [...document.querySelectorAll('input[type=checkbox]')].filter(box => {
        const label = box.id && document.querySelector(`label[for="${box.id}"]`);
        if (!label || !box.offsetParent) return false;
        const text = document.createRange();
        text.selectNodeContents(label);
        const b = box.getBoundingClientRect(), l = text.getClientRects()[0];
        const sameLine = Math.abs((b.top + b.bottom) / 2 - (l.top + l.bottom) / 2) <= 6;
        return !(sameLine && l.left >= b.right);
    }).map(box => box.name)""")


@pytest.fixture
def layout_world(alice, bob, carol, web):
    image = factories.make_gold_image("ubuntu", actor=alice)
    version = factories.make_gold_version(image, "1.0.0", actor=alice)
    layer = factories.make_layer(web, image, "nginx", actor=bob)
    layer_version = factories.make_layer_version(layer, actor=bob)
    failed = build_rows.failed(version, [layer_version], requested_by=bob, log_uri="")
    audit.record("access.denied", actor=carol, obj=layer, department=web, outcome="denied",
                 changes={"reason": "layer of another department", "status": 404})
    return {"build": failed}


def test_key_pages_fit_desktop_and_phone_widths(live_server, browser, alice, layout_world):
    folder = output_dir("layout")  # for people to look at; not the README's pictures
    build = layout_world["build"]
    pages = {"home": "/", "gold-list": "/gold/", "gold-version": "/gold/ubuntu/v/1.0.0/", "layers": "/layers/",
             "builds": "/builds/", "build-failed": f"/builds/{build.uuid}/", "history": "/audit/",
             "provenance": f"/audit/builds/{build.uuid}/", "check-template": "/check/", "policy": "/policy/",
             "wizard-start": "/wizard/", "not-found": "/no-such-page/"}
    problems = []
    for size, viewport in WIDTHS.items():
        context = browser.new_context(base_url=live_server.url, viewport=viewport, timezone_id="Europe/Paris",
                                      locale="en-GB", is_mobile=size == "phone", has_touch=size == "phone")
        try:
            page = context.new_page()
            sign_in(page, alice)
            for name, path in pages.items():
                page.goto(path)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(folder / f"{size}-{name}.png"), full_page=True)
                overflow = horizontal_overflow(page)
                if overflow > 0:
                    problems.append(f"{size} {path}: {overflow}px wider than the window")
                off = checkboxes_off_their_label_line(page)
                if off:
                    problems.append(f"{size} {path}: checkboxes not beside their labels: {off}")
            # The forms with checkboxes do have them (the check above is not vacuous).
            page.goto("/policy/")
            assert page.locator(".field.check input[type=checkbox]").count() >= 2
        finally:
            context.close()
    assert problems == []
