"""SQL built per dialect with sqlglot; values only ever travel as bind parameters.

Clients never send SQL. Identifiers they name are checked against the source's schema by the
service and quoted here; every value becomes a placeholder. To stay independent of each
driver's parameter style, placeholders are first rendered as marker names (``__ld_3__``) and
then rewritten, in text order, to the connector's style, so parameter order always matches
the text the driver receives.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError

ParamStyle = Literal["qmark", "dollar", "format"]
FilterOp = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "is_null", "contains", "has"]
FILTER_OPS: tuple[FilterOp, ...] = (
    *("eq", "ne", "lt", "le", "gt", "ge", "in", "is_null", "contains", "has"),
)

_MARKER = "__ld_"
_MARKER_RE = re.compile(r"__ld_(\d+)__")
_COMPARISONS: dict[str, type[exp.Binary]] = {
    "eq": exp.EQ,
    "ne": exp.NEQ,
    "lt": exp.LT,
    "le": exp.LTE,
    "gt": exp.GT,
    "ge": exp.GTE,
}


class SQLError(ValueError):
    """The builder's SQL cannot be served (raised while the catalog loads)."""


@dataclass(frozen=True)
class NamedQuery:
    expression: exp.Query
    parameters: frozenset[str]


@dataclass(frozen=True)
class Filter:
    column: str
    op: FilterOp
    value: Any = None
    cast: str | None = None  # the source type the bound value is cast to (a uuid, an enum)


@dataclass(frozen=True)
class Options:
    """What a client may shape on top of a table or named query; all of it structured."""

    columns: Sequence[str] | None = None
    filters: Sequence[Filter] = ()
    order_by: Sequence[tuple[str, bool]] = ()  # (column, descending)
    limit: int | None = None
    offset: int = 0
    # Keyset paging: the order_by values of the row to start after (None: from the start).
    after: Sequence[Any] | None = None
    # Ordered columns declared NOT NULL: no null ordering or test to write for them, which
    # would keep a source from ordering by an index (MySQL's CASE WHEN ... IS NULL).
    not_null: frozenset[str] = frozenset()

    @property
    def reshapes(self) -> bool:
        return bool(self.columns or self.filters or self.order_by)


@dataclass(frozen=True)
class Statement:
    """Final SQL text for one driver plus its positional parameters."""

    text: str
    params: tuple[Any, ...]


def parse_named_query(text: str, dialect: str) -> NamedQuery:
    """Check that ``text`` is one read-only query with only named ``:param`` placeholders."""
    if _MARKER in text:
        raise SQLError(f"the text {_MARKER!r} is reserved by livedata; rename it")
    try:
        statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    except SqlglotError as exc:
        raise SQLError(f"the SQL does not parse as {dialect}: {exc}") from exc
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise SQLError("the SQL must be exactly one SELECT (or UNION/WITH ... SELECT) statement")
    query = statements[0]
    names = set()
    for placeholder in query.find_all(exp.Placeholder):
        name = placeholder.args.get("this")  # sqlglot names a positional one "?" otherwise
        if not isinstance(name, str) or not name.isidentifier():
            raise SQLError("use named parameters like :country, not positional ones like ?")
        names.add(name)
    return NamedQuery(query, frozenset(names))


