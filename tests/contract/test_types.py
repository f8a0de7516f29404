"""The type matrix (docs/types.md) as a contract: the same tricky values from every
connector that has the type, read in every format, uncached and cached (miss, then hit),
compared with the documented encodings.

Each case is one named query selecting one typed value: the value's type comes from the
driver exactly as a stored column's would. A connector without the type has no entry.
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from livedata.catalog import load_catalog
from livedata.encoders.json import json_values
from tests.conftest import require_service
from tests.samples import TEST_DATABASE, _ping, _samples

FORMATS = ("json", "ndjson", "csv", "arrow", "parquet")


@dataclass(frozen=True)
class Case:
    """One value: its SQL per connector kind, and its JSON encoding."""

    sql: dict[str, str]
    json: Any


BIG = 9007199254740993  # 2^53 + 1: a browser would round it
CASES = {
    "bigint": Case(
        {
            "postgres": f"{BIG}::bigint",
            "mysql": f"CAST({BIG} AS SIGNED)",
            "duckdb": f"{BIG}::BIGINT",
            "sqlite": f"{BIG}",
        },
        str(BIG),
    ),
    "decimal-tiny": Case(
        {
            "postgres": "0.0000000001::numeric(20,10)",
            "mysql": "CAST(0.0000000001 AS DECIMAL(20,10))",
            "duckdb": "0.0000000001::DECIMAL(20,10)",
        },
        "0.0000000001",
    ),
    "float-nan": Case({"postgres": "'NaN'::float8", "duckdb": "'NaN'::DOUBLE"}, "NaN"),
    "float-infinity": Case(
        {"postgres": "'Infinity'::float8", "duckdb": "'Infinity'::DOUBLE", "sqlite": "9e999"},
        "Infinity",
    ),
    "date-infinity": Case(
        {"postgres": "'infinity'::date", "duckdb": "'infinity'::DATE"}, "infinity"
    ),
    "timestamptz-minus-infinity": Case(
        {"postgres": "'-infinity'::timestamptz", "duckdb": "'-infinity'::TIMESTAMPTZ"},
        "-infinity",
    ),
    "timestamp-infinity": Case(
        {"postgres": "'infinity'::timestamp", "duckdb": "'infinity'::TIMESTAMP"}, "infinity"
    ),
    "json": Case(
        {
            "postgres": """'{"a": [1, 2.5, "x", null]}'::jsonb""",
            "duckdb": """'{"a": [1, 2.5, "x", null]}'::JSON""",
        },
        {"a": [1, 2.5, "x", None]},
    ),
    "list-bigint": Case(
        {"postgres": f"ARRAY[{BIG}, 1]::bigint[]", "duckdb": f"[{BIG}, 1]::BIGINT[]"},
        [str(BIG), 1],
    ),
    "list-float-special": Case(
        {
            "postgres": "ARRAY['NaN', '-Infinity', 1.5]::float8[]",
            "duckdb": "['NaN'::DOUBLE, '-Infinity'::DOUBLE, 1.5]",
        },
        ["NaN", "-Infinity", 1.5],
    ),
    "list-decimal": Case(
        {
            "postgres": "ARRAY[0.0000000001, 2]::numeric(20,10)[]",
            "duckdb": "[0.0000000001, 2]::DECIMAL(20,10)[]",
        },
        ["0.0000000001", "2.0000000000"],
    ),
    "list-timestamp-infinity": Case(
        {
            "postgres": "ARRAY['infinity', '2024-01-01']::timestamp[]",
            "duckdb": "['infinity'::TIMESTAMP, TIMESTAMP '2024-01-01']",
        },
        ["infinity", "2024-01-01T00:00:00.000000"],
    ),
    "list-text": Case({"postgres": "ARRAY['a', NULL]", "duckdb": "['a', NULL]"}, ["a", None]),
    "struct": Case(
        {"duckdb": f"{{'n': {BIG}::BIGINT, 'f': 'NaN'::DOUBLE, 'd': 0.5::DECIMAL(3,2)}}"},
        {"n": str(BIG), "f": "NaN", "d": "0.50"},
    ),
    "map": Case({"duckdb": "MAP {'k': 1}"}, [{"key": "k", "value": 1}]),
    "interval": Case(
        {
            "postgres": "interval '1 mon -2 days 03:04:05.5'",
            "duckdb": "INTERVAL '1 month -2 days 03:04:05.5'",
        },
        "P1M-2DT3H4M5.5S",
    ),
    "duration-negative": Case(
        {
            "postgres": "interval '-838:59:59'",
            "mysql": "CAST('-838:59:59' AS TIME)",
            "duckdb": "INTERVAL '-838:59:59'",
        },
        "PT-838H-59M-59S",
    ),
    "duration-past-a-day": Case(
        {"postgres": "interval '25:00:00'", "mysql": "CAST('25:00:00' AS TIME)"}, "PT25H"
    ),
    "uuid": Case(
        {
            "postgres": "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid",
            "duckdb": "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID",
        },
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    ),
    "bigint-unsigned": Case(
        {
            "mysql": "CAST(18446744073709551615 AS UNSIGNED)",
            "duckdb": "18446744073709551615::UBIGINT",
        },
        "18446744073709551615",
    ),
    "binary": Case(
        {
            "postgres": "'\\x00ff'::bytea",
            "mysql": "X'00FF'",
            "duckdb": "'\\x00\\xFF'::BLOB",
            "sqlite": "X'00FF'",
        },
        "AP8=",
    ),
}
# Refused by name: a 422 naming the column, never a 500 or a 502 blaming the source. Each is a
# whole query: a SQLite column mixes types only over two rows.
REFUSED = {
    "inet": {"postgres": "SELECT 1 AS id, '10.0.0.1/8'::inet AS v"},
    "inet-array": {"postgres": "SELECT 1 AS id, ARRAY['10.0.0.1'::inet] AS v"},
    "money": {"postgres": "SELECT 1 AS id, 12.50::money AS v"},
    "record": {"postgres": "SELECT 1 AS id, ROW(1, 'a') AS v"},
    "numeric-nan": {"postgres": "SELECT 1 AS id, 'NaN'::numeric(10,2) AS v"},
    "zero-date": {"mysql": "SELECT 1 AS id, DATE '0000-00-00' AS v"},
    "bit": {"duckdb": "SELECT 1 AS id, '101'::BIT AS v"},
    "time-with-zone": {"duckdb": "SELECT 1 AS id, '01:00:00+02'::TIMETZ AS v"},
    "bignum": {"duckdb": "SELECT 1 AS id, '12'::BIGNUM AS v"},
    "union": {"duckdb": "SELECT 1 AS id, 'a'::UNION(s VARCHAR, i INT) AS v"},
    "mixed": {"sqlite": "SELECT 1 AS id, 1 AS v UNION ALL SELECT 2, 'a'"},
}

# Intervals of months, days and nanoseconds have no Parquet type: refused by name there.
NO_PARQUET = {
    (kind, name)
    for name in ("interval", "duration-negative", "duration-past-a-day")
    for kind in ("postgres", "duckdb")
}

PARAMS = [
    pytest.param(kind, name, id=f"{kind}-{name}")
    for name, case in CASES.items()
    for kind in case.sql
]


@pytest.fixture(scope="module")
def servers(serve: Callable[..., str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two servers on one catalog of every case: one caching, one not."""
    folder: Path = tmp_path_factory.mktemp("types")
    sqlite3.connect(folder / "empty.sqlite").close()
    for sample in _samples(folder).values():
        if sample.service is not None:
            require_service(sample.service, lambda sample=sample: _ping(sample))
    sources = {
        "postgres": f'kind = "postgres"\ndatabase = "{TEST_DATABASE}"',
        "mysql": f'kind = "mysql"\ndatabase = "{TEST_DATABASE}"',
        "duckdb": 'kind = "duckdb"',
        "sqlite": 'kind = "sqlite"\npath = "empty.sqlite"',
    }
    urls = {}
    for mode, ttl in (("uncached", 0), ("cached", 600)):
        toml = "".join(
            f"[sources.{kind}]\n{config}\nttl = {ttl}\n" for kind, config in sources.items()
        )
        for name, sql in _queries():
            toml += (
                f"[queries.{name}]\nsource = {sql[0]!r}\nsql = {orjson.dumps(sql[1]).decode()}\n"
            )
        path = folder / f"{mode}.toml"
        path.write_text(toml)
        urls[mode] = serve(load_catalog(path))
    return urls


