"""Checking a catalog against its sources, before a client finds what is wrong.

Loading the catalog checks what the file alone can show. These checks ask the sources: each
answers; each exposed table exists (its columns probed as ``/queries`` and shaped requests
probe them, through ``Schemas``) and has every column its ``columns`` allow-list names; each
named query runs (``LIMIT 0``) with a value of each parameter's declared type, so a missing
table or column, or a parameter declared with a type the SQL cannot compare, shows now; so does
a ``column_descriptions`` entry for a column the result lacks. A source that does not answer
is one problem; its tables and queries are not asked.

Every statement goes through the service's admission, like a request's: its queue, slots and
budgets bound them. ``livedata catalog check --connect`` prints the result. The light check,
whether each source answers (the same ``ping``), is ``/ready``'s, through
``Sources.readiness``, which also bounds how often a public probe may reach the sources.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import pyarrow as pa

from livedata.connectors.stream import Caps
from livedata.errors import InvalidParameter, LivedataError, SourceUnavailable
from livedata.params import ParamSpec
from livedata.plan import QueryRequest, Target
from livedata.service import QueryService
from livedata.sql import Statement

CALLER = "catalog-check"  # who pays for the checks' statements, if budgets are set
# Candidate values for a parameter without a default, tried in order until one converts.
_CANDIDATES: dict[str, tuple[Any, ...]] = {
    "int": (0, 1),
    "float": (0.0, 1.0),
    "str": ("a", "A", "AAA", "0", "a@example.com"),
    "bool": (False,),
    "date": ("2000-01-01",),
    "datetime": ("2000-01-01T00:00:00+00:00", "2000-01-01T00:00:00"),
    "enum": (),
}
# A driver's message may quote its connection string: never print a password from it.
_PASSWORD = re.compile(r"(password\s*=\s*|://[^/\s:@]+:)[^\s@'\"]+", re.IGNORECASE)


@dataclass(frozen=True)
class Problem:
    """One thing a source says is wrong with the catalog."""

    field: str  # where in the catalog: "tables.orders.columns"
    message: str  # what is wrong
    fix: str  # what to do about it

    def __str__(self) -> str:
        return f"{self.field}: {self.message}. Fix: {self.fix}"


async def check(service: QueryService) -> list[Problem]:
    """Every problem the sources show, in catalog order (sources checked side by side)."""
    found: dict[str, list[Problem]] = {}

    async def one(source: str) -> None:
        found[source] = await _check_source(service, source)

    async with anyio.create_task_group() as tasks:
        for source in service.catalog.sources:
            tasks.start_soon(one, source)
    return [problem for source in service.catalog.sources for problem in found[source]]


async def _check_source(service: QueryService, source: str) -> list[Problem]:
    catalog = service.catalog
    tables = [name for name, t in catalog.tables.items() if t.source == source]
    queries = [name for name, q in catalog.queries.items() if q.source == source]
    try:
        await anyio.to_thread.run_sync(service.sources[source].ping)
    except LivedataError as exc:
        skipped = f" (its {len(tables)} table(s) and {len(queries)} query(ies) were not checked)"
        return [Problem(f"sources.{source}", _reason(exc) + skipped, _reach(service, source))]
    problems = []
    for name in tables:
        problems += await _check_table(service, name)
    for name in queries:
        problems += await _check_query(service, name)
    return problems


async def _check_table(service: QueryService, name: str) -> list[Problem]:
    target = service.planner.resolve(QueryRequest(table=name))
    config = service.catalog.tables[name]
    in_source = ".".join(p for p in (config.db_schema, config.table or name) if p)
    try:
        schema = await service.schemas.of(target, CALLER)
    except LivedataError as exc:
        field = f"tables.{name}.table" if config.table else f"tables.{name}"
        return [
            Problem(
                field,
                f"reading {in_source!r}: {_reason(exc)}",
                f"name the table as the source spells it (`table`, and `schema` if not the "
                f"default), or remove [tables.{name}]",
            )
        ]
    where = f"{in_source!r} in source {target.source!r}"
    return _unknown(f"tables.{name}.columns", config.columns or [], schema, where) + _unknown(
        f"tables.{name}.column_descriptions", config.column_descriptions, schema, where
    )


def _unknown(field: str, named: Iterable[str], schema: pa.Schema, where: str) -> list[Problem]:
    """A problem for each column ``named`` at ``field`` that ``schema`` lacks."""
    problems = []
    for column in named:
        if column not in schema.names:
            close = difflib.get_close_matches(column, schema.names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(
                Problem(
                    field,
                    f"{column!r} is not a column of {where}",
                    f"{hint}its columns: {', '.join(schema.names)}",
                )
            )
    return problems


async def _check_query(service: QueryService, name: str) -> list[Problem]:
    target = service.planner.resolve(QueryRequest(query=name))
    statement, shown = _typed_probe(service, target)
    try:
        stream = await service.admission.open(target, statement, Caps(), CALLER)
        try:
            result = await anyio.to_thread.run_sync(stream.read_all)
        finally:
            await stream.aclose()
    except LivedataError as exc:
        return [
            Problem(
                f"queries.{name}.sql",
                f"it fails with {shown} (and LIMIT 0): {_reason(exc)}",
                "check the tables and columns it names, and that each :parameter's declared "
                "type fits where the SQL uses it",
            )
        ]
    described = service.catalog.queries[name].column_descriptions
    return _unknown(f"queries.{name}.column_descriptions", described, result.schema, "its result")


def _typed_probe(service: QueryService, target: Target) -> tuple[Statement, str]:
    """The query's statement with ``LIMIT 0`` and a value of each parameter's type (its
    default where it has one); the planner's own probe (NULL for the others) when no
    candidate value passes a parameter's rules."""
    specs: dict[str, ParamSpec] = getattr(target.config, "params", {})
    values = {name: sample_value(spec) for name, spec in specs.items()}
    if any(value is None for value in values.values()):
        return service.planner.probe(target), "its defaults or NULL"
    planner = service.planner
    request = QueryRequest(query=target.name, params=values, limit=0)
    plan = planner.plan(planner.draft(request))
    shown = ", ".join(f"{n}={v!r}" for n, v in values.items()) or "no parameters"
    return planner.statement(plan), shown


