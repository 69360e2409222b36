"""The API's browsable docs (Swagger UI, drf-spectacular-sidecar) render in Chromium under the
portal's Content-Security-Policy, and "Try it out" works with the signed-in session (reads, and
a POST that carries the CSRF token)."""

import pytest

from tests import factories
from tests.browser.support import sign_in

pytestmark = pytest.mark.django_db(transaction=True)

LIVE_STATUS = ".live-responses-table tbody .response-col_status"
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""


def test_the_api_docs_render_and_try_requests_with_the_session(live_server, page, alice, bob):
    factories.make_gold_version(factories.make_gold_image("ubuntu", actor=alice), "1.0.0", actor=alice)
    page.add_init_script(WATCH_CSP)  # run through DevTools, before the page's own scripts
    external = []
    page.on("request", lambda request: external.append(request.url)
            if not request.url.startswith(live_server.url) and not request.url.startswith("data:") else None)
    sign_in(page, bob)

    page.goto("/api/v1/docs/")
    page.locator(".swagger-ui .info .title").wait_for()
    assert "Goldsmith API" in page.locator(".swagger-ui .info .title").inner_text()

    # A read with the session cookie.
    page.locator("#operations-gold_images-gold_images_list .opblock-summary").click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    reads = page.locator("#operations-gold_images-gold_images_list")
    reads.locator(LIVE_STATUS).wait_for()
    assert reads.locator(LIVE_STATUS).inner_text().strip() == "200"
    assert '"slug": "ubuntu"' in reads.locator(".live-responses-table .microlight").first.inner_text()

    # A POST: Swagger UI sends the CSRF token the docs view gave it.
    page.locator("#operations-templates-templates_check .opblock-summary").click()
    panel = page.locator("#operations-templates-templates_check")
    panel.get_by_role("button", name="Try it out").click()
    panel.locator("textarea.body-param__text").fill('{"location": "eastus", "properties": {}}')
    panel.get_by_role("button", name="Execute").click()
    panel.locator(LIVE_STATUS).wait_for()
    assert panel.locator(LIVE_STATUS).inner_text().strip() == "200"

    assert page.evaluate("() => window.__cspViolations") == []
    assert external == [], "the docs must not load anything from another host"
    assert page.console_errors == []
