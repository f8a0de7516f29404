"""Planning a request: from what a client named to a checked, keyed, ready-to-run plan.

Every identifier a client names is checked against the source's own schema, every value
converted to its declared type, and the cache key computed from the result of that
conversion, so equivalent requests share one plan and one cache entry. Planning does no I/O:
the schema, when a request needs one, is asked for beforehand (``livedata.schemas``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import pyarrow as pa

from livedata import filters, sql
from livedata.auth.restrict import check_applies, forced_params, table_filters
from livedata.cache.key import cache_key
from livedata.catalog import Catalog, QueryConfig, TableConfig
from livedata.connectors.registry import connector_class
from livedata.connectors.stream import Caps
from livedata.encoders.json import type_name
from livedata.errors import (
    InvalidCursor,
    InvalidOption,
    InvalidParameter,
    NotFound,
    unknown_name,
)
from livedata.freshness import Policy
from livedata.params import ParamSpec, convert_all
from livedata.sql import ParamStyle

MAX_OFFSET = 10_000_000
STATEMENTS_KEPT = 4096  # built SQL statements remembered by plan key, least recently used out
# Settings of a source that do not change its results, so they stay out of cache keys.
_NOT_IDENTITY = {
    "password",
    "max_concurrent_queries",
    "max_queued_queries",
    "max_estimated_cost",
    "budget",
    "statement_timeout",
    "connect_timeout",
    "ttl",
    "stale_while_revalidate",
    "stale_if_error",
}


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
    # Keyset paging (from a cursor): the order_by values, as JSON, of the row to start after.
    after: Sequence[Any] | None = None


@dataclass(frozen=True)
class Target:
    """A resolved table or query: where it runs and what the client may name in it."""

    source: str
    kind: str  # "table" or "query"
    name: str
    config: TableConfig | QueryConfig

    @property
    def label(self) -> str:
        """How metrics and logs name it: "table:NAME" or "query:NAME"."""
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class Plan:
    target: Target
    params: Mapping[str, Any]
    options: sql.Options  # limit already capped at max_rows + 1 when the client's is larger
    max_rows: int
    capped: bool  # True when a result over max_rows must be cut and flagged
    max_bytes: int | None
    key: str
    freshness: Policy
    tags: tuple[str, ...]  # what invalidates it: source, query or table, tables read

    @property
    def caps(self) -> Caps:
        return Caps(self.max_rows if self.capped else None, self.max_bytes)


@dataclass(frozen=True)
class Draft:
    """A request checked as far as it can be without the source's schema."""

    target: Target
    request: QueryRequest
    restrictions: Mapping[str, Any]
    params: Mapping[str, Any]
    forced: Sequence[sql.Filter]  # equality filters the caller's restrictions add to a table

    @property
    def needs_schema(self) -> bool:
        """Only requests that name columns, filter or order, or are filtered by restrictions,
        are checked against the source's schema."""
        request = self.request
        return bool(
            request.columns is not None or request.filters or request.order_by or self.forced
        )


@dataclass(frozen=True)
class Style:
    """How a source's SQL is written: its sqlglot dialect and its driver's parameter style;
    and how it lists a table's declared columns."""

    dialect: str
    paramstyle: ParamStyle
    columns: sql.NamedQuery
    probe_rows: int

    @classmethod
    def of(cls, kind: str) -> Style:
        """The style of source kind ``kind``, as its connector class names it."""
        connector = connector_class(kind)
        columns = sql.parse_named_query(connector.columns_sql, connector.dialect)
        return cls(connector.dialect, connector.paramstyle, columns, connector.probe_rows)


