"""Every configured source's connector, each behind its concurrency limit.

Connectors block; here they run in worker threads, at most the source's
``max_concurrent_queries`` at a time, so no driver ever blocks the event loop. At most
``max_queued_queries`` more wait for a slot; beyond that a request is refused at once with
SourceBusy, so overload shows as a fast 503, never as a hang.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import pyarrow as pa

from livedata.catalog import SourceConfig
from livedata.connectors.base import Connector
from livedata.connectors.registry import create_connector
from livedata.errors import LivedataError, SourceBusy
from livedata.sql import Statement

T = TypeVar("T")


class Sources:
    def __init__(
        self, connectors: Mapping[str, Connector[Any]], configs: Mapping[str, SourceConfig]
    ) -> None:
        self.connectors = dict(connectors)
        self._slots = {
            name: anyio.CapacityLimiter(config.max_concurrent_queries)
            for name, config in configs.items()
        }
        self._queue_sizes = {name: config.max_queued_queries for name, config in configs.items()}

    @classmethod
    def from_configs(cls, configs: Mapping[str, SourceConfig]) -> Sources:
        return cls({n: create_connector(n, c) for n, c in configs.items()}, configs)

    def __getitem__(self, name: str) -> Connector[Any]:
        return self.connectors[name]

    async def fetch(self, source: str, statement: Statement) -> tuple[pa.Table, float]:
        """The result and the milliseconds the source worked (not the wait for a slot)."""
        connector = self.connectors[source]

        def timed() -> tuple[pa.Table, float]:
            started = time.perf_counter()
            table = connector.fetch(statement)
            return table, (time.perf_counter() - started) * 1000

        return await self._in_slot(source, timed)

    async def estimate(self, source: str, statement: Statement) -> float | None:
        """The source's cost estimate for ``statement`` (None: it cannot estimate)."""
        return await self._in_slot(source, lambda: self.connectors[source].estimate(statement))

    async def _in_slot(self, source: str, work: Callable[[], T]) -> T:
        slots = self._slots[source]
        waiting = slots.statistics().tasks_waiting
        if slots.available_tokens < 1 and waiting >= self._queue_sizes[source]:
            raise SourceBusy(
                f"Source {source!r} is busy: {slots.borrowed_tokens:g} queries running and "
                f"{waiting} waiting, its limits; try again shortly.",
                source=source,
            )
        return await anyio.to_thread.run_sync(work, limiter=slots)

    async def readiness(self) -> dict[str, dict[str, str]]:
        """Ping every source concurrently; report each one's status, never its address."""
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
