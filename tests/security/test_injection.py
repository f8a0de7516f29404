"""An SQL-injection corpus through every value and every identifier a client can send,
against DuckDB, PostgreSQL and MariaDB.

Values: the SQL text reaching the driver is the same as for a harmless value; only the
bound values change, and they carry the payload unchanged. The text is read at the
connector boundary by subclasses of the real connectors, registered for this module in the
connector registry (they record each Statement, then run it as usual). PyMySQL binds on the
client: it escapes each value into the text it sends, so for MariaDB the exact text sent is
recorded too (``mogrify`` on the same connection) and parsed: its shape must equal the
harmless one's, with the payload inside one string literal.
Identifiers: any name outside the source's schema is a 422 before any SQL is built.
A canary table in each database survives the corpus.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import httpx
import pytest
import sqlglot
from sqlglot import exp

from livedata.catalog import Catalog
from livedata.connectors import registry
from livedata.connectors.duckdb import DuckDBConnector, DuckDBSource
from livedata.connectors.mysql import MySQLConnector
from livedata.connectors.postgres import PostgresConnector
from livedata.sample.load import DATA
from livedata.sql import Statement
from tests.samples import PG_DSN, TEST_DATABASE, Sample

KINDS = ("duckdb", "postgres", "mysql")
CANARY = "injection_canary"
PAYLOADS = [
    "'",
    "''",
    '"',
    "' OR '1'='1",
    "' OR 1=1 --",
    "'; DROP TABLE injection_canary; --",
    ";DROP TABLE injection_canary",
    "1; DROP TABLE injection_canary",
    "' UNION SELECT 1, version(), 3, 4 --",
    "x' UNION ALL SELECT NULL, NULL, NULL, NULL#",
    "'; SELECT pg_sleep(10); --",
    "1) OR pg_sleep(10) IS NULL --",
    "/* comment */ 'x' -- ",
    "\\'; DROP TABLE injection_canary; -- ",  # a backslash before the quote: MySQL escapes
    "\\",
    "\\\\'",
    "\u02bc OR 1=1 --",  # modifier letter apostrophe
    "\u2019; DROP TABLE injection_canary; --",  # right single quotation mark
    "\uff07 OR \uff071\uff07=\uff071",  # fullwidth apostrophes
    "%s %% ? $1 :region",  # every placeholder style the connectors use
    "x\x00'; DROP TABLE injection_canary; --",  # NUL byte
    "A" * 20_000 + "'",
]
BY_REGION = (
    "SELECT alpha_3, name, population, area_km2 FROM world_country_list "
    "WHERE region = :region AND population >= :min_population ORDER BY alpha_3"
)


class Recording:
    """Records every statement the connector runs (and, for PyMySQL, the text it sends)."""

    seen: ClassVar[list[tuple[Statement, str | None]]] = []

    def _execute(self, conn: Any, statement: Statement) -> Any:
        sent = None
        if isinstance(self, MySQLConnector):
            with conn.cursor() as cursor:
                sent = cursor.mogrify(statement.text, statement.params)
        Recording.seen.append((statement, sent))
        return super()._execute(conn, statement)  # type: ignore[misc]


class RecordingDuckDB(Recording, DuckDBConnector):
    pass


class RecordingPostgres(Recording, PostgresConnector):
    pass


class RecordingMySQL(Recording, MySQLConnector):
    pass


@pytest.fixture(scope="module")
def url(serve: Callable[..., str], sample_of: Callable[[str], Sample]) -> Iterator[str]:
    recorders = {
        "duckdb": "RecordingDuckDB",
        "postgres": "RecordingPostgres",
        "mysql": "RecordingMySQL",
    }
    saved = dict(registry.CONNECTORS)
    for kind, name in recorders.items():
        registry.register(kind, f"{__name__}:{name}", saved[kind][1])
    sources: dict[str, Any] = {}
    for kind in KINDS:
        config = sample_of(kind).config
        if isinstance(config, DuckDBSource):
            config = config.model_copy(
                update={"load": {**config.load, CANARY: DATA / "world_country_list.parquet"}}
            )
        else:
            _create_canary(kind, config)
        sources[kind] = config
    tables: dict[str, Any] = {}
    queries: dict[str, Any] = {}
    for kind in KINDS:
        tables[f"countries_{kind}"] = {"source": kind, "table": "world_country_list"}
        tables[f"canary_{kind}"] = {"source": kind, "table": CANARY}
        queries[f"by_region_{kind}"] = {
            "source": kind,
            "sql": BY_REGION,
            "ttl": 0,
            "params": {"region": {"type": "str"}, "min_population": {"type": "int", "default": 0}},
        }
    try:
        catalog = Catalog.model_validate({"sources": sources, "tables": tables, "queries": queries})
        yield serve(catalog, cache_ttl=0)
    finally:
        registry.CONNECTORS.update(saved)


def _create_canary(kind: str, config: Any) -> None:
    if kind == "postgres":
        import psycopg

        with psycopg.connect(PG_DSN, autocommit=True) as db:
            db.execute(f"CREATE TABLE IF NOT EXISTS {CANARY} (alive int)")
            db.execute(f"DELETE FROM {CANARY}")
            db.execute(f"INSERT INTO {CANARY} VALUES (1)")
    else:
        import pymysql

        db = pymysql.connect(host="127.0.0.1", user="root", database=TEST_DATABASE, autocommit=True)
        with db, db.cursor() as cursor:
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {CANARY} (alive int)")
            cursor.execute(f"DELETE FROM {CANARY}")
            cursor.execute(f"INSERT INTO {CANARY} VALUES (1)")


def _value_requests(kind: str, value: Any) -> dict[str, dict[str, Any]]:
    """Every place a client puts a value, each with ``value`` in it."""
    table = {"table": f"countries_{kind}"}
    return {
        "param": {"query": f"by_region_{kind}", "params": {"region": value}},
        "filter_eq": {**table, "filters": [{"column": "name", "op": "eq", "value": value}]},
        "filter_contains": {
            **table,
            "filters": [{"column": "name", "op": "contains", "value": value}],
        },
        "filter_in": {
            **table,
            "filters": [{"column": "name", "op": "in", "value": ["FRA", value]}],
        },
        "list_of_values": {**table, "filters": [{"column": "region", "op": "ne", "value": value}]},
    }


def _identifier_requests(kind: str, name: str) -> dict[str, dict[str, Any]]:
    table = {"table": f"countries_{kind}"}
    return {
        "column": {**table, "columns": ["name", name]},
        "filter_column": {**table, "filters": [{"column": name, "op": "eq", "value": "x"}]},
        "order_by": {**table, "order_by": [{"column": name}]},
        "table": {"table": name},
        "query": {"query": name},
    }


def _run(
    url: str, body: dict[str, Any]
) -> tuple[httpx.Response, list[tuple[Statement, str | None]]]:
    Recording.seen.clear()
    response = httpx.post(f"{url}/query", json=body, timeout=60)
    return response, list(Recording.seen)


def _shape(sent: str) -> tuple[str, list[str]]:
    """What PyMySQL sent, with its literals taken out: the statement's shape, and the strings."""
    statements = sqlglot.parse(sent, read="mysql")
    assert len(statements) == 1, f"one statement became {len(statements)}: {sent[:200]}"
    tree = statements[0]
    assert tree is not None
    strings = [lit.this for lit in tree.find_all(exp.Literal) if lit.is_string]
    for literal in list(tree.find_all(exp.Literal)):
        literal.replace(exp.Placeholder())
    return tree.sql(dialect="mysql"), strings