class Planner:
    def __init__(self, catalog: Catalog, defaults: Policy) -> None:
        self.catalog = catalog
        self.styles = {name: Style.of(source.kind) for name, source in catalog.sources.items()}
        self.defaults = defaults
        self._statements: dict[str, sql.Statement] = {}
        self._definitions = {
            (kind, name): hashlib.blake2b(
                orjson.dumps(config.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS),
                digest_size=16,
            ).hexdigest()
            for kind, section in (("table", catalog.tables), ("query", catalog.queries))
            for name, config in section.items()
        }
        self._identities = {
            name: source.model_dump(mode="json", exclude=_NOT_IDENTITY)
            for name, source in catalog.sources.items()
        }
        self._named = {  # parsed once: parsing costs more than the rest of a hit
            name: sql.parse_named_query(query.sql, catalog.dialect(query.source))
            for name, query in catalog.queries.items()
        }
        self._tables_read = {
            name: tuple(sorted(sql.tables_read(named.expression)))
            for name, named in self._named.items()
        }

    def draft(self, request: QueryRequest, restrictions: Mapping[str, Any] = {}) -> Draft:
        """Every check that needs no schema, so a request refused by one of them never
        reaches the source, not even for its schema. ``restrictions`` is never mutated."""
        target = self.resolve(request)
        params = self._params(target, request, restrictions)
        if request.offset < 0 or request.offset > MAX_OFFSET:
            raise InvalidOption(f'"offset" must be between 0 and {MAX_OFFSET}.')
        if request.limit is not None and request.limit < 0:
            raise InvalidOption('"limit" must be 0 or more.')
        forced: list[sql.Filter] = []
        if restrictions and isinstance(target.config, TableConfig):
            forced = table_filters(restrictions, request.filters)
        return Draft(target, request, restrictions, params, forced)

    def plan(self, draft: Draft, schema: pa.Schema | None = None) -> Plan:
        """``schema``: the target's columns, required when ``draft.needs_schema``."""
        target, request = draft.target, draft.request
        options = self._options(draft, schema)
        source = self.catalog.sources[target.source]
        max_rows = source.max_rows
        capped = request.limit is None or request.limit > max_rows
        limit = max_rows + 1 if capped else request.limit
        options = replace(options, limit=limit)
        key = cache_key(
            {
                "source": self._identities[target.source],
                "target": [target.kind, target.name, self._definitions[(target.kind, target.name)]],
                "params": draft.params,
                "options": [
                    options.columns,
                    [[f.column, f.op, f.value] for f in options.filters],
                    options.order_by,
                    options.limit,
                    options.offset,
                    options.after,
                ],
                "restrictions": draft.restrictions or {},
            }
        )
        return Plan(
            target,
            draft.params,
            options,
            max_rows,
            capped,
            source.max_bytes,
            key,
            self._freshness(target),
            self._tags(target),
        )

    def statement(self, plan: Plan) -> sql.Statement:
        """The plan's SQL, built once per key: building it costs more than the rest of a
        small uncached request's planning."""
        statement = self._statements.pop(plan.key, None) or self._build(plan)
        self._statements[plan.key] = statement  # most recently used last
        if len(self._statements) > STATEMENTS_KEPT:
            del self._statements[next(iter(self._statements))]
        return statement

    def _build(self, plan: Plan) -> sql.Statement:
        target, style = plan.target, self.styles[plan.target.source]
        styled: dict[str, Any] = {"dialect": style.dialect, "style": style.paramstyle}
        options = plan.options
        if isinstance(target.config, TableConfig):
            name = target.config.table or target.name
            return sql.select_table(name, target.config.db_schema, options, **styled)
        named = self._named[target.name]
        return sql.select_named(named, dict(plan.params), options, **styled)

    def probe(self, target: Target) -> sql.Statement:
        """A statement that returns the target's columns and no row, or the few a source
        needs to tell their types (named queries run with their parameters' defaults, or
        NULL)."""
        specs = _specs(target)
        params = {
            n: s.convert(n, s.default) if s.default is not None else None for n, s in specs.items()
        }
        options = sql.Options(limit=self.styles[target.source].probe_rows)
        probe = Plan(target, params, options, 0, False, None, "", self.defaults, ())
        return self._build(probe)

    def declared_columns(self, target: Target) -> sql.Statement | None:
        """A statement listing a table's columns as declared (NOT NULL or not); None for a
        named query, whose result columns no catalog describes."""
        if not isinstance(target.config, TableConfig):
            return None
        style = self.styles[target.source]
        values = {"table": target.config.table or target.name, "schema": target.config.db_schema}
        return sql.select_named(
            style.columns, values, sql.Options(), dialect=style.dialect, style=style.paramstyle
        )

    def resolve(self, request: QueryRequest) -> Target:
        if (request.table is None) == (request.query is None):
            raise InvalidOption('Give exactly one of "table" or "query".')
        if request.table is not None:
            table = self.catalog.tables.get(request.table)
            if table is None:
                raise NotFound.for_name("table", request.table, self.catalog.tables)
            return Target(table.source, "table", request.table, table)
        assert request.query is not None
        query = self.catalog.queries.get(request.query)
        if query is None:
            raise NotFound.for_name("query", request.query, self.catalog.queries)
        return Target(query.source, "query", request.query, query)

    def cached(self, target: Target) -> bool:
        """Whether ``target``'s results are kept (a ttl above 0)."""
        return self._freshness(target).ttl > 0

    def _freshness(self, target: Target) -> Policy:
        source = self.catalog.sources[target.source]

        def pick(name: str) -> float:
            for layer in (target.config, source):
                value = getattr(layer, name)
                if value is not None:
                    return float(value)
            return float(getattr(self.defaults, name))

        return Policy(pick("ttl"), pick("stale_while_revalidate"), pick("stale_if_error"))

    def _tags(self, target: Target) -> tuple[str, ...]:
        if isinstance(target.config, TableConfig):
            read: tuple[str, ...] = (target.config.table or target.name,)
        else:
            read = self._tables_read[target.name]
        return (
            f"source:{target.source}",
            f"{target.kind}:{target.name}",
            *(f"reads:{table}" for table in read),
        )

    def _params(
        self, target: Target, request: QueryRequest, restrictions: Mapping[str, Any]
    ) -> dict[str, Any]:
        if isinstance(target.config, TableConfig) and request.params:
            raise InvalidParameter(
                'Tables take no "params"; use "filters" to select rows.', parameter="params"
            )
        given = dict(request.params)
        if restrictions and isinstance(target.config, QueryConfig):
            given = forced_params(restrictions, target.config.params, given, target.name)
        return convert_all(_specs(target), given)

    def _options(self, draft: Draft, schema: pa.Schema | None) -> sql.Options:
        target, request, forced = draft.target, draft.request, draft.forced
        if not draft.needs_schema:
            if isinstance(target.config, TableConfig) and target.config.columns:
                return sql.Options(columns=target.config.columns, offset=request.offset)
            return sql.Options(offset=request.offset)
        assert schema is not None, "the draft needs a schema"
        every = allowed = {f.name: f for f in schema}
        if isinstance(target.config, TableConfig) and target.config.columns:
            allowed = {n: t for n, t in allowed.items() if n in target.config.columns}
        columns = [_check_column(c, allowed) for c in request.columns or allowed]
        if len(set(columns)) < len(columns):  # each copy would widen every row again
            twice = next(c for i, c in enumerate(columns) if c in columns[:i])
            raise InvalidOption(f'"columns" names {twice!r} more than once; name each once.')
        filters = [_check_filter(i, f, allowed) for i, f in enumerate(request.filters)]
        if forced:  # on any column of the table, visible to the client or not
            check_applies(draft.restrictions, list(every), target.name)
            filters += [_check_filter(len(filters) + i, f, every) for i, f in enumerate(forced)]
        order = [(_check_column(c, allowed), d) for c, d in request.order_by]
        after = None if request.after is None else _after(order, request.after, allowed)
        not_null = frozenset(c for c, _ in order if not allowed[c].nullable)
        return sql.Options(columns, filters, order, None, request.offset, after, not_null)


