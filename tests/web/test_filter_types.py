"""Filters know column types: the ops each type takes, decided before the source is asked;
a PostgreSQL uuid or enum, a DuckDB uuid, compared by casting the bound value (never the
column)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from livedata.catalog import load_catalog
from tests.conftest import require_service
from tests.samples import PG_DSN, TEST_DATABASE, _ping, _samples

UUID = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
TABLE = f"""
DROP TABLE IF EXISTS filter_types;
DROP TYPE IF EXISTS filter_mood;
CREATE TYPE filter_mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE filter_types (id int, u uuid, mood filter_mood, prefs jsonb, tags text[], t time);
INSERT INTO filter_types VALUES
  (1, '{UUID}', 'ok', '{{"lang": "de"}}', ARRAY['a'], '10:00'),
  (2, gen_random_uuid(), 'sad', NULL, NULL, NULL);
"""


@pytest.fixture(scope="module")
def url(serve: Callable[..., str], tmp_path_factory: pytest.TempPathFactory) -> str:
    folder: Path = tmp_path_factory.mktemp("filters")
    sample = _samples(folder)["postgres"]
    require_service(str(sample.service), lambda: _ping(sample))
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as db:
        db.execute("SET client_min_messages = warning")
        db.execute(TABLE)  # type: ignore[arg-type]  # a fixed script, no parameters
    with duckdb.connect(str(folder / "uuids.duckdb")) as db:
        db.execute(f"CREATE TABLE uuids AS SELECT 1 AS id, '{UUID}'::UUID AS u, [1, 2] AS nums")
    (folder / "catalog.toml").write_text(
        f'[sources.pg]\nkind = "postgres"\ndatabase = "{TEST_DATABASE}"\nttl = 0\n'
        '[tables.filter_types]\nsource = "pg"\n'
        '[sources.duck]\nkind = "duckdb"\npath = "uuids.duckdb"\nttl = 0\n'
        '[tables.uuids]\nsource = "duck"\n'
    )
    return serve(load_catalog(folder / "catalog.toml"))


def _ask(url: str, *filters: dict[str, Any], table: str = "filter_types") -> httpx.Response:
    body = {"table": table, "columns": ["id"], "filters": list(filters)}
    return httpx.post(f"{url}/query", json=body, timeout=30)


def test_a_duckdb_list_takes_has(url: str) -> None:
    found = _ask(url, {"column": "nums", "op": "has", "value": 2}, table="uuids")
    assert found.status_code == 200, found.text
    assert found.json()["rows"] == [[1]]
    missing = _ask(url, {"column": "nums", "op": "has", "value": 3}, table="uuids")
    assert missing.json()["rows"] == []
    wrong = _ask(url, {"column": "nums", "op": "has", "value": "two"}, table="uuids")
    assert wrong.status_code == 422, wrong.text


def test_a_duckdb_uuid_takes_equality_with_its_value_cast(url: str) -> None:
    found = _ask(url, {"column": "u", "op": "in", "value": [UUID]}, table="uuids")
    assert found.status_code == 200, found.text
    assert found.json()["rows"] == [[1]]
    refused = _ask(url, {"column": "u", "op": "contains", "value": "a0"}, table="uuids")
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"]["ops"] == ["eq", "ne", "in", "is_null"]


@pytest.mark.parametrize(
    "where",
    [
        pytest.param({"column": "u", "op": "eq", "value": UUID}, id="uuid-eq"),
        pytest.param({"column": "u", "op": "in", "value": [UUID, UUID]}, id="uuid-in"),
        pytest.param({"column": "mood", "op": "eq", "value": "ok"}, id="enum-eq"),
        pytest.param({"column": "mood", "op": "in", "value": ["ok", "happy"]}, id="enum-in"),
        pytest.param({"column": "prefs", "op": "is_null", "value": False}, id="json-is-null"),
        pytest.param({"column": "tags", "op": "has", "value": "a"}, id="array-has"),
    ],
)
def test_a_filter_binds_its_value_as_the_column_type(url: str, where: dict[str, Any]) -> None:
    response = _ask(url, where)
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [[1]]


@pytest.mark.parametrize(
    ("where", "kind", "ops"),
    [
        pytest.param(
            {"column": "prefs", "op": "contains", "value": "de"}, "json", ["is_null"], id="json"
        ),
        pytest.param(
            {"column": "tags", "op": "eq", "value": "a"},
            "list<string>",
            ["has", "is_null"],
            id="list",
        ),
        pytest.param(
            {"column": "u", "op": "contains", "value": "a0"},
            "string",
            ["eq", "ne", "in", "is_null"],
            id="uuid-contains",
        ),
        pytest.param(
            {"column": "u", "op": "lt", "value": UUID},
            "string",
            ["eq", "ne", "in", "is_null"],
            id="uuid-lt",
        ),
        pytest.param({"column": "t", "op": "gt", "value": "09:00"}, "time", ["is_null"], id="time"),
    ],
)
def test_a_filter_that_cannot_apply_is_a_422_naming_the_ops(
    url: str, where: dict[str, Any], kind: str, ops: list[str]
) -> None:
    response = _ask(url, where)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_option"
    assert error["details"] == {
        "filter": 0,
        "column": where["column"],
        "type": kind,
        "ops": ops,
    }
    assert f"it takes {', '.join(ops)}" in error["message"]


def test_queries_lists_the_ops_of_each_column(url: str) -> None:
    columns = httpx.get(f"{url}/queries", timeout=30).json()["tables"]["filter_types"]["columns"]
    ops = {c["name"]: c["ops"] for c in columns}
    assert ops["id"] == ["eq", "ne", "lt", "le", "gt", "ge", "in", "is_null"]
    assert ops["u"] == ops["mood"] == ["eq", "ne", "in", "is_null"]
    assert ops["prefs"] == ops["t"] == ["is_null"]
    assert ops["tags"] == ["has", "is_null"]
