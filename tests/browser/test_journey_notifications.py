"""Bob's notification journey: he subscribes to his department's build failures on his profile,
a build fails against the emulator, the e-mail lands in the sandbox's mailbox (the real SMTP
sink runall starts, portal/mailsink.py), and its link opens the build at its failing step.
"""

import re

import pytest

from portal import mailsink
from tests import factories
from tests.browser.support import sign_in
from tests.browser.test_journey_editor_builds import catalog, open_layer_version, request_build  # noqa: F401
from tests.notify.conftest import free_port

pytestmark = pytest.mark.django_db(transaction=True)
SMTP = "django.core.mail.backends.smtp.EmailBackend"


@pytest.fixture
def mailbox(tmp_path, settings, worker_env, live_server):
    """The sandbox SMTP sink on a free port; this process (the pages) and the worker (sending)
    pointed at it, links in messages at the live server."""
    folder, port = tmp_path / "mail", free_port()
    controller = mailsink.serve(folder, "127.0.0.1", port)
    settings.EMAIL_BACKEND, settings.EMAIL_HOST, settings.EMAIL_PORT = SMTP, "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.NOTIFY_SANDBOX_MAILDIR, settings.NOTIFY_ALLOW_LOOPBACK_HTTP = folder, True
    settings.NOTIFY_BASE_URL = live_server.url
    worker_env.update({"EMAIL_BACKEND": SMTP, "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(port),
                       "EMAIL_USE_TLS": "0", "EMAIL_USE_SSL": "0", "NOTIFY_BASE_URL": live_server.url,
                       "NOTIFY_SANDBOX_MAILDIR": str(folder)})
    try:
        yield folder
    finally:
        controller.stop()


def test_bob_subscribes_to_his_departments_failures_and_the_mail_leads_to_the_failing_step(
        mailbox, portal, page, bob, catalog, settings):  # noqa: F811
    settings.BUILD_TEMPLATE_RETENTION_HOURS = 1
    bob.email = "bob@example.com"
    bob.save()
    factories.make_layer_version(catalog["layer"], "1.0.0", actor=bob, customize=[
        {"type": "Shell", "name": "configure-app", "inline": ["echo configuring", "exit 3"]}])
    sign_in(page, bob)

    page.goto("/profile/notifications/")
    defaults = [box.get_attribute("value") for box in page.locator("input[name=subscription]:checked").all()]
    for value in defaults:
        page.locator(f"input[name=subscription][value='{value}']").uncheck()
    page.locator("input[name=subscription][value='build.failed|department']").check()
    page.get_by_role("button", name="Save my notifications").click()
    page.goto("/profile/notifications/")
    checked = [box.get_attribute("value") for box in page.locator("input[name=subscription]:checked").all()]
    assert checked == ["build.failed|department"]

    open_layer_version(page, "Test layer", "1.0.0")
    request_build(page, "Build nginx 1.0.0")
    build_url = page.url
    page.locator("#build-live[data-state=failed]").wait_for(timeout=90_000)

    page.goto("/sandbox/mail/")
    for _ in range(60):  # the worker fans out and sends within seconds
        if page.locator("article.mail").count():
            break
        page.wait_for_timeout(1000)
        page.reload()
    (article,) = page.locator("article.mail").all()
    assert "bob@example.com" in article.inner_text()
    assert re.search("fail", article.locator("h2").inner_text(), re.IGNORECASE)
    article.locator("a[href*='/builds/']").click()
    page.wait_for_url(re.compile(".*/builds/.*#failing-step$"))
    assert page.url.split("#")[0] == build_url
    assert page.locator("#failing-step").inner_text() == "configure-app"
    assert page.console_errors == []
