"""Journey: signing in with Microsoft Entra ID (the emulator's login host) in a real browser.

A person opens the sign-in page, chooses "Sign in with Microsoft", picks their account on the
emulator's sign-in page and lands on Goldsmith's home page with the role their app role maps
to; somebody without an app role gets the friendly refusal page and no session. The emulator
serves HTTPS with its own CA, so this browser context accepts its certificate.
"""

from __future__ import annotations

import pytest

from portal import entra
from tests.browser.support import check_accessibility
from tests.support.emulator import TENANT_ID


@pytest.fixture
def entra_portal(live_server, emulator, settings, web, data_dept):
    settings.ENTRA_CLIENT_ID = "goldsmith-portal"
    settings.ENTRA_TENANT_ID = TENANT_ID
    settings.ENTRA_CLIENT_SECRET = "emulator-portal-secret"
    settings.ENTRA_AUTHORITY_HOST = emulator.base_url
    settings.ENTRA_CA_BUNDLE = str(emulator.ca_path)
    settings.ENTRA_ENABLED = True
    policy = dict(settings.CONTENT_SECURITY_POLICY)
    policy["form-action"] = ["'self'", emulator.base_url]
    settings.CONTENT_SECURITY_POLICY = policy
    entra.default_role_mappings()
    return live_server


@pytest.fixture
def entra_page(browser, entra_portal):
    context = browser.new_context(base_url=entra_portal.url, ignore_https_errors=True,
                                  viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    # A missing resource is reported by URL below (the emulator's page has no favicon: not ours).
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource") else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda response: errors.append(f"{response.status} {response.url}")
            if response.status >= 400 and response.url.startswith(entra_portal.url) else None)
    page.console_errors = errors
    yield page
    context.close()


def choose_account(page, username: str) -> None:
    page.goto("/login/")
    page.get_by_role("link", name="Sign in with Microsoft").click()
    page.locator(f'form:has(input[name=username][value="{username}"]) button').click()


def test_a_person_signs_in_with_entra_and_lands_with_their_role(entra_page, entra_portal):
    page = entra_page
    page.goto("/login/")
    check_accessibility(page, "sign-in with Entra")

    choose_account(page, "bob@contoso.example")

    page.wait_for_url(lambda url: url.startswith(entra_portal.url) and "/auth/" not in url and "/login/" not in url)
    page.goto("/profile/")
    assert page.get_by_text("Department editor in Web Platform").is_visible()
    assert page.get_by_text("with Microsoft Entra ID").is_visible()

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login/?signed_out=1")
    assert page.get_by_text("You have signed out.").is_visible()
    page.goto("/profile/")
    assert "/login/" in page.url
    assert page.console_errors == []


def test_an_account_without_a_goldsmith_role_is_refused_kindly(entra_page):
    page = entra_page
    choose_account(page, "mallory@contoso.example")

    page.wait_for_url("**/auth/entra/callback/**")
    assert page.get_by_role("heading", name="We could not sign you in").is_visible()
    assert page.get_by_text("Your account has no Goldsmith role").is_visible()
    check_accessibility(page, "sign-in refused")
    page.goto("/profile/")
    assert "/login/" in page.url
