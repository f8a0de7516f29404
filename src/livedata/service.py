"""The query service: from a request naming a table or query to an Arrow result.

It knows nothing of HTTP. It validates every identifier a client names against the source's
own schema, converts every value to its declared type, builds the SQL with ``livedata.sql``
and runs it through the source's connector in a worker thread, at most the source's
``max_concurrent_queries`` at a time.
"""

from __future__ import annotations

import datetime as dt
import decimal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import pyarrow as pa

from livedata import sql
from livedata.catalog import Catalog, QueryConfig, TableConfig
from livedata.connectors.base import Connector
from livedata.connectors.registry import create_connector
from livedata.errors import InvalidOption, InvalidParameter, LivedataError, NotFound
from livedata.params import ParamSpec, convert_all

MAX_OFFSET = 10_000_000


@dataclass(frozen=True)
class QueryRequest:
    """What a client may ask: a table or a named query, plus structured shaping options."""

    table: str | None = None
    query: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    columns: Sequence[str] | None = None
    filters: Sequence[sql.Filter] = ()
    order_by: Sequence[tuple[str, bool]] = ()
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class Result:
    table: pa.Table
    source: str
    kind: str  # "table" or "query"
    name: str
    params: Mapping[str, Any]
    truncated: bool
    fetched_at: dt.datetime
    source_ms: float

    def meta(self) -> dict[str, Any]:
        """Metadata every response format can carry (JSON body, or headers)."""
        return {
            "rows": self.table.num_rows,
            "truncated": self.truncated,
            "source": self.source,
            self.kind: self.name,
            "params": dict(self.params),
            "fetched_at": self.fetched_at.isoformat(timespec="milliseconds"),
            "timings_ms": {"source": round(self.source_ms, 3)},
        }


@dataclass(frozen=True)
class _Target:
    """A resolved request: where it runs and what the client may name in it."""

    source: str
    kind: str
    name: str
    config: TableConfig | QueryConfig


class QueryService:
    def __init__(self, catalog: Catalog, connectors: Mapping[str, Connector[Any]]) -> None:
        self.catalog = catalog
        self.connectors = dict(connectors)
        self._slots = {
            name: anyio.CapacityLimiter(source.max_concurrent_queries)
            for name, source in catalog.sources.items()
        }
        self._schemas: dict[tuple[str, str], pa.Schema] = {}

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> QueryService:
        return cls(catalog, {n: create_connector(n, s) for n, s in catalog.sources.items()})

    def close(self) -> None:
        for connector in self.connectors.values():
            connector.close()

    async def run(self, request: QueryRequest) -> Result:
        target = self._resolve(request)
        params = self._params(target, request)
        options = await self._options(target, request, params)
        max_rows = self.catalog.sources[target.source].max_rows
        capped = request.limit is None or request.limit > max_rows
        limit = max_rows + 1 if capped else request.limit
        options = sql.Options(
            options.columns, options.filters, options.order_by, limit, options.offset
        )
        table, source_ms = await self._timed_fetch(
            target.source, self._statement(target, params, options)
        )
        truncated = capped and table.num_rows > max_rows
        return Result(
            table=table.slice(0, max_rows) if truncated else table,
            source=target.source,
            kind=target.kind,
            name=target.name,
            params=params,
            truncated=truncated,
            fetched_at=dt.datetime.now(dt.UTC),
            source_ms=source_ms,
        )

    async def columns(self, kind: str, name: str) -> pa.Schema | None:
        """The schema clients see for a table or query; None when it cannot be found out
        without real parameter values."""
        request = QueryRequest(table=name) if kind == "table" else QueryRequest(query=name)
        target = self._resolve(request)
        specs = self._specs(target)
        params = {
            n: s.convert(n, s.default) if s.default is not None else None for n, s in specs.items()
        }
        try:
            return await self._schema(target, params)
        except LivedataError:
            return None

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

    def _resolve(self, request: QueryRequest) -> _Target:
        if (request.table is None) == (request.query is None):
            raise InvalidOption('Give exactly one of "table" or "query".')
        if request.table is not None:
            table = self.catalog.tables.get(request.table)
            if table is None:
                raise NotFound.for_name("table", request.table, self.catalog.tables)
            return _Target(table.source, "table", request.table, table)
        assert request.query is not None
        query = self.catalog.queries.get(request.query)
        if query is None:
            raise NotFound.for_name("query", request.query, self.catalog.queries)
        return _Target(query.source, "query", request.query, query)

    @staticmethod
    def _specs(target: _Target) -> dict[str, ParamSpec]:
        return target.config.params if isinstance(target.config, QueryConfig) else {}

    def _params(self, target: _Target, request: QueryRequest) -> dict[str, Any]:
        if isinstance(target.config, TableConfig) and request.params:
            raise InvalidParameter(
                'Tables take no "params"; use "filters" to select rows.', parameter="params"
            )
        return convert_all(self._specs(target), dict(request.params))

    async def _options(
        self, target: _Target, request: QueryRequest, params: Mapping[str, Any]
    ) -> sql.Options:
        if request.offset < 0 or request.offset > MAX_OFFSET:
            raise InvalidOption(f'"offset" must be between 0 and {MAX_OFFSET}.')
        if request.limit is not None and request.limit < 0:
            raise InvalidOption('"limit" must be 0 or more.')
        if request.columns is None and not request.filters and not request.order_by:
            if isinstance(target.config, TableConfig) and target.config.columns:
                return sql.Options(columns=target.config.columns, offset=request.offset)
            return sql.Options(offset=request.offset)
        schema = await self._schema(target, params)
        allowed = {f.name: f.type for f in schema}
        if isinstance(target.config, TableConfig) and target.config.columns:
            allowed = {n: t for n, t in allowed.items() if n in target.config.columns}
        columns = [_check_column(c, allowed) for c in request.columns or allowed]
        filters = [_check_filter(i, f, allowed) for i, f in enumerate(request.filters)]
        order = [(_check_column(c, allowed), d) for c, d in request.order_by]
        return sql.Options(columns, filters, order, None, request.offset)

    async def _schema(self, target: _Target, params: Mapping[str, Any]) -> pa.Schema:
        key = (target.kind, target.name)
        if key not in self._schemas:
            probe = sql.Options(limit=0)
            statement = self._statement(target, params, probe)
            self._schemas[key] = (await self._fetch(target.source, statement)).schema
        return self._schemas[key]

    def _statement(
        self, target: _Target, params: Mapping[str, Any], options: sql.Options
    ) -> sql.Statement:
        connector = self.connectors[target.source]
        style = {"dialect": connector.dialect, "style": connector.paramstyle}
        if isinstance(target.config, TableConfig):
            name = target.config.table or target.name
            return sql.select_table(name, target.config.db_schema, options, **style)  # type: ignore[arg-type]
        named = sql.parse_named_query(target.config.sql, connector.dialect)
        return sql.select_named(named, dict(params), options, **style)  # type: ignore[arg-type]

    async def _fetch(self, source: str, statement: sql.Statement) -> pa.Table:
        return (await self._timed_fetch(source, statement))[0]

    async def _timed_fetch(self, source: str, statement: sql.Statement) -> tuple[pa.Table, float]:
        """Run in a worker thread; time only the source's work, not the wait for a slot."""
        connector = self.connectors[source]

        def fetch() -> tuple[pa.Table, float]:
            started = time.perf_counter()
            table = connector.fetch(statement)
            return table, (time.perf_counter() - started) * 1000

        return await anyio.to_thread.run_sync(fetch, limiter=self._slots[source])


