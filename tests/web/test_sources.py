"""The same requests through HTTP against every kind of source give the same JSON.

Each connector's own behaviour is proven in tests/connectors; this proves the encodings are
identical end to end, and that source failures become 503 and 504 answers.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from livedata.catalog import Catalog
from livedata.sample.load import DATA
from tests.samples import KINDS, Sample

BY_REGION = (
    "SELECT alpha_3, name, population, area_km2 FROM world_country_list "
    "WHERE region = :region AND population >= :min_population ORDER BY alpha_3"
)
SERVERS_WITH_DECIMALS = ("duckdb", "postgres", "mysql")  # SQLite stores decimals as REAL


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def url(serve: Callable[..., str], sample_of: Callable[[str], Sample]) -> str:
    sources: dict[str, Any] = {
        kind: sample_of(kind).config.model_copy(update={"statement_timeout": 0.5}) for kind in KINDS
    }
    sources["down"] = sample_of("postgres").config.model_copy(
        update={"port": _closed_port(), "connect_timeout": 1}
    )
    tables: dict[str, Any] = {"down_countries": {"source": "down", "table": "world_country_list"}}
    queries: dict[str, Any] = {}
    for kind in KINDS:
        tables[f"countries_{kind}"] = {"source": kind, "table": "world_country_list"}
        tables[f"live_countries_{kind}"] = {"source": kind, "table": "world_country_list", "ttl": 0}
        tables[f"lineitem_{kind}"] = {"source": kind, "table": "tpch_lineitem"}
        tables[f"live_lineitem_{kind}"] = {"source": kind, "table": "tpch_lineitem", "ttl": 0}
        queries[f"by_region_{kind}"] = {
            "source": kind,
            "sql": BY_REGION,
            "params": {"region": {"type": "str"}, "min_population": {"type": "int", "default": 0}},
        }
        queries[f"slow_{kind}"] = {"source": kind, "sql": sample_of(kind).slow_sql}
    catalog = Catalog.model_validate({"sources": sources, "tables": tables, "queries": queries})
    return serve(catalog)


def ask(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/query", json=body, timeout=60)


@pytest.mark.parametrize("kind", KINDS)
def test_the_country_table_is_identical_from_every_source(url: str, kind: str) -> None:
    expected = ask(url, {"table": "countries_duckdb"}).json()
    got = ask(url, {"table": f"countries_{kind}", "order_by": [{"column": "alpha_3"}]}).json()
    assert got["columns"] == expected["columns"]
    assert got["rows"] == expected["rows"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_named_query_is_identical_from_every_source(url: str, kind: str) -> None:
    body = {"params": {"region": "Oceania", "min_population": "100000"}}
    expected = ask(url, {"query": "by_region_duckdb", **body}).json()
    got = ask(url, {"query": f"by_region_{kind}", **body}).json()
    assert got["rows"] == expected["rows"]
    assert len(got["rows"]) > 10


@pytest.mark.parametrize("kind", KINDS)
def test_filters_and_order_are_identical_from_every_source(url: str, kind: str) -> None:
    """SQLite reports no column type for a result with no row, and the schema probe reads
    none: every typed filter on a SQLite table was refused ("'ge' does not apply to column
    'population' (null)")."""
    body = {
        "columns": ["alpha_3", "population", "area_km2"],
        "filters": [
            {"column": "population", "op": "ge", "value": 50_000_000},
            {"column": "area_km2", "op": "lt", "value": 1e6},
            {"column": "region", "op": "in", "value": ["Asia", "Europe"]},
        ],
        "order_by": [{"column": "population", "desc": True}],
    }
    expected = ask(url, {"table": "countries_duckdb", **body}).json()
    got = ask(url, {"table": f"countries_{kind}", **body})
    assert got.status_code == 200, got.text
    assert got.json()["rows"] == expected["rows"]
    assert len(got.json()["rows"]) > 5


@pytest.mark.parametrize("kind", SERVERS_WITH_DECIMALS)
def test_decimals_and_dates_are_identical(url: str, kind: str) -> None:
    body = {
        "columns": ["l_orderkey", "l_linenumber", "l_extendedprice", "l_discount", "l_shipdate"],
        "filters": [
            {"column": "l_shipdate", "op": "ge", "value": "1998-11-01"},
            {"column": "l_extendedprice", "op": "gt", "value": "50000.5"},
        ],
        "order_by": [{"column": "l_orderkey"}, {"column": "l_linenumber"}],
        "limit": 500,
    }
    expected = ask(url, {"table": "lineitem_duckdb", **body}).json()
    got = ask(url, {"table": f"lineitem_{kind}", **body}).json()
    assert got["rows"] == expected["rows"]
    assert got["rows"], "the filter should match some rows"
    assert {"name": "l_extendedprice", "type": "decimal(15,2)"} in got["columns"]


@pytest.mark.parametrize("kind", KINDS)
def test_statement_timeout_is_504(url: str, kind: str) -> None:
    response = ask(url, {"query": f"slow_{kind}"})
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "statement_timeout"
    assert error["message"] == f"Source '{kind}' cancelled the query after 0.5 s."


def test_a_source_that_is_down_is_503_naming_only_the_source(url: str) -> None:
    response = ask(url, {"table": "down_countries"})
    assert response.status_code == 503
    assert response.headers["retry-after"]
    error = response.json()["error"]
    assert error["code"] == "source_unavailable"
    assert "'down'" in error["message"]
    assert "127.0.0.1" not in response.text
    ready = httpx.get(f"{url}/ready")
    assert ready.status_code == 200  # the node still answers hits and stale-if-error
    assert ready.json()["status"] == "degraded"
    assert ready.json()["sources"]["down"]["status"] == "source_unavailable"
    assert ready.json()["sources"]["postgres"] == {"status": "ok"}


@pytest.mark.parametrize("kind", KINDS)
def test_a_tables_columns_say_whether_they_may_be_null_as_declared(url: str, kind: str) -> None:
    """The sample's required Parquet columns are NOT NULL in every source (DuckDB loads the
    file itself); a named query's columns do not say, since no source can tell."""
    required = {
        f.name for f in pq.read_schema(DATA / "world_country_list.parquet") if not f.nullable
    }
    listed = httpx.get(f"{url}/queries", timeout=60).json()
    columns = listed["tables"][f"countries_{kind}"]["columns"]
    assert {c["name"] for c in columns if c["nullable"] is False} == required
    assert all(c["nullable"] is True for c in columns if c["name"] not in required)
    assert required  # alpha_3, name...
    assert not any("nullable" in c for c in listed["queries"][f"by_region_{kind}"]["columns"])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "order",
    [
        pytest.param([("region", False), ("alpha_3", True)], id="nulls-last-ascending"),
        pytest.param([("area_km2", True), ("alpha_3", False)], id="nulls-first-descending"),
    ],
)
def test_keyset_pages_walk_every_row_in_one_order_from_every_source(
    url: str, kind: str, order: list[tuple[str, bool]]
) -> None:
    """Nothing cached (ttl 0): pages by keyset. Nulls sort as the largest value in every
    source, so each source gives the same pages, with no row lost or repeated."""
    countries = pq.read_table(DATA / "world_country_list.parquet").to_pylist()
    for column, descending in reversed(order):  # stable sorts, last key first; None largest
        countries.sort(key=lambda row: (row[column] is None, row[column] or 0), reverse=descending)
    first: dict[str, Any] = {
        "table": f"live_countries_{kind}",
        "columns": ["alpha_3"],
        "order_by": [{"column": c, "desc": d} for c, d in order],
        "limit": 20,
        "paginate": True,
    }
    assert keyset_walk(url, first) == [[row["alpha_3"]] for row in countries]


