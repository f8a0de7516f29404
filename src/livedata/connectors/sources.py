"""Every configured source's connector, each behind its concurrency limit.

Connectors block; here they run in worker threads, at most the source's
``max_concurrent_queries`` at a time, so no driver ever blocks the event loop. At most
``max_queued_queries`` more wait for a slot; beyond that a request is refused at once with
SourceBusy, so overload shows as a fast 503, never as a hang.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import anyio
import anyio.to_thread

from livedata.connectors.base import Connector
from livedata.connectors.config import SourceBase
from livedata.connectors.registry import create_connector
from livedata.connectors.stream import Caps, Charge, RowStream
from livedata.errors import LivedataError, SourceBusy
from livedata.sql import Statement

log = logging.getLogger("livedata.sources")
READINESS_SECONDS = 2.0  # how long one round of pings answers /ready


class Sources:
    def __init__(
        self, connectors: Mapping[str, Connector[Any]], configs: Mapping[str, SourceBase]
    ) -> None:
        self.connectors = dict(connectors)
        self._slots = {
            name: anyio.CapacityLimiter(config.max_concurrent_queries)
            for name, config in configs.items()
        }
        self._queue_sizes = {name: config.max_queued_queries for name, config in configs.items()}
        self._readiness_lock = anyio.Lock()
        self._readiness: tuple[float, dict[str, dict[str, str]]] | None = None

    @classmethod
    def from_configs(cls, configs: Mapping[str, SourceBase]) -> Sources:
        return cls({n: create_connector(n, c) for n, c in configs.items()}, configs)

    def __getitem__(self, name: str) -> Connector[Any]:
        return self.connectors[name]

    async def stream(
        self, source: str, statement: Statement, caps: Caps, charge: Charge | None = None
    ) -> RowStream:
        """Start ``statement``; its rows hold one of the source's slots until closed."""
        self._refuse_when_full(source)
        slot = self._slots[source]
        holder = object()  # the rows may be read and closed from another task
        await slot.acquire_on_behalf_of(holder)
        started = time.perf_counter()
        try:
            cursor = await anyio.to_thread.run_sync(self.connectors[source].stream, statement)
        except BaseException:
            try:
                if charge is not None:  # a failed statement cost source time too
                    with anyio.CancelScope(shield=True):
                        await charge((time.perf_counter() - started) * 1000)
            finally:
                slot.release_on_behalf_of(holder)
            raise
        return RowStream(cursor, caps, lambda: slot.release_on_behalf_of(holder), charge)

    async def estimate(self, source: str, statement: Statement) -> float | None:
        """The source's cost estimate for ``statement`` (None: it cannot estimate)."""
        self._refuse_when_full(source)
        connector = self.connectors[source]
        return await anyio.to_thread.run_sync(
            connector.estimate, statement, limiter=self._slots[source]
        )

    def _refuse_when_full(self, source: str) -> None:
        slots = self._slots[source]
        waiting = slots.statistics().tasks_waiting
        if slots.available_tokens < 1 and waiting >= self._queue_sizes[source]:
            raise SourceBusy(
                f"Source {source!r} is busy: {slots.borrowed_tokens:g} queries running and "
                f"{waiting} waiting, its limits; try again shortly.",
                source=source,
            )

    async def warn_of_privileges(self) -> None:
        """Log what each source's account may do beyond reading (see
        ``Connector.excess_privileges``); a source that does not answer is skipped."""
        for name, connector in self.connectors.items():
            try:
                excess = await anyio.to_thread.run_sync(connector.excess_privileges)
            except LivedataError:
                continue
            for why in excess:
                log.warning(
                    "source %r: its account %s, which a read-only session does not prevent; "
                    "connect as an account that may only SELECT (docs/security.md, "
                    "least privilege)",
                    name,
                    why,
                )

    async def readiness(self) -> dict[str, dict[str, str]]:
        """Every source's status, never its address. Sources are pinged at most once per
        READINESS_SECONDS whatever the rate of probes: a public ``/ready`` must not be a
        way to load the sources or open connections."""
        async with self._readiness_lock:
            now = time.monotonic()
            if self._readiness is None or now - self._readiness[0] >= READINESS_SECONDS:
                self._readiness = (now, await self._ping_all())
            return self._readiness[1]

    async def _ping_all(self) -> dict[str, dict[str, str]]:
        report: dict[str, dict[str, str]] = {}

        async def ping(name: str) -> None:
            try:
                await anyio.to_thread.run_sync(self.connectors[name].ping)
                report[name] = {"status": "ok"}
            except LivedataError as exc:
                report[name] = {"status": exc.code, "message": exc.message}

        async with anyio.create_task_group() as tasks:
            for name in self.connectors:
                tasks.start_soon(ping, name)
        return dict(sorted(report.items()))

    def close(self) -> None:
        for connector in self.connectors.values():
            connector.close()
