"""Journey: signing in with Microsoft Entra ID (the emulator's login host) in a real browser.

A person opens the sign-in page, chooses "Sign in with Microsoft", picks their account on the
emulator's sign-in page and lands on Goldsmith's home page with the role their app role maps
to; somebody without an app role gets the friendly refusal page and no session.

The browser is a new user's: a fresh Chromium context that trusts nothing but the system's
CAs and ignores no certificate error. The emulator is started exactly as `make run` starts it
(runall's `emulator_command`): its sign-in and sign-out pages are on plain-HTTP loopback, which
Chromium treats as secure, while the portal reaches the token endpoint, keys and discovery over
HTTPS and verifies the emulator's certificate against its CA. The browser never opens the
emulator's HTTPS address, which it could not do without a certificate warning.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache

from portal import entra
from portal.management.commands.runall import emulator_command, emulator_url, entra_defaults
from tests.browser.support import check_accessibility
from tests.support.emulator import TENANT_ID, EmulatorHandle, EmulatorProcess


class RunallEmulator(EmulatorProcess):
    """`python -m emulator` with runall's own command line (on free ports)."""

    def __init__(self, data_dir: Path, port: int, browser_port: int):
        super().__init__(data_dir, port=port)
        self.browser_port = browser_port

    @property
    def command(self) -> list[str]:
        return emulator_command(self.data_dir, self.port, self.browser_port)

    @property
    def browser_url(self) -> str:
        return f"http://127.0.0.1:{self.browser_port}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def sandbox_emulator(tmp_path_factory):
    process = RunallEmulator(tmp_path_factory.mktemp("entra-emulator"), free_port(), free_port()).start()
    try:
        assert any(process.browser_url in line for line in process.output), process.output
        yield process
    finally:
        process.stop()


@pytest.fixture
def entra_portal(live_server, sandbox_emulator, settings, web, data_dept):
    """The portal with runall's Entra settings, the form-action policy settings.py derives for them."""
    handle = EmulatorHandle(sandbox_emulator.base_url, sandbox_emulator.ca_path, sandbox_emulator)
    handle.reset()
    settings.ENTRA_CLIENT_ID = "goldsmith-portal"
    settings.ENTRA_TENANT_ID = TENANT_ID
    settings.ENTRA_CLIENT_SECRET = "emulator-portal-secret"
    settings.ENTRA_AUTHORITY_HOST = sandbox_emulator.base_url
    settings.ENTRA_CA_BUNDLE = str(sandbox_emulator.ca_path)  # the server side keeps verifying TLS
    settings.ENTRA_ENABLED = True
    policy = dict(settings.CONTENT_SECURITY_POLICY)
    policy["form-action"] = ["'self'", sandbox_emulator.base_url, sandbox_emulator.browser_url]
    settings.CONTENT_SECURITY_POLICY = policy
    cache.delete(f"entra:discovery:{entra.authority()}")
    entra.default_role_mappings()
    return live_server


@pytest.fixture
def entra_page(browser, entra_portal, sandbox_emulator):
    """A fresh context as a new user has it: no ignore_https_errors, no extra certificates."""
    context = browser.new_context(base_url=entra_portal.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    # A missing resource is reported by URL below (the emulator's page has no favicon: not ours).
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource") else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda response: errors.append(f"{response.status} {response.url}")
            if response.status >= 400 and response.url.startswith(entra_portal.url) else None)
    # A request the browser dropped because the page navigated on (the favicon of a page left at
    # once, say) is ERR_ABORTED; a certificate or connection failure is what counts.
    page.on("requestfailed", lambda request: errors.append(f"failed {request.url}: {request.failure}")
            if "ERR_ABORTED" not in (request.failure or "") else None)
    page.console_errors = errors
    page.visited = []
    page.on("request", lambda request: page.visited.append(request.url))
    yield page
    context.close()


def choose_account(page, sandbox_emulator, username: str) -> None:
    page.goto("/login/")
    page.get_by_role("link", name="Sign in with Microsoft").click()
    page.wait_for_url(f"{sandbox_emulator.browser_url}/{TENANT_ID}/oauth2/v2.0/authorize?**")
    page.locator(f'form:has(input[name=username][value="{username}"]) button').click()


def test_a_new_user_signs_in_with_entra_without_a_certificate_warning(entra_page, entra_portal, sandbox_emulator):
    page = entra_page
    page.goto("/login/")
    check_accessibility(page, "sign-in with Entra")

    choose_account(page, sandbox_emulator, "bob@contoso.example")

    page.wait_for_url(lambda url: url.startswith(entra_portal.url) and "/auth/" not in url and "/login/" not in url)
    page.goto("/profile/")
    assert page.get_by_text("Department editor in Web Platform").is_visible()
    assert page.get_by_text("with Microsoft Entra ID").is_visible()

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login/?signed_out=1")
    assert page.get_by_text("You have signed out.").is_visible()
    page.goto("/profile/")
    assert "/login/" in page.url
    assert f"{sandbox_emulator.browser_url}/{TENANT_ID}/oauth2/v2.0/logout" in " ".join(page.visited)
    assert [url for url in page.visited if url.startswith(sandbox_emulator.base_url)] == []
    assert page.console_errors == []


def test_an_account_without_a_goldsmith_role_is_refused_kindly(entra_page, sandbox_emulator):
    page = entra_page
    choose_account(page, sandbox_emulator, "mallory@contoso.example")

    page.wait_for_url("**/auth/entra/callback/**")
    assert page.get_by_role("heading", name="We could not sign you in").is_visible()
    assert page.get_by_text("Your account has no Goldsmith role").is_visible()
    check_accessibility(page, "sign-in refused")
    page.goto("/profile/")
    assert "/login/" in page.url


def test_the_same_browser_stops_at_the_emulators_https_address(entra_page, sandbox_emulator):
    """The control: without the loopback pages this browser would not get through, so the
    journey above proves they are what makes sign-in work."""
    from playwright.sync_api import Error  # here: without Playwright the browser fixture skips the test

    with pytest.raises(Error, match="ERR_CERT_AUTHORITY_INVALID"):
        entra_page.goto(f"{sandbox_emulator.base_url}/{TENANT_ID}/oauth2/v2.0/authorize")


def test_settings_let_the_sign_out_redirect_reach_the_loopback_pages(tmp_path):
    """What the entra_portal fixture sets by hand is what settings.py derives from runall's
    environment (Chromium applies form-action to the sign-out form's redirect)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AZURE_", "ENTRA_", "GOLDSMITH_"))}
    env.update(GOLDSMITH_VAR_DIR=str(tmp_path), GOLDSMITH_EMULATOR_PORT="18443", **entra_defaults(emulator_url(18443)))
    show = ("import json; from django.conf import settings as s; "
            "print(json.dumps(s.CONTENT_SECURITY_POLICY['form-action']))")
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", show], cwd=Path(__file__).parents[2], env=env,
                         capture_output=True, text=True, check=True).stdout

    assert json.loads(out.strip().splitlines()[-1]) == ["'self'", "https://127.0.0.1:18443", "http://127.0.0.1:18444"]