@pytest.mark.parametrize("kind", SERVERS_WITH_DECIMALS)
def test_keyset_cursors_carry_dates_and_decimals_back_as_they_were(url: str, kind: str) -> None:
    """The last row's values go into the cursor as JSON and come back converted to their
    columns' types: a date and a decimal in the order, pages of 100 equal to one answer.
    (SQLite keeps decimals as REAL and dates as text: its values go back as stored.)"""
    order = [("l_shipdate", True), ("l_extendedprice", False), ("l_orderkey", False)]
    first = {
        "table": f"live_lineitem_{kind}",
        "columns": ["l_orderkey", "l_linenumber"],
        "filters": [{"column": "l_orderkey", "op": "le", "value": 1000}],
        "order_by": [{"column": c, "desc": d} for c, d in [*order, ("l_linenumber", False)]],
    }
    whole = ask(url, first)
    assert whole.status_code == 200, whole.text
    assert len(whole.json()["rows"]) > 500

    assert keyset_walk(url, {**first, "limit": 100, "paginate": True}) == whole.json()["rows"]


def keyset_walk(url: str, first: dict[str, Any]) -> list[Any]:
    paged, response = [], ask(url, first)
    while True:
        assert response.status_code == 200, response.text
        assert response.json()["meta"]["paging"] == "keyset"
        paged += response.json()["rows"]
        cursor = response.json()["meta"]["next"]
        if cursor is None:
            return paged
        response = ask(url, {"table": first["table"], "cursor": cursor})
