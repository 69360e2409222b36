"""The auditor's and the admin's journeys, from sign-in to result: an auditor finds a build and
opens its provenance; an admin checks the queues, the worker and the sweep."""

import pytest

from builds import services
from tests import factories
from tests.browser.support import check_accessibility, follow, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def build(alice, bob, web, azure_emulator):
    image = factories.make_gold_image("ubuntu", actor=alice)
    gold = factories.make_gold_version(image, "1.0.0", actor=alice)
    layer_version = factories.make_layer_version(factories.make_layer(web, image, "nginx", actor=bob), actor=bob)
    return services.build_request(actor=bob, gold_version=gold, layer_versions=[layer_version])


def test_an_auditor_opens_a_builds_provenance(live_server, page, dave, build):
    sign_in(page, dave)
    assert page.url.endswith("/audit/")  # an auditor lands on the history
    follow(page, "Builds")
    check_accessibility(page, "build-list")
    follow(page, str(build.uuid)[:8])
    check_accessibility(page, "build-pending")
    assert page.get_by_role("button", name="Cancel build").count() == 0  # auditors only read
    follow(page, "Provenance")
    assert page.url.endswith(f"/audit/builds/{build.uuid}/")
    hashes = page.locator("dd.hash").all_inner_texts()
    assert all(text.startswith(build.template_sha256) for text in hashes)
    assert page.get_by_text("matches").count() >= 2
    check_accessibility(page, "provenance")
    assert page.console_errors == []


def test_an_admin_sees_the_queue_the_worker_and_the_sweep(portal, page, erin):
    sign_in(page, erin)
    follow(page, "Operator")
    assert page.get_by_text("Emulator").first.is_visible()
    workers = page.locator("section[aria-labelledby=workers-heading] tbody tr")
    for _ in range(40):  # the worker process registers itself with Redis a moment after it starts
        if workers.count() and "Last sweep" in page.content():
            break
        page.wait_for_timeout(500)
        page.reload()
    assert "builds" in workers.first.inner_text()
    assert "Last sweep" in page.locator("section[aria-labelledby=sweep-heading]").inner_text()
    check_accessibility(page, "operator")
    assert page.console_errors == []
