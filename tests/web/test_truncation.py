"""A cut result says so in every format, cached or not, streamed or sent whole: JSON in
``meta``, NDJSON in a last ``$meta`` line, Arrow in its last batch's custom metadata,
Parquet in its footer, CSV in ``X-Truncated`` (a big CSV is spooled until its end is known)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from livedata.catalog import load_catalog
from livedata.web.responses import STREAM_ABOVE_BYTES

MAX_ROWS = 40_000
CATALOG = f"""
[sources.db]
kind = "duckdb"
max_rows = {MAX_ROWS}
[queries.big]
source = "db"
sql = "SELECT range AS i, repeat('x', 60) AS s FROM range(100000)"
[queries.small_cut]
source = "db"
sql = "SELECT range AS i FROM range({MAX_ROWS + 5})"
[queries.complete]
source = "db"
sql = "SELECT range AS i FROM range(10)"
"""
# query -> (rows in the answer, cut?)
EXPECTED = {"big": (MAX_ROWS, True), "small_cut": (MAX_ROWS, True), "complete": (10, False)}


@pytest.fixture(scope="module")
def urls(serve: Callable[..., str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder: Path = tmp_path_factory.mktemp("truncation")
    (folder / "catalog.toml").write_text(CATALOG)
    catalog = load_catalog(folder / "catalog.toml")
    return {"uncached": serve(catalog, cache_ttl=0), "cached": serve(catalog)}


def _counts(fmt: str, response: httpx.Response) -> tuple[int, bool]:
    """(rows, cut) as a client of ``fmt`` learns them from the body alone (CSV: headers)."""
    content = response.content
    if fmt == "json":
        meta = orjson.loads(content)["meta"]
        return meta["rows"], meta["truncated"]
    if fmt == "ndjson":
        lines = [orjson.loads(line) for line in content.splitlines()]
        if "$meta" in lines[-1]:
            assert lines[-1]["$meta"]["rows"] == len(lines) - 1
            return lines[-1]["$meta"]["rows"], lines[-1]["$meta"]["truncated"]
        return len(lines), False
    if fmt == "arrow":
        reader = pa.ipc.open_stream(content)
        rows, metadata = 0, None
        while True:
            try:
                batch, metadata = reader.read_next_batch_with_custom_metadata()
            except StopIteration:
                break
            rows += batch.num_rows
        assert metadata is not None
        assert int(metadata[b"livedata:rows"]) == rows
        return rows, metadata[b"livedata:truncated"] == b"true"
    if fmt == "parquet":
        parquet = pq.ParquetFile(io.BytesIO(content))
        metadata = parquet.metadata.metadata
        assert int(metadata[b"livedata:rows"]) == parquet.metadata.num_rows
        return parquet.metadata.num_rows, metadata[b"livedata:truncated"] == b"true"
    assert fmt == "csv"
    rows = content.count(b"\n") - 1
    assert int(response.headers["x-row-count"]) == rows
    return rows, response.headers["x-truncated"] == "true"


@pytest.mark.parametrize("mode", ["uncached", "cached"])
@pytest.mark.parametrize("query", list(EXPECTED))
@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv", "arrow", "parquet"])
def test_a_cut_result_says_so_in_every_format(
    urls: dict[str, str], fmt: str, query: str, mode: str
) -> None:
    for attempt in ("miss", "hit") if mode == "cached" else ("only",):
        response = httpx.post(
            f"{urls[mode]}/query",
            json={"query": query, "format": fmt},
            headers={"Accept-Encoding": "identity"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        assert _counts(fmt, response) == EXPECTED[query], attempt


def test_the_big_query_is_streamed(urls: dict[str, str]) -> None:
    """The case the test is about: past the threshold, no counts in the headers."""
    body: dict[str, Any] = {"query": "big", "format": "ndjson"}
    response = httpx.post(f"{urls['uncached']}/query", json=body, timeout=60)
    assert len(response.content) > STREAM_ABOVE_BYTES
    assert "x-truncated" not in response.headers
