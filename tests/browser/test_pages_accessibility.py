"""Every page of the portal, as each role sees it, passes axe-core without serious or critical
violations (the journeys check the pages on their way; this covers the rest in one pass)."""

import pytest

from builds import services
from tests import factories
from tests.browser.support import check_accessibility, sign_in
from tests.support import build_rows

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_remaining_pages_have_no_serious_accessibility_violations(live_server, page, alice, bob, web):
    image = factories.make_gold_image("ubuntu", actor=alice)
    old = factories.make_gold_version(image, "1.0.0", actor=alice)
    factories.make_gold_version(image, "1.1.0", actor=alice, publish=False)
    layer = factories.make_layer(web, image, "nginx", actor=bob)
    layer_version = factories.make_layer_version(layer, actor=bob)
    failed = build_rows.failed(old, [layer_version], requested_by=bob, log_uri="")
    services.gold_version_deprecate(actor=alice, gold_version=old, reason="superseded")

    sign_in(page, alice)
    for path in ("/gold/ubuntu/", "/gold/ubuntu/v/1.1.0/", "/gold/ubuntu/v/1.1.0/publish/",
                 "/gold/ubuntu/v/1.0.0/revoke/", "/gold/ubuntu/diff/?from=1.0.0&to=1.1.0&mode=unified",
                 "/layers/", "/layers/web/nginx/", "/builds/?state=failed&sort=-requester",
                 f"/builds/{failed.uuid}/log/", "/layers/web/nginx/v/1.0.0/preview/?gold=1.0.0"):
        page.goto(path)
        check_accessibility(page, path.strip("/").replace("/", "-").split("?")[0])
    page.goto("/gold/ubuntu/v/1.0.0/revoke/")
    page.fill("textarea[name=reason]", " ")
    page.get_by_role("button", name="Revoke 1.0.0").click()
    page.locator("#reason-error").wait_for()
    check_accessibility(page, "revoke-with-error")
    # The refused form answers 422, which Chromium notes in the console; nothing else may appear.
    assert [error for error in page.console_errors if "status of 422" not in error] == []
