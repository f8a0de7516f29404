"""The one way a statement reaches its source: back-off, budgets and estimates, the queue.

Every statement goes through ``Admission.open``: a request's query, a refresh in the
background, a schema probe. So a source that just failed is left alone for a while (one
error, not a storm of timeouts), budgets count every statement, and the source's queue and
slots bound them all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import anyio.to_thread
import pyarrow as pa

from livedata.connectors.config import SourceBase
from livedata.connectors.sources import Sources
from livedata.connectors.stream import Caps, RowStream
from livedata.errors import SourceError, SourceUnavailable
from livedata.plan import Target
from livedata.quota.budgets import Costs
from livedata.quota.store import QuotaStore
from livedata.sql import Statement
from livedata.tally import Measure, Tally


class Admission:
    def __init__(
        self,
        configs: Mapping[str, SourceBase],
        sources: Sources,
        quota: QuotaStore,
        clock: Callable[[], float],
        backoff: float,
        tally: Tally,
    ) -> None:
        self.sources = sources
        self.tally = tally
        self.costs = Costs(configs, sources, quota, clock)
        self.clock = clock
        self.backoff = backoff  # seconds a source that is down is left alone
        self._failing_until: dict[str, float] = {}

    async def open(
        self, target: Target, statement: Statement, caps: Caps, caller_id: str
    ) -> RowStream:
        """Start ``statement`` for ``target``; ``caller_id`` pays for it (see
        ``livedata.quota.budgets``)."""
        source, label = target.source, target.label
        if self.clock() < self._failing_until.get(source, 0.0):
            raise self.sources[source].unavailable("it failed moments ago; backing off")
        self.tally.add(Measure.SOURCE_QUERIES, source, label)

        async def counted(source_ms: float) -> None:
            self.tally.add(Measure.SOURCE_SECONDS, source, label, source_ms / 1000)

        try:
            stream = await self.costs.stream(source, statement, caps, caller_id, counted)
        except SourceError as exc:
            self.failed(source, exc)
            raise
        self._failing_until.pop(source, None)
        return stream

    async def fetch(
        self, target: Target, statement: Statement, caps: Caps, caller_id: str
    ) -> tuple[pa.Table, RowStream]:
        """Every row of ``statement`` at once (a small result: a probe, a page), and its
        stream, closed, for the counts and timings."""
        stream = await self.open(target, statement, caps, caller_id)
        try:
            return await anyio.to_thread.run_sync(stream.read_all), stream
        finally:  # read to the end, so the connection goes back to the pool
            await stream.aclose()

    def failed(self, source: str, error: SourceError) -> None:
        """Note a failure of ``source``: one that is down is left alone for a while."""
        if isinstance(error, SourceUnavailable) and self.backoff > 0:
            self._failing_until[source] = self.clock() + self.backoff
