"""The JSON encodings documented in livedata.encoders.json, checked value by value."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pytest

from livedata.catalog import load_catalog

TRICKY_SQL = """
CREATE TABLE tricky AS SELECT * FROM (VALUES
  (1, 9007199254740991::BIGINT, 9223372036854775807::BIGINT,
   12345678901234567890.1234567891::DECIMAL(38,10),
   'NaN'::DOUBLE, TIMESTAMPTZ '2024-01-31 12:30:00.123456+02', TIMESTAMP '2024-01-31 12:30:00',
   DATE '2024-02-29', TIME '23:59:59.5', 'héllo "wörld" \\ 😀', '\\x00\\xFF'::BLOB, [1, 2, NULL],
   {'a': 1, 'b': 'x'}, true),
  (2, -9007199254740992::BIGINT, (-9223372036854775807::BIGINT - 1), -0.0000000001::DECIMAL(38,10),
   'Infinity'::DOUBLE, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (3, NULL, NULL, NULL, '-Infinity'::DOUBLE, NULL, NULL, NULL, NULL, '', NULL, [], NULL, false),
  (4, 0, 0, 0, 0.1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
) t(id, safe, big, dec, f, tstz, ts, d, tm, s, bin, lst, st, b)
"""

EXPECTED = [
    [
        1,
        9007199254740991,
        "9223372036854775807",
        "12345678901234567890.1234567891",
        "NaN",
        "2024-01-31T10:30:00.123456+00:00",
        "2024-01-31T12:30:00.000000",
        "2024-02-29",
        "23:59:59.500000",
        'héllo "wörld" \\ 😀',
        base64.b64encode(b"\x00\xff").decode(),
        [1, 2, None],
        {"a": 1, "b": "x"},
        True,
    ],
    [
        2,
        "-9007199254740992",
        "-9223372036854775808",
        "-0.0000000001",
        "Infinity",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    ],
    [3, None, None, None, "-Infinity", None, None, None, None, "", None, [], None, False],
    [4, 0, 0, "0.0000000000", 0.1, None, None, None, None, None, None, None, None, None],
]


@pytest.fixture(scope="module")
def tricky_url(serve: Callable[..., str], tmp_path_factory: pytest.TempPathFactory) -> str:
    folder: Path = tmp_path_factory.mktemp("tricky")
    with duckdb.connect(str(folder / "tricky.duckdb")) as db:
        db.execute("SET TimeZone = 'UTC'")
        db.execute(TRICKY_SQL)
    (folder / "catalog.toml").write_text(
        '[sources.db]\nkind = "duckdb"\npath = "tricky.duckdb"\n[tables.tricky]\nsource = "db"\n'
    )
    return serve(load_catalog(folder / "catalog.toml"))


def _rows(url: str, **extra: Any) -> httpx.Response:
    body = {"table": "tricky", "order_by": [{"column": "id"}], **extra}
    return httpx.post(f"{url}/query", json=body, timeout=30)


def test_json_is_strict_and_lossless(tricky_url: str) -> None:
    response = _rows(tricky_url)
    assert response.status_code == 200
    assert b"NaN," not in response.content  # no bare NaN/Infinity tokens anywhere
    body = response.json()
    assert body["rows"] == EXPECTED
    types = {c["name"]: c["type"] for c in body["columns"]}
    assert types["dec"] == "decimal(38,10)"
    assert types["tstz"] == "timestamptz"
    assert types["lst"] == "list<int32>"


def test_ndjson_uses_the_same_encodings(tricky_url: str) -> None:
    response = _rows(tricky_url, format="ndjson")
    names = [c["name"] for c in _rows(tricky_url).json()["columns"]]
    objects = [httpx.Response(200, content=line).json() for line in response.content.splitlines()]
    assert objects == [dict(zip(names, row, strict=True)) for row in EXPECTED]


def test_arrow_keeps_every_type(tricky_url: str) -> None:
    table = pa.ipc.open_stream(io.BytesIO(_rows(tricky_url, format="arrow").content)).read_all()
    assert table.schema.field("dec").type == pa.decimal128(38, 10)
    assert table.column("big").to_pylist()[:2] == [2**63 - 1, -(2**63)]