@pytest.mark.parametrize("kind", KINDS)
def test_values_are_bound_never_spliced(url: str, kind: str) -> None:
    harmless = {place: _run(url, body) for place, body in _value_requests(kind, "Oceania").items()}
    for payload in PAYLOADS:
        for place, body in _value_requests(kind, payload).items():
            response, seen = _run(url, body)
            where = f"{kind} {place} {payload[:40]!r}"
            assert response.status_code in (200, 422), f"{where}: {response.text[:300]}"
            if response.status_code == 422:  # refused as a value: NUL, or a rule
                assert response.json()["error"]["code"] in ("invalid_parameter", "invalid_option")
                assert seen == [], f"{where}: a refused value reached the source"
                continue
            if place in ("param", "filter_eq"):  # no region or country has such a name
                assert response.json()["rows"] == [], where
            (statement, sent), (expected, expected_sent) = seen[-1], harmless[place][1][-1]
            assert statement.text == expected.text, where
            assert payload in statement.params, where
            if sent is not None:  # PyMySQL: what the server received has the same shape
                assert expected_sent is not None
                shape, strings = _shape(sent)
                assert shape == _shape(expected_sent)[0], where
                assert len(strings) == len(_shape(expected_sent)[1]), where
    canary = httpx.post(f"{url}/query", json={"table": f"canary_{kind}"}, timeout=60)
    assert canary.status_code == 200, canary.text
    assert canary.json()["rows"], "the canary table lost its row"


@pytest.mark.parametrize("kind", KINDS)
def test_identifiers_outside_the_schema_are_refused(url: str, kind: str) -> None:
    names = [p for p in PAYLOADS if len(p) < 1000] + [
        'name" FROM world_country_list; --',
        "NAME",
        "name ",
    ]
    for name in names:
        for place, body in _identifier_requests(kind, name).items():
            response, seen = _run(url, body)
            where = f"{kind} {place} {name[:40]!r}"
            assert response.status_code in (404, 422), f"{where}: {response.text[:300]}"
            assert seen == [] or all("LIMIT 0" in s.text for s, _ in seen), where