def _specs(target: Target) -> dict[str, ParamSpec]:
    return target.config.params if isinstance(target.config, QueryConfig) else {}


def _check_column(name: str, allowed: Mapping[str, pa.Field]) -> str:
    if name not in allowed:
        raise InvalidOption.unknown_column(name, allowed)
    return name


def _after(
    order: Sequence[tuple[str, bool]], values: Sequence[Any], allowed: Mapping[str, pa.Field]
) -> list[Any]:
    """A keyset cursor's values converted to their columns' types, as filter values are
    (as sent where the source does not say the type: SQLite compares them as stored)."""
    if len(values) != len(order):
        raise InvalidCursor("This cursor does not match its order; start again.")
    return [
        value
        if value is None or pa.types.is_null(allowed[c].type)
        else _check_filter(i, sql.Filter(c, "eq", value), allowed).value
        for i, ((c, _), value) in enumerate(zip(order, values, strict=True))
    ]


def _check_filter(index: int, f: sql.Filter, allowed: Mapping[str, pa.Field]) -> sql.Filter:
    field = allowed[_check_column(f.column, allowed)]
    return filters.check(index, f, field, type_name(field.type))


def invalidation_tag(catalog: Catalog, kind: str, name: str) -> str:
    """The tag that invalidates every entry of a table, query or source. A name the catalog
    does not know cannot have produced an entry, so it is a typo: NotFound, "did you mean"."""
    if kind == "table":
        known = {table.table or name for name, table in catalog.tables.items()}
        for query in catalog.queries.values():
            parsed = sql.parse_named_query(query.sql, catalog.dialect(query.source))
            known |= sql.tables_read(parsed.expression)
    else:
        known = set(catalog.queries if kind == "query" else catalog.sources)
    if name not in known:
        raise unknown_name(NotFound, kind, name, known)
    return f"reads:{name}" if kind == "table" else f"{kind}:{name}"
