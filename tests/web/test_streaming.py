"""Results read from the source as they are sent: nothing is held whole in memory.

An uncached result bigger than the send threshold goes out while its rows still arrive, so
its counts are only in the body's ``meta``; a smaller one is sent whole, counts in the
headers. Either way the rows are those of the cached path, and a client that leaves
half-way frees the source for the next request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from livedata.catalog import Catalog
from livedata.web.responses import SEND_WHOLE_BELOW_BYTES, STREAM_ABOVE_BYTES
from tests.samples import Sample

LINEITEM_ROWS = 120_515
STREAMING_KINDS = ("duckdb", "postgres")  # drivers that deliver batches as they come


@pytest.fixture(scope="module")
def catalog(sample_of: Callable[[str], Sample]) -> Catalog:
    sources: dict[str, Any] = {}
    tables: dict[str, Any] = {}
    for kind in STREAMING_KINDS:
        config = sample_of(kind).config
        sources[kind] = config.model_copy(update={"max_concurrent_queries": 1})
        sources[f"{kind}_capped"] = config.model_copy(update={"max_rows": 100_000})
        tables[f"lineitem_{kind}"] = {"source": kind, "table": "tpch_lineitem"}
        tables[f"capped_{kind}"] = {"source": f"{kind}_capped", "table": "tpch_lineitem"}
    return Catalog.model_validate({"sources": sources, "tables": tables})


@pytest.fixture(scope="module")
def uncached(serve: Callable[..., str], catalog: Catalog) -> str:
    return serve(catalog, cache_ttl=0)


@pytest.fixture(scope="module")
def cached(serve: Callable[..., str], catalog: Catalog) -> str:
    return serve(catalog)


def ask(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{url}/query", json=body, headers={"Accept-Encoding": "identity"}, timeout=60
    )


@pytest.mark.parametrize("kind", STREAMING_KINDS)
def test_a_big_result_is_streamed_with_counts_in_meta_whether_stored_or_not(
    uncached: str, cached: str, kind: str
) -> None:
    body = {"table": f"lineitem_{kind}", "order_by": [{"column": "l_orderkey"}]}
    streamed = ask(uncached, {**body})
    assert streamed.status_code == 200
    assert len(streamed.content) > STREAM_ABOVE_BYTES
    assert "content-length" not in streamed.headers
    assert "x-row-count" not in streamed.headers
    assert streamed.headers["cache-status"] == "livedata; fwd=bypass"
    got = orjson.loads(streamed.content)
    assert got["meta"]["rows"] == LINEITEM_ROWS
    assert got["meta"]["truncated"] is False
    assert got["meta"]["timings_ms"]["source"] > 0
    miss = ask(cached, body)  # sent as it is stored, before the entry is committed
    assert miss.headers["cache-status"] == "livedata; fwd=miss"
    assert "content-length" not in miss.headers
    assert got["columns"] == miss.json()["columns"]
    assert got["rows"] == miss.json()["rows"]
    stored = ask(cached, body)
    # The miss's last byte can reach us before its entry is committed (a loaded machine):
    # a request then waits for that commit and says so; the one after it is a hit.
    if stored.headers["cache-status"] == "livedata; fwd=miss; collapsed":
        assert stored.content == miss.content
        stored = ask(cached, body)
    assert stored.headers["cache-status"] == "livedata; hit"
    assert int(stored.headers["content-length"]) > SEND_WHOLE_BELOW_BYTES  # sent in slices
    assert stored.content == miss.content  # the body the miss sent is the one stored
    again = ask(cached, body)  # its pages were dropped after sending: read back from the file
    assert again.content == stored.content


@pytest.mark.parametrize("kind", STREAMING_KINDS)
def test_a_small_uncached_result_is_sent_whole_with_counts_in_headers(
    uncached: str, kind: str
) -> None:
    response = ask(uncached, {"table": f"lineitem_{kind}", "limit": 10})
    assert response.headers["x-row-count"] == "10"
    assert response.headers["x-truncated"] == "false"
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.json()["meta"]["rows"] == 10


@pytest.mark.parametrize("kind", STREAMING_KINDS)
@pytest.mark.parametrize("server", ["uncached", "cached"])
def test_a_result_over_max_rows_is_cut_and_flagged_while_streaming(
    request: pytest.FixtureRequest, server: str, kind: str
) -> None:
    url = request.getfixturevalue(server)
    got = ask(url, {"table": f"capped_{kind}", "format": "ndjson"})
    assert got.status_code == 200
    *rows, last = got.content.splitlines()
    assert len(rows) == 100_000
    assert orjson.loads(last) == {"$meta": {"rows": 100_000, "truncated": True}}
    meta = ask(url, {"table": f"capped_{kind}"}).json()["meta"]
    assert (meta["rows"], meta["truncated"]) == (100_000, True)


@pytest.mark.parametrize("kind", STREAMING_KINDS)
def test_a_client_leaving_half_way_frees_the_source(uncached: str, kind: str) -> None:
    """The source allows one query at a time: if the abandoned one kept its slot, the next
    request would wait forever (the client's timeout turns that into a failure)."""
    for _ in range(3):
        with (
            httpx.Client(timeout=60) as client,
            client.stream("POST", f"{uncached}/query", json={"table": f"lineitem_{kind}"}) as r,
        ):
            assert r.status_code == 200
            first = next(r.iter_bytes())
            assert first.startswith(b'{"columns":')
    assert ask(uncached, {"table": f"lineitem_{kind}", "limit": 1}).status_code == 200
