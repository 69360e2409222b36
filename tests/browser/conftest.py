"""Browser tests: Playwright for Python driving Debian's Chromium against a live portal.

The stack a journey gets from the `portal` fixture:
- pytest-django's live server (a threaded WSGI server in this process, on the test database);
- a real RQ worker process (tests/support/workers.py `rq_worker`) that submits and cancels
  builds against the session's emulator, whose time scale makes a build take seconds;
- a sweep loop in a thread of this process: builds.monitor.sweep() and reconcile() every
  half second, i.e. the scheduler's job without its 30-second period.

Chromium is never downloaded: the tests use /usr/bin/chromium (Debian's package; override with
GOLDSMITH_CHROMIUM) and skip with a message when it is missing, unless
GOLDSMITH_REQUIRE_BROWSER=1 (set by .ci/run), which turns that skip into a failure.

On failure a journey leaves failure.png, failure.html and console.txt in its output folder,
test-results/browser/<test name>/ (GOLDSMITH_TEST_OUTPUT changes the root).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.browser.support import save_artifacts
from tests.support.emulator import EmulatorHandle

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
CHROMIUM = os.environ.get("GOLDSMITH_CHROMIUM", "/usr/bin/chromium")
REQUIRE = os.environ.get("GOLDSMITH_REQUIRE_BROWSER", "") == "1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
SWEEP_INTERVAL = 0.5
TIME_ZONE = "Europe/Paris"  # the browser's zone: pages must show times in it, not in UTC


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)  # lets the page fixture see whether the test failed
    return report


def _missing_browser() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -r requirements-dev.txt)."
    if not Path(CHROMIUM).exists():
        return (f"No Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium) "
                "or set GOLDSMITH_CHROMIUM; browser tests never download a browser.")
    return ""


@pytest.fixture(scope="package")
def browser():
    """One headless Chromium for the package (Playwright is stopped when the package ends)."""
    missing = _missing_browser()
    if missing:
        if REQUIRE:
            pytest.fail(f"GOLDSMITH_REQUIRE_BROWSER=1 but the browser tests cannot run: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; Django would then refuse the
    # test's own ORM calls as "async context". Nothing here is async: allow them while it runs.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class Sweeper(threading.Thread):
    """The scheduler's periodic work, every `interval` seconds, until stopped."""

    def __init__(self, interval: float = SWEEP_INTERVAL):
        super().__init__(name="browser-sweeper", daemon=True)
        self.interval = interval
        self.stopping = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        from django.db import connection

        from builds import monitor

        try:
            while not self.stopping.wait(self.interval):
                try:
                    monitor.sweep()
                    monitor.reconcile()
                except Exception as exc:  # keep sweeping; the journey's assertion shows the effect
                    self.errors.append(repr(exc))
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


@dataclass
class Portal:
    """A running portal: its URL, the emulator behind it and the worker."""

    url: str
    emulator: EmulatorHandle
    worker: object
    sweeper: Sweeper
    notes: list[str] = field(default_factory=list)

    def __call__(self, path: str) -> str:
        return self.url.rstrip("/") + path


@pytest.fixture
def portal(live_server, rq_worker, azure_emulator, monkeypatch) -> Iterator[Portal]:
    """Live server + real worker + sweep loop, all on this test's database and the reset emulator.

    Build pages poll every second here (3 s in production): the same mechanism, shorter waits.
    """
    monkeypatch.setattr("web.views_builds.POLL_SECONDS", 1)
    sweeper = Sweeper()
    sweeper.start()
    try:
        yield Portal(live_server.url, azure_emulator, rq_worker, sweeper)
    finally:
        sweeper.stop()


@pytest.fixture
def page(browser, request, live_server):
    """A fresh browser context (desktop size, the browser in Europe/Paris) and page.

    Dialogs (confirm()) are accepted, as a person who clicked the button would. Console errors
    and uncaught exceptions are collected in page.console_errors; on failure the page's
    screenshot, HTML and console land in the test's output folder.
    """
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900},
                                  timezone_id=TIME_ZONE, locale="en-GB")
    context.set_default_timeout(15_000)
    new_page = context.new_page()
    errors: list[str] = []
    def on_console(message) -> None:
        # htmx reports a request it aborted on purpose (hx-sync "replace") as an error, followed by
        # its afterRequest; real failures also log responseError or sendError, which count.
        if message.type == "error" and not message.text.startswith(("htmx:sendAbort", "htmx:afterRequest")):
            errors.append(message.text)

    new_page.on("console", on_console)
    new_page.on("pageerror", lambda exc: errors.append(str(exc)))
    new_page.on("dialog", lambda dialog: dialog.accept())
    new_page.console_errors = errors
    try:
        yield new_page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            save_artifacts(new_page, request.node.name, errors)
        context.close()
