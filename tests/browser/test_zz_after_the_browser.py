"""Runs after the browser tests (pytest takes files in name order): Playwright's sync API runs
its own event loop, which must be gone once they end, or every asyncio test after them fails
with "asyncio.run() cannot be called from a running event loop"."""

from __future__ import annotations

import asyncio


def test_the_browser_tests_leave_no_event_loop_running() -> None:
    assert asyncio.run(asyncio.sleep(0, result="ran")) == "ran"
