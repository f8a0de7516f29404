"""Request bounds, result bytes, the bounded source queue and the /query method table."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest

from livedata.catalog import Catalog
from livedata.web.responses import STREAM_ABOVE_BYTES
from tests.samples import PG_DSN, Sample

_DSN = PG_DSN
GATE = 5_550_001  # advisory lock the slow statement waits on while the test holds it
BOUND_WAIT = 60.0  # seconds, a bound on waiting for PostgreSQL to report state, not a pace


@pytest.fixture(scope="module")
def url(serve: Callable[..., str]) -> str:
    return serve(max_request_depth=4, max_request_items=10)


def test_a_long_in_list_is_refused_naming_the_limit(url: str) -> None:
    names = [f"C{i}" for i in range(11)]
    body = {
        "table": "world_country_list",
        "filters": [{"column": "name", "op": "in", "value": names}],
    }
    response = httpx.post(f"{url}/query", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "limit_exceeded"
    assert error["details"] == {"limit": "max_request_items", "max": 10, "at": "filters[0].value"}
    assert "LIVEDATA_MAX_REQUEST_ITEMS" in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"table": "world_country_list", "columns": ["name"] * 11}, id="columns"),
        pytest.param(
            {"query": "countries_by_region", "params": {"region": ["x"] * 11}}, id="list-param"
        ),
        pytest.param(
            {"table": "world_country_list", "order_by": [{"column": "name"}] * 11}, id="order_by"
        ),
    ],
)
def test_every_array_is_bounded(url: str, body: dict[str, Any]) -> None:
    response = httpx.post(f"{url}/query", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["details"]["limit"] == "max_request_items"


def test_deep_nesting_is_refused(url: str) -> None:
    body = {
        "table": "world_country_list",
        "filters": [{"column": "name", "op": "in", "value": [["x"]]}],
    }
    response = httpx.post(f"{url}/query", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["details"]["limit"] == "max_request_depth"


def test_query_answers_only_get_and_post(url: str) -> None:
    for method in ("PUT", "DELETE", "PATCH"):
        response = httpx.request(method, f"{url}/query")
        assert response.status_code == 405, method
        assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}
        assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("kind", "table", "max_bytes", "all_rows"),
    [
        pytest.param("duckdb", "world_country_list", 8_000, 249, id="within-a-batch"),
        # PostgreSQL sends these rows in two batches; the cut falls in the second.
        pytest.param("postgres", "tpch_lineitem", 20_000_000, 120_515, id="second-batch"),
    ],
)
def test_bytes_per_result_cut_the_same_on_hits(
    serve: Callable[..., str],
    sample_of: Callable[[str], Sample],
    kind: str,
    table: str,
    max_bytes: int,
    all_rows: int,
) -> None:
    source = sample_of(kind).config.model_copy(update={"max_bytes": max_bytes})
    catalog = Catalog.model_validate(
        {"sources": {"s": source}, "tables": {"t": {"source": "s", "table": table}}}
    )
    url = serve(catalog)
    bodies = []
    for _ in range(3):  # a miss, a hit, a hit from memory
        response = httpx.post(f"{url}/query", json={"table": "t", "format": "arrow"}, timeout=60)
        # A big miss is sent as it is stored, before its counts are known (issue 10).
        if "x-truncated" in response.headers or len(response.content) <= STREAM_ABOVE_BYTES:
            assert response.headers["x-truncated"] == "true"
        bodies.append(response.content)
    assert bodies[0] == bodies[1] == bodies[2]
    meta = httpx.post(f"{url}/query", json={"table": "t"}, timeout=60).json()["meta"]
    assert meta["truncated"] is True
    assert 0 < meta["rows"] < all_rows


def test_a_full_queue_answers_at_once(
    serve: Callable[..., str], sample_of: Callable[[str], Sample]
) -> None:
    """One slot, no queue: while a statement holds the slot (it waits at an advisory lock the
    test holds), the next request is refused with 503 and Retry-After; it returns while the
    first is still held, so the refusal cannot have waited for the slot."""
    source = sample_of("postgres").config.model_copy(
        update={"max_concurrent_queries": 1, "max_queued_queries": 0}
    )
    gate_sql = (
        f"SELECT pg_advisory_xact_lock_shared({GATE}) IS NULL AS held, 'queue-gate' AS marker"
    )
    catalog = Catalog.model_validate(
        {
            "sources": {"pg": source},
            "queries": {
                "held": {"source": "pg", "sql": gate_sql, "ttl": 0},
                "other": {"source": "pg", "sql": "SELECT 1 AS one"},  # cached
            },
        }
    )
    url = serve(catalog)
    with psycopg.connect(_DSN, autocommit=True) as db:
        db.execute("SELECT pg_advisory_lock(%s)", (GATE,))
        first: list[httpx.Response] = []
        thread = threading.Thread(
            target=lambda: first.append(
                httpx.post(f"{url}/query", json={"query": "held"}, timeout=60)
            )
        )
        thread.start()
        try:
            _wait_until_waiting(db, "queue-gate")
            refused = httpx.post(f"{url}/query", json={"query": "other"}, timeout=60)
            assert not first, "the first request should still hold the slot"
        finally:
            db.execute("SELECT pg_advisory_unlock_all()")
            thread.join()
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "source_busy"
    assert refused.headers["retry-after"] == "1"
    assert first[0].status_code == 200
    # Overload is not remembered as the query's failure: the same request now succeeds.
    assert httpx.post(f"{url}/query", json={"query": "other"}).status_code == 200


def _wait_until_waiting(db: psycopg.Connection[Any], marker: str) -> None:
    deadline = time.monotonic() + BOUND_WAIT
    while time.monotonic() < deadline:
        row = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'"
            " AND query LIKE '%%' || %s || '%%' AND pid <> pg_backend_pid()",
            (marker,),
        ).fetchone()
        if row is not None and row[0] > 0:
            return
    pytest.fail("the held statement never reached the gate")
