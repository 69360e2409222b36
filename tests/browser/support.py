"""Helpers for browser journeys: sign-in, accessibility checks, reload detection, failure artifacts."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
AXE_SCRIPT = HERE / "vendor" / "axe-4.14.1.min.js"  # axe-core 4.14.1 from the npm registry (MPL-2.0)
OUTPUT_ROOT = Path(os.environ.get("GOLDSMITH_TEST_OUTPUT", REPO_ROOT / "test-results")) / "browser"
PASSWORD = "pass-for-tests-1"  # tests/factories.py make_user's default


def output_dir(test_name: str) -> Path:
    folder = OUTPUT_ROOT / re.sub(r"[^\w.-]+", "_", test_name)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_artifacts(page, test_name: str, errors: list[str]) -> Path:
    folder = output_dir(test_name)
    try:
        page.screenshot(path=str(folder / "failure.png"), full_page=True)
        (folder / "failure.html").write_text(page.content())
    except Exception as exc:  # the page may be gone; the console log still helps
        errors.append(f"(could not capture the page: {exc})")
    (folder / "console.txt").write_text(f"URL: {page.url}\n" + "\n".join(errors))
    print(f"\nbrowser artifacts: {folder}")
    return folder


# --- Helpers for journeys ------------------------------------------------------------------------


def sign_in(page, user, password: str = PASSWORD) -> None:
    """Sign in through the sign-in form, as a person would, and land on the home page."""
    page.goto("/login/")
    page.fill("input[name=username]", user.get_username())
    page.fill("input[name=password]", password)
    page.locator("form:has(input[name=password]) [type=submit]").first.click()
    page.wait_for_url(lambda url: "/login/" not in url)


def switch_user(page, user, password: str = PASSWORD) -> None:
    """Sign the current user out (the session cookie gone) and sign `user` in."""
    page.context.clear_cookies()
    sign_in(page, user, password)


def request_publishing(page, version: str, reason: str) -> None:
    """On a gold version's page: ask for `version` (e.g. 1.1.0) to be published, giving `reason`."""
    page.get_by_role("link", name="Request publishing…").click()
    page.fill("textarea[name=reason]", reason)
    page.get_by_role("button", name=f"Request publishing {version}").click()
    page.get_by_text("Publishing is requested").wait_for()


def approve_publishing(page, approver, version: str) -> None:
    """`approver` signs in, opens the publishing request of `version` (SLUG@VERSION) from the
    home page and approves it; the version is published."""
    switch_user(page, approver)
    page.get_by_role("link", name=f"publish {version}").click()
    page.get_by_label("Approve and publish when enough approvals are in").check()
    page.get_by_role("button", name="Record my decision").click()
    page.get_by_text(f"Approved: {version} is published.").wait_for()


_AXE_SOURCE: list[str] = []


def check_accessibility(page, label: str, *, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict]:
    """Run axe-core on the page; fail on violations of the given impacts. Returns all violations."""
    if not _AXE_SOURCE:
        _AXE_SOURCE.append(AXE_SCRIPT.read_text())
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(_AXE_SOURCE[0])  # evaluated through the DevTools protocol: the page's CSP does not apply
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    violations = result["violations"]
    bad = [violation for violation in violations if violation.get("impact") in impacts]
    if bad:
        folder = output_dir(f"axe-{label}")
        (folder / "violations.json").write_text(json.dumps(bad, indent=2))
        lines = [f"{v['id']} ({v['impact']}): {v['help']} -> "
                 + "; ".join(node["target"][0] if node["target"] else "?" for node in v["nodes"][:5]) for v in bad]
        raise AssertionError(f"accessibility violations on {label}:\n" + "\n".join(lines))
    return violations


def mark_page(page) -> None:
    """Put a marker in the window; `assert_not_reloaded` proves the page was never reloaded since."""
    page.evaluate("() => { window.__goldsmithMarker = 'still here'; }")


def assert_not_reloaded(page) -> None:
    assert page.evaluate("() => window.__goldsmithMarker") == "still here", "the page was reloaded"


def _page_answer(response) -> bool:
    """The answer that replaces the page: a document (after any redirect) or a boosted htmx request."""
    kind = response.request.resource_type
    if kind == "document":
        return not 300 <= response.status < 400
    return kind in ("xhr", "fetch") and response.request.headers.get("hx-boosted") == "true"


def settle(page) -> None:
    """Wait until the document is loaded and htmx has finished swapping."""
    page.wait_for_function("() => document.readyState === 'complete' && "
                           "!document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")


def submit(page, name: str, *, exact: bool = True) -> None:
    """Click the button `name` and wait for the page it leads to (a form post and its redirect,
    or a boosted htmx request and its swap).

    Not "wait for a navigation": a URL with a #fragment makes Playwright report a same-document
    navigation before the form's own request is even sent, and boosted forms never navigate.
    """
    with page.expect_response(_page_answer):
        page.get_by_role("button", name=name, exact=exact).first.click()
    settle(page)


def follow(page, name: str, *, exact: bool = True) -> None:
    """Click the link `name` and wait for the page it opens (as `submit`)."""
    with page.expect_response(_page_answer):
        page.get_by_role("link", name=name, exact=exact).first.click()
    settle(page)
