"""Deadlines for databases that cannot time a statement out themselves (DuckDB).

One thread waits for the earliest deadline and runs its action (an interrupt). A
``threading.Timer`` per statement would start a thread per query, which costs more than a
small query itself (about 1 ms under load).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("livedata.sources")


class Watchdog:
    def __init__(self) -> None:
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def after(self, seconds: float, action: Callable[[], None]) -> Callable[[], None]:
        """Run ``action`` in ``seconds`` unless the returned cancel function is called first."""
        number = next(self._order)
        with self._wake:
            heapq.heappush(self._due, (time.monotonic() + seconds, number, action))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="livedata-watchdog")
                self._thread.daemon = True  # nothing to finish: pending deadlines just lapse
                self._thread.start()
            if self._due[0][1] == number:  # the new earliest deadline: wait less
                self._wake.notify()

        def cancel() -> None:
            with self._wake:
                self._cancelled.add(number)

        return cancel

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._wake.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _, number, action = heapq.heappop(self._due)
                if number in self._cancelled:
                    self._cancelled.discard(number)
                    continue
            try:
                action()
            except Exception:  # one failed interrupt must not end every later deadline
                log.exception("a statement deadline's action failed")
