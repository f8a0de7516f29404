"""The watchdog that times DuckDB statements out: due actions run, cancelled ones never."""

from __future__ import annotations

import threading

import pytest

from livedata.connectors.watchdog import Watchdog

HANG_GUARD = 30.0  # seconds; only reached if the watchdog never acts


def test_due_actions_run_in_deadline_order_and_cancelled_ones_never() -> None:
    watchdog = Watchdog()
    ran: list[str] = []
    last = threading.Event()
    watchdog.after(0.02, lambda: ran.append("second"))
    cancel = watchdog.after(0.01, lambda: ran.append("cancelled"))
    watchdog.after(0.0, lambda: ran.append("first"))
    watchdog.after(0.03, last.set)
    cancel()
    assert last.wait(HANG_GUARD)
    assert ran == ["first", "second"]


def test_a_failing_action_does_not_stop_the_ones_after_it(caplog: pytest.LogCaptureFixture) -> None:
    """An interrupt on a connection closed meanwhile raises; the thread once died of it, and
    no DuckDB statement timed out again."""
    watchdog = Watchdog()
    after = threading.Event()

    def closed() -> None:
        raise RuntimeError("Connection already closed!")

    watchdog.after(0.0, closed)
    watchdog.after(0.01, after.set)
    assert after.wait(HANG_GUARD)
    assert "Connection already closed!" in caplog.text