def _check_column(name: str, allowed: Mapping[str, pa.DataType]) -> str:
    if name not in allowed:
        raise InvalidOption.unknown_column(name, allowed)
    return name


_FILTER_TYPES = (
    (pa.types.is_integer, "int"),
    (pa.types.is_floating, "float"),
    (pa.types.is_boolean, "bool"),
    (pa.types.is_timestamp, "datetime"),
    (pa.types.is_date, "date"),
)


def _check_filter(index: int, f: sql.Filter, allowed: Mapping[str, pa.DataType]) -> sql.Filter:
    column_type = allowed[_check_column(f.column, allowed)]
    where = f"filters[{index}].value"
    if f.op == "is_null":
        if not isinstance(f.value, bool | None):
            raise InvalidOption(f"{where} must be true or false for is_null.")
        return f
    if f.op == "contains" and not _is_text(column_type):
        raise InvalidOption(f"{where}: contains needs a text column; {f.column!r} is not.")
    spec = ParamSpec(
        type=f"list[{_param_type(column_type)}]" if f.op == "in" else _param_type(column_type),
        min_length=1 if f.op == "in" else None,
    )
    try:
        value = spec.convert(where, f.value)
    except InvalidParameter as exc:
        rule = exc.details["rule"]
        raise InvalidOption(f"{where} {rule} (got {f.value!r}).", filter=index) from exc
    if pa.types.is_decimal(column_type):
        try:
            value = [decimal.Decimal(v) for v in value] if f.op == "in" else decimal.Decimal(value)
        except decimal.InvalidOperation as exc:
            raise InvalidOption(f"{where} must be a decimal number.", filter=index) from exc
    return sql.Filter(f.column, f.op, value)


def _param_type(column_type: pa.DataType) -> str:
    for test, name in _FILTER_TYPES:
        if test(column_type):
            return name
    return "str"  # text, and decimals (converted exactly from their digits, never via float)


def _is_text(column_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(column_type)
        or pa.types.is_large_string(column_type)
        or pa.types.is_string_view(column_type)
    )
