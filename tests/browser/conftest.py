"""A real browser: Debian's Chromium driven by Playwright, offline.

Every host but 127.0.0.1 is made unresolvable, so a page that needed the internet would
fail here as it would on a network without one. Each page records the requests it made and
the errors its console reported (a Content-Security-Policy violation is one).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from tests.conftest import require_service

CHROMIUM = Path("/usr/bin/chromium")  # `apt-get install chromium`; never `playwright install`


@dataclass
class Watched:
    page: Page
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


# Module scope, not session: Playwright's sync API keeps an event loop running while it is
# open, and every asyncio test after it would fail (tests/browser/test_zz_after_the_browser.py).
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    require_service("Chromium (apt-get install chromium)", CHROMIUM.stat)
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-background-networking",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        ],
    )
    yield chromium
    chromium.close()


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    seen = Watched(page)
    page.on("request", lambda request: seen.requests.append(request.url))

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            seen.console_errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: seen.console_errors.append(str(error)))
    yield seen
    context.close()