class _Binder:
    """Collects values and hands out marker expressions standing for them."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def bind(self, value: Any) -> exp.Expr:
        self.values.append(value)
        return exp.var(f"{_MARKER}{len(self.values) - 1}__")


@dataclass
class _Build:
    dialect: str
    style: ParamStyle
    binder: _Binder = field(default_factory=_Binder)


def select_table(
    table: str, schema: str | None, options: Options, *, dialect: str, style: ParamStyle
) -> Statement:
    build = _Build(dialect, style)
    source = exp.table_(
        exp.to_identifier(table, quoted=True),
        db=exp.to_identifier(schema, quoted=True) if schema else None,
    )
    query = _shape(exp.select().from_(source), options, build)
    return _render(query, build)


def select_named(
    named: NamedQuery, values: dict[str, Any], options: Options, *, dialect: str, style: ParamStyle
) -> Statement:
    build = _Build(dialect, style)
    inner = named.expression.copy()
    for placeholder in list(inner.find_all(exp.Placeholder)):
        placeholder.replace(build.binder.bind(values[placeholder.name]))
    if not options.reshapes and isinstance(inner, exp.Select) and not inner.args.get("limit"):
        # Limit the builder's own SELECT rather than wrapping it: MariaDB drops an ORDER BY
        # inside a derived table, so wrapping would lose the builder's order.
        query = _page(inner, options)
    else:
        query = _shape(exp.select().from_(inner.subquery("q")), options, build)
    return _render(query, build)


def _shape(query: exp.Select, options: Options, build: _Build) -> exp.Select:
    columns = options.columns or ["*"]
    query = query.select(*(exp.Star() if c == "*" else _column(c) for c in columns))
    for f in options.filters:
        query = query.where(_condition(f, build))
    if options.after is not None:
        query = query.where(_after(options, build))
    for column, descending in options.order_by:
        # Nulls sort as the largest value in every source (PostgreSQL's rule; sqlglot writes
        # it out where a dialect's default differs), so one request orders alike everywhere
        # and the keyset predicate below knows where they are.
        nulls_first = descending
        if column in options.not_null:  # the dialect's own rule: nothing written out
            nulls_first = _dialect_nulls_first(build.dialect, descending)
        ordered = exp.Ordered(this=_column(column), desc=descending, nulls_first=nulls_first)
        query = query.order_by(ordered)
    return _page(query, options)


def _dialect_nulls_first(dialect: str, descending: bool) -> bool:
    """Where ``dialect`` puts nulls by itself, as sqlglot names its rule."""
    rule = Dialect.get_or_raise(dialect).NULL_ORDERING
    return rule != "nulls_are_last" and (rule == "nulls_are_small") != descending


def _after(options: Options, build: _Build) -> exp.Expr:
    """Rows that come after the row holding ``options.after`` in ``options.order_by``, nulls
    largest: for some column, equal on every column before it and later on it. Null-aware,
    so a null anywhere in the order neither stops nor skips a page."""
    assert options.after is not None, "a keyset page"
    after: list[exp.Expr] = []
    equal: list[exp.Expr] = []
    for (name, descending), value in zip(options.order_by, options.after, strict=True):
        column = _column(name)
        is_null = exp.Is(this=column, expression=exp.Null())
        if value is None:  # nulls are last ascending, first descending
            later: exp.Expr | None = exp.Not(this=is_null) if descending else None
            same: exp.Expr = is_null
        else:
            bound = build.binder.bind(value)
            compare = exp.LT if descending else exp.GT
            later = compare(this=column, expression=bound)
            if not descending and name not in options.not_null:  # nulls come after it
                later = exp.or_(later, is_null)
            same = exp.EQ(this=column, expression=build.binder.bind(value))
        if later is not None:
            after.append(exp.and_(*equal, later) if equal else later)
        equal.append(same)
    return exp.or_(*after) if after else exp.false()


def _page(query: exp.Select, options: Options) -> exp.Select:
    if options.limit is not None:
        query = query.limit(options.limit)
    if options.offset:
        query = query.offset(options.offset)
    return query


def _column(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True))


def _condition(f: Filter, build: _Build) -> exp.Expr:
    column = _column(f.column)
    if f.op in _COMPARISONS:
        return _COMPARISONS[f.op](this=column, expression=_value(f, f.value, build))
    if f.op == "in":
        if f.cast is not None:  # each value cast on its own
            return exp.In(this=column, expressions=[_value(f, v, build) for v in f.value])
        return exp.In(this=column, expressions=[build.binder.bind(list(f.value))])
    if f.op == "is_null":
        test = exp.Is(this=column, expression=exp.Null())
        return test if f.value in (None, True) else exp.Not(this=test)
    if f.op == "has":  # a list holds the value: each dialect's own membership test
        return exp.ArrayContains(this=column, expression=_value(f, f.value, build))
    position = exp.StrPosition(this=column, substr=build.binder.bind(f.value))
    return exp.GT(this=position, expression=exp.Literal.number(0))


def _value(f: Filter, value: Any, build: _Build) -> exp.Expr:
    """A bound value; cast to the column's source type when the filter names one, so the
    column itself is compared as it is (and its index applies)."""
    bound = build.binder.bind(value)
    if f.cast is None:
        return bound
    return exp.cast(bound, exp.DataType.build(f.cast, dialect=build.dialect, udt=True))


def _render(query: exp.Expr, build: _Build) -> Statement:
    text = query.sql(dialect=build.dialect)
    if build.style == "format":
        text = text.replace("%", "%%")  # the driver applies %-formatting to the whole text
    params: list[Any] = []

    def placeholder(match: re.Match[str]) -> str:
        value = build.binder.values[int(match.group(1))]
        items = value if isinstance(value, list) else [value]
        if not items:
            return "NULL"  # `x IN (NULL)` matches nothing, like an empty list should
        marks = []
        for item in items:
            params.append(item)
            marks.append({"qmark": "?", "format": "%s", "dollar": f"${len(params)}"}[build.style])
        return ", ".join(marks)

    return Statement(_MARKER_RE.sub(placeholder, text), tuple(params))


def tables_read(query: exp.Query) -> set[str]:
    """The tables a query reads (not its CTEs): what cache invalidation tags it with."""
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    return {t.name for t in query.find_all(exp.Table) if t.name and t.name not in ctes}
