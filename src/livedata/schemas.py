"""The columns of every table and named query, as the source reports them.

Asked of the source once per target with a statement that returns no row, through the same
admission as every other statement (back-off, budgets, the source's queue), and kept per
source until a restart. Concurrent first requests for one target share one probe.
"""

from __future__ import annotations

import asyncio

import anyio.to_thread
import pyarrow as pa

from livedata.admission import Admission
from livedata.catalog import TableConfig
from livedata.connectors.stream import Caps
from livedata.errors import LivedataError
from livedata.plan import Planner, Target


class Schemas:
    def __init__(self, planner: Planner, admission: Admission) -> None:
        self.planner = planner
        self.admission = admission
        self._known: dict[str, dict[tuple[str, str], asyncio.Future[pa.Schema]]] = {}

    async def of(self, target: Target, caller_id: str) -> pa.Schema:
        """Every column of ``target``; ``caller_id`` pays for the probe if one runs."""
        known = self._known.setdefault(target.source, {})
        name = (target.kind, target.name)
        probe = known.get(name)
        if probe is None:
            probe = known[name] = asyncio.ensure_future(self._probe(target, caller_id))
            probe.add_done_callback(lambda done: _forget_failed(done, known, name))
        return await asyncio.shield(probe)

    async def visible(self, target: Target, caller_id: str) -> pa.Schema | None:
        """The columns clients see (never those a table's ``columns`` hides); None when the
        source cannot tell without real parameter values."""
        try:
            schema = await self.of(target, caller_id)
        except LivedataError:
            return None
        if isinstance(target.config, TableConfig) and target.config.columns:
            shown = [c for c in target.config.columns if c in schema.names]
            return pa.schema([schema.field(c) for c in shown])
        return schema

    async def _probe(self, target: Target, caller_id: str) -> pa.Schema:
        statement = self.planner.probe(target)
        stream = await self.admission.open(target, statement, Caps(), caller_id)
        try:  # no row; read to the end so the connection goes back to the pool
            return (await anyio.to_thread.run_sync(stream.read_all)).schema
        finally:
            await stream.aclose()


def _forget_failed(
    probe: asyncio.Future[pa.Schema],
    known: dict[tuple[str, str], asyncio.Future[pa.Schema]],
    name: tuple[str, str],
) -> None:
    """A failed probe is not kept: the next request asks again."""
    if probe.cancelled() or probe.exception() is not None:
        known.pop(name, None)
