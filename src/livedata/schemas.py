"""The columns of every table and named query, as the source reports them.

Asked of the source once per target with a statement that returns no row (a few for SQLite,
whose results have no types but their values'), through the same
admission as every other statement (back-off, budgets, the source's queue), and kept per
source until a restart. Concurrent first requests for one target share one probe. Whether a
table's column may hold NULL is asked of the source's catalog the same way: result columns
never say (drivers report every one nullable).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pyarrow as pa

from livedata.admission import Admission
from livedata.catalog import TableConfig
from livedata.connectors.stream import Caps
from livedata.errors import LivedataError
from livedata.plan import Planner, Target
from livedata.sql import Statement


class Schemas:
    def __init__(self, planner: Planner, admission: Admission) -> None:
        self.planner = planner
        self.admission = admission
        self._schemas: _Memo[pa.Schema] = {}
        self._nullable: _Memo[dict[str, bool]] = {}

    async def of(self, target: Target, caller_id: str) -> pa.Schema:
        """Every column of ``target``, those its table declares NOT NULL not nullable (so
        ordering needs no null handling there); ``caller_id`` pays for the probe if one
        runs."""
        return await _once(self._schemas, target, lambda: self._probe(target, caller_id))

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

    async def nullable(self, target: Target, caller_id: str) -> dict[str, bool]:
        """Whether each column of a table may hold NULL, as the source declares it; empty
        when unknown (a named query, or a source that will not say)."""
        statement = self.planner.declared_columns(target)
        if statement is None:
            return {}
        try:
            return await _once(
                self._nullable, target, lambda: self._declared(target, statement, caller_id)
            )
        except LivedataError:
            return {}

    async def _probe(self, target: Target, caller_id: str) -> pa.Schema:
        probe = self.planner.probe(target)
        schema = (await self.admission.fetch(target, probe, Caps(), caller_id))[0].schema
        declared = await self.nullable(target, caller_id)
        fields = [f.with_nullable(declared.get(f.name, True)) for f in schema]
        return pa.schema(fields, metadata=schema.metadata)

    async def _declared(
        self, target: Target, statement: Statement, caller_id: str
    ) -> dict[str, bool]:
        # By position: MySQL names information_schema's columns in capitals whatever the
        # SELECT says.
        table, _ = await self.admission.fetch(target, statement, Caps(), caller_id)
        names, nullable = table.columns[:2]
        return {
            name: bool(may)
            for name, may in zip(names.to_pylist(), nullable.to_pylist(), strict=True)
        }


T = TypeVar("T")
_Memo = dict[str, dict[tuple[str, str], "asyncio.Future[T]"]]  # source -> (kind, name) -> answer


async def _once(memo: _Memo[T], target: Target, ask: Callable[[], Awaitable[T]]) -> T:
    """``ask``'s answer for ``target``, asked once per source until a restart: concurrent
    first requests share one question, and a failed one is asked again next time."""
    known = memo.setdefault(target.source, {})
    name = (target.kind, target.name)
    asking = known.get(name)
    if asking is None:
        asking = known[name] = asyncio.ensure_future(ask())
        asking.add_done_callback(lambda done: _forget_failed(done, known, name))
    return await asyncio.shield(asking)


def _forget_failed(
    asking: asyncio.Future[T],
    known: dict[tuple[str, str], asyncio.Future[T]],
    name: tuple[str, str],
) -> None:
    if asking.cancelled() or asking.exception() is not None:
        known.pop(name, None)
