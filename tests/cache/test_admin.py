"""The cache admin endpoints, against a real server: list, stats, invalidate, purge."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.cache.traffic import Clock

REVENUE = {"query": "revenue_by_shipmode"}  # reads tpch_lineitem
REGION = {"query": "countries_by_region", "params": {"region": "Europe"}}
LINEITEM = {"table": "tpch_lineitem", "limit": 5}
COUNTRIES = {"table": "world_country_list", "limit": 5}
EVERY_TARGET = {
    "query:revenue_by_shipmode",
    "query:countries_by_region",
    "table:tpch_lineitem",
    "table:world_country_list",
}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def url(serve: Callable[..., str], clock: Clock) -> str:
    # No background round during a test: what is removed, the test removes.
    return serve(None, clock, cache_maintenance_interval=3600)


def ask(url: str, body: dict[str, Any]) -> httpx.Response:
    response = httpx.post(f"{url}/query", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response


def invalidate(url: str, body: object) -> httpx.Response:
    return httpx.post(f"{url}/cache/invalidate", json=body)


def listing(url: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = httpx.get(f"{url}/cache").json()["entries"]
    return entries


def targets(url: str) -> set[str]:
    return {f"{e['kind']}:{e['name']}" for e in listing(url)}


def fill(url: str) -> None:
    for body in (REVENUE, REGION, LINEITEM, COUNTRIES):
        ask(url, body)
    assert targets(url) == EVERY_TARGET


def test_list_shows_what_each_entry_holds(url: str) -> None:
    first = ask(url, REGION)
    ask(url, REGION)
    [entry] = listing(url)
    assert entry["kind"] == "query"
    assert entry["name"] == "countries_by_region"
    assert entry["source"] == "sample"
    assert entry["params"] == {"region": "Europe", "min_population": 0}
    assert entry["rows"] == len(first.json()["rows"])
    assert entry["hits"] == 1
    assert entry["created"] == "2027-01-15T08:00:00Z"  # the server's clock
    assert entry["fresh_until"] == "2027-01-15T08:01:00Z"  # LIVEDATA_CACHE_TTL = 60
    assert entry["stale_until"] == "2027-01-15T09:01:00Z"  # + stale-if-error 3600
    assert entry["source_ms"] == first.json()["meta"]["timings_ms"]["source"]
    assert {"name": "population", "type": "int64"} in entry["columns"]
    assert entry["bytes"] > len(first.content)  # the data, and the JSON body encoded from it
    assert sorted(entry["tags"]) == [
        "query:countries_by_region",
        "reads:world_country_list",
        "source:sample",
    ]


def test_stats_count_entries_bytes_and_requests(url: str) -> None:
    ask(url, REGION)
    ask(url, REGION)
    ask(url, COUNTRIES)
    stats = httpx.get(f"{url}/cache/stats").json()
    assert stats["entries"] == 2
    assert stats["bytes"] == sum(e["bytes"] for e in listing(url))
    assert stats["max_bytes"] == 1 << 30
    counters = stats["counters"]
    assert counters["requests"] == {"miss": 2, "hit": 1}
    assert counters["source_queries"] == 2
    assert counters["source_seconds_saved"] == pytest.approx(listing(url)[1]["source_ms"] / 1000)
    assert counters["integrity_failures"] == counters["write_failures"] == 0


@pytest.mark.parametrize(
    ("body", "removed"),
    [
        pytest.param(
            {"table": "tpch_lineitem"},
            {"query:revenue_by_shipmode", "table:tpch_lineitem"},
            id="table-also-read-by-a-query",
        ),
        pytest.param(
            {"table": "world_country_list"},
            {"query:countries_by_region", "table:world_country_list"},
            id="table",
        ),
        pytest.param({"query": "revenue_by_shipmode"}, {"query:revenue_by_shipmode"}, id="query"),
        pytest.param({"source": "sample"}, EVERY_TARGET, id="source"),
        pytest.param({"all": True}, EVERY_TARGET, id="all"),
    ],
)
def test_invalidate(url: str, body: dict[str, Any], removed: set[str]) -> None:
    fill(url)
    response = invalidate(url, body)
    assert response.status_code == 200, response.text
    assert response.json() == {"removed": len(removed)}
    assert targets(url) == EVERY_TARGET - removed


def test_an_invalidated_result_is_fetched_again(url: str) -> None:
    ask(url, REVENUE)
    invalidate(url, {"table": "tpch_lineitem"})
    assert ask(url, REVENUE).headers["cache-status"] == "livedata; fwd=miss; stored"


def test_removing_an_entry_does_not_cut_a_response_being_sent(url: str) -> None:
    body = {"table": "tpch_lineitem", "limit": 20_000}
    whole = ask(url, body).content  # stored, with its JSON body
    assert len(whole) > 1 << 20
    with httpx.stream("POST", f"{url}/query", json=body, timeout=30) as response:
        assert response.headers["cache-status"] == "livedata; hit"
        chunks = response.iter_bytes()
        first = next(chunks)
        assert invalidate(url, {"all": True}).json() == {"removed": 1}
        rest = b"".join(chunks)
    assert first + rest == whole
    assert listing(url) == []


@pytest.mark.parametrize(
    ("body", "suggestion"),
    [
        pytest.param({"table": "tpch_lineitm"}, "tpch_lineitem", id="table"),
        pytest.param({"query": "revenue_by_shipmod"}, "revenue_by_shipmode", id="query"),
        pytest.param({"source": "sampel"}, "sample", id="source"),
    ],
)
def test_unknown_names_are_404_with_did_you_mean(
    url: str, body: dict[str, Any], suggestion: str
) -> None:
    response = invalidate(url, body)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert f"Did you mean {suggestion!r}?" in error["message"]
    assert error["details"]["did_you_mean"] == [suggestion]
    assert error["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({}, "Give exactly one of", id="nothing"),
        pytest.param({"table": "tpch_lineitem", "all": True}, "Give exactly one of", id="two"),
        pytest.param({"all": False}, "all: Input should be True", id="all-false"),
        pytest.param(
            {"tabel": "orders"}, "tabel: Extra inputs are not permitted", id="unknown-field"
        ),
        pytest.param({"query": 3}, "query: Input should be a valid string", id="not-a-name"),
        pytest.param(["all"], "valid dictionary", id="not-an-object"),
    ],
)
def test_bad_bodies_are_422(url: str, body: object, message: str) -> None:
    response = invalidate(url, body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert message in error["message"]
    assert set(error) == {"code", "message", "request_id", "details"}


def test_purge_removes_only_expired_entries(url: str, clock: Clock) -> None:
    ask(url, REGION)
    clock.now += 60 + 3600 + 1  # past its ttl and stale-if-error
    ask(url, COUNTRIES)
    response = httpx.post(f"{url}/cache/purge")
    assert response.json() == {"removed": 1}
    assert targets(url) == {"table:world_country_list"}


def test_openapi_documents_the_admin_endpoints(url: str) -> None:
    document = httpx.get(f"{url}/openapi.json").json()
    operation = document["paths"]["/cache/invalidate"]["post"]
    assert operation["summary"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/InvalidateBody"
    }
    error = {"$ref": "#/components/schemas/ErrorBody"}
    for status in ("404", "422"):
        assert operation["responses"][status]["content"]["application/json"]["schema"] == error
    listed = document["paths"]["/cache"]["get"]["responses"]["200"]["content"]
    assert listed["application/json"]["schema"] == {"$ref": "#/components/schemas/CacheListing"}
    schemas = document["components"]["schemas"]
    assert schemas["InvalidateBody"]["additionalProperties"] is False
    assert {"/cache/stats", "/cache/purge", "/metrics"} <= set(document["paths"])
