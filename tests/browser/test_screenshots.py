"""`make screenshots`: the main pages with the demo data, as PNGs for the README.

Skipped unless GOLDSMITH_SCREENSHOTS names the folder to write to (make screenshots sets it
to docs/screenshots). The data is `seeddemo`'s, plus what a morning of work adds: a newer
gold version, a successful, a failed and a running build, all made by the real worker
against the emulator.
"""

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from builds import demo, services
from builds.models import Build, GoldImageVersion, LayerVersion
from tests.browser.support import sign_in

TARGET = os.environ.get("GOLDSMITH_SCREENSHOTS", "")
pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(not TARGET, reason="set GOLDSMITH_SCREENSHOTS (make screenshots) to render them")]


def wait_for(portal, predicate, timeout=90):
    return portal.emulator.wait_for(predicate, timeout=timeout, interval=0.2)


def shoot(page, name: str, *, full_page: bool = True) -> None:
    folder = Path(TARGET)
    folder.mkdir(parents=True, exist_ok=True)
    page.wait_for_load_state("networkidle") if "/builds/" not in page.url else page.wait_for_timeout(300)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)


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

    page.context.clear_cookies()
    sign_in(page, bob, demo.DEMO_PASSWORD)
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

    page.context.clear_cookies()
    sign_in(page, erin, demo.DEMO_PASSWORD)
    page.goto("/operator/")
    shoot(page, "operator")
