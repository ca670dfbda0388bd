"""Headless Chromium for the browser tests: Debian's `chromium` driven by Playwright for Python, never skipped.

Each test gets a fresh browser profile (user-data-dir) and a page on the test server's origin. A test fails on any
console error or page error, and on any request that would leave that origin.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Error, Page, Playwright, Route, sync_playwright

from sim.services import CHROMIUM, CHROMIUM_ARGUMENTS
from tests.browser.server import LocalServer, serving

MISSING = (f"the browser tests need Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium); "
           "./dev test installs it when run as root with apt-get")


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The system Chromium; the run fails saying what to install when it is missing."""
    if not CHROMIUM.exists():
        pytest.fail(MISSING, pytrace=False)
    return CHROMIUM


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver for the session."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def test_server() -> Iterator[LocalServer]:
    """The static files, the vectors and the signed-request recorder on a free loopback port."""
    with serving() as server:
        yield server


@dataclass
class Problems:
    """What went wrong in the page: console errors, uncaught errors, requests to other origins."""

    messages: list[str] = field(default_factory=list)

    def check(self) -> None:
        """Fail the test if anything went wrong."""
        if self.messages:
            pytest.fail("the page reported: " + "; ".join(self.messages), pytrace=False)


@pytest.fixture
def context(chromium: Path, playwright: Playwright, tmp_path: Path) -> Iterator[BrowserContext]:
    """A fresh browser profile."""
    browser_context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=str(chromium), headless=True, args=CHROMIUM_ARGUMENTS)
    try:
        yield browser_context
    finally:
        browser_context.close()


@pytest.fixture
def page_problems() -> Problems:
    """The problems of the test's page."""
    return Problems()


@pytest.fixture
def page(context: BrowserContext, test_server: LocalServer, page_problems: Problems) -> Iterator[Page]:
    """A page open on the test server's origin; the test fails on console errors and requests elsewhere."""
    page = context.pages[0] if context.pages else context.new_page()
    page.on("console", lambda message: _console(page_problems, message))
    page.on("pageerror", lambda error: page_problems.messages.append(f"page error: {error}"))

    def only_our_origin(route: Route) -> None:
        if route.request.url.startswith(test_server.origin + "/"):
            route.continue_()
        else:
            page_problems.messages.append(f"request to another origin: {route.request.url}")
            route.abort()

    page.route("**/*", only_our_origin)
    page.goto(test_server.origin + "/")
    yield page
    page_problems.check()


def _console(problems: Problems, message: ConsoleMessage) -> None:
    if message.type == "error":
        problems.messages.append(f"console error: {message.text}")


def run_module(page: Page, script: str, argument: object = None) -> Any:
    """Run `script`, the body of an async function of `argument`, in the page; `modules(name)` imports
    /static/js/<name>.js. The test fails with the page's message if the script throws."""
    try:
        return page.evaluate("async (argument) => { const modules = (name) => import(`/static/js/${name}.js`);\n"
                             + script + "\n}", argument)
    except Error as error:
        pytest.fail(f"the page's script failed: {error.message}", pytrace=False)