def _queries() -> list[tuple[str, tuple[str, str]]]:
    cases = [
        (_query(kind, name), (kind, f"SELECT 1 AS id, {expr} AS v"))
        for name, case in CASES.items()
        for kind, expr in case.sql.items()
    ]
    refused = [
        (_query(kind, name), (kind, text))
        for name, by_kind in REFUSED.items()
        for kind, text in by_kind.items()
    ]
    return cases + refused


def _query(kind: str, name: str) -> str:
    return f"{kind}_{name.replace('-', '_')}"


def _ask(url: str, query: str, fmt: str) -> httpx.Response:
    return httpx.post(f"{url}/query", json={"query": query, "format": fmt}, timeout=30)


def _value(fmt: str, content: bytes) -> Any:
    """The value ``v`` of the one row, as the format's reader gives it, in JSON terms."""
    if fmt == "json":
        return orjson.loads(content)["rows"][0][1]
    if fmt == "ndjson":
        (line,) = content.splitlines()
        return orjson.loads(line)["v"]
    if fmt == "csv":
        table = pacsv.read_csv(
            io.BytesIO(content),
            convert_options=pacsv.ConvertOptions(column_types={"v": pa.string()}),
        )
        return table.column("v")[0].as_py()
    table = (
        pa.ipc.open_stream(content).read_all()
        if fmt == "arrow"
        else pq.read_table(io.BytesIO(content))
    )
    return orjson.loads(orjson.dumps(json_values(table.column("v").combine_chunks())[0]))


@pytest.mark.parametrize("mode", ["uncached", "cached"])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("kind", "name"), PARAMS)
def test_every_type_in_every_format(
    servers: dict[str, str], kind: str, name: str, fmt: str, mode: str
) -> None:
    case = CASES[name]
    for attempt in ("miss", "hit") if mode == "cached" else ("only",):
        response = _ask(servers[mode], _query(kind, name), fmt)
        if fmt == "parquet" and (kind, name) in NO_PARQUET:
            assert response.status_code == 422, response.text
            assert response.json()["error"]["details"] == {"column": "v", "type": "interval"}
            continue
        assert response.status_code == 200, (attempt, response.text)
        value = _value(fmt, response.content)
        if fmt == "csv" and not isinstance(case.json, str):
            value = orjson.loads(value)
        assert value == case.json, attempt


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("kind", "name"),
    [pytest.param(k, n, id=f"{k}-{n}") for n, by_kind in REFUSED.items() for k in by_kind],
)
def test_a_type_without_encoding_is_refused_by_name(
    servers: dict[str, str], kind: str, name: str, fmt: str
) -> None:
    response = _ask(servers["uncached"], _query(kind, name), fmt)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "unsupported_type"
    assert error["details"]["column"] == "v"
    assert "'v'" in error["message"]
    assert "in the catalog's SQL" in error["message"]  # the fix, named