def sample_value(spec: ParamSpec) -> Any:
    """A value ``spec`` accepts (its default first), or None when no candidate passes."""
    candidates = [spec.default, spec.min, spec.max, *(spec.values or [])]
    candidates += _CANDIDATES[spec.item_type]
    for candidate in candidates:
        if candidate is None:
            continue
        value = candidate
        if spec.is_list and not isinstance(candidate, list):
            value = [candidate] * max(1, spec.min_length or 1)
        try:
            spec.convert("sample", value)
        except InvalidParameter:
            continue
        return value
    return None


def _reason(error: LivedataError) -> str:
    """The error's message; for a source that cannot be reached, with the driver's reason,
    which a client never sees (it may name an address) but the operator needs; any
    password in it masked."""
    message = error.message
    cause = error.__cause__
    if isinstance(error, SourceUnavailable) and cause is not None:
        lines = str(cause).strip().splitlines()
        reason = lines[0][:200] if lines else type(cause).__name__
        message = f"{message.removesuffix('; try again later.')}: {reason}"
    return _PASSWORD.sub(r"\1***", message)


def _reach(service: QueryService, source: str) -> str:
    config = service.catalog.sources[source]
    where = [
        f"{field} = {getattr(config, field)!r}"
        for field in ("host", "port", "database", "user", "path")
        if getattr(config, field, None) is not None
    ]
    return (
        f"check that the database runs and accepts this account, and {source}'s settings "
        f"({', '.join(where)}; the environment may override them)"
    )
