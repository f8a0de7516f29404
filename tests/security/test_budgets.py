"""Budgets and rate limits: 429 with Retry-After and a clear code, while cached hits flow.

Time is a settable clock handed to the server, so windows and buckets renew when the test
says so, never by waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from livedata.auth.caller import Caller
from livedata.catalog import Catalog
from livedata.connectors.config import Budget
from livedata.errors import BudgetExhausted
from livedata.plan import QueryRequest
from livedata.service import QueryService
from livedata.settings import Settings
from tests.conftest import answer, require_service
from tests.samples import Sample

START = 1_800_000_000.0  # a window boundary for 60-second windows


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def _catalog(sample: Sample, **source: Any) -> Catalog:
    config = sample.config.model_copy(update=source)
    return Catalog.model_validate(
        {
            "sources": {"s": config},
            "tables": {"countries": {"source": "s", "table": "world_country_list"}},
        }
    )


def _ask(url: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{url}/query", json={"table": "countries", **body}, timeout=60)


def _page(n: int) -> dict[str, Any]:
    """A distinct request (its own cache entry), so each one asks the source."""
    return {"limit": 1, "offset": n}


@pytest.mark.parametrize(
    ("budget", "scope"),
    [
        pytest.param({"window": 60, "queries": 2}, "global", id="global-queries"),
        pytest.param({"window": 60, "per_caller": {"queries": 2}}, "caller", id="caller-queries"),
    ],
)
def test_a_spent_query_budget_is_429_while_hits_flow(
    serve: Callable[..., str],
    sample_of: Callable[[str], Sample],
    budget: dict[str, Any],
    scope: str,
) -> None:
    clock = Clock()
    url = serve(_catalog(sample_of("duckdb"), budget=Budget.model_validate(budget)), clock=clock)
    assert _ask(url, **_page(0)).status_code == 200
    assert _ask(url, **_page(1)).status_code == 200
    clock.now += 15
    refused = _ask(url, **_page(2))
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "budget_exhausted"
    assert error["details"]["budget"] == "queries"
    assert (error["details"]["caller"] is None) == (scope == "global")
    assert refused.headers["retry-after"] == "45"  # the window ends 45 s from now
    for _ in range(3):  # cached results keep flowing, through both hit paths
        hit = _ask(url, **_page(0))
        assert hit.status_code == 200
        assert hit.headers["cache-status"] == "livedata; hit"
    clock.now += 45  # the next window
    assert _ask(url, **_page(2)).status_code == 200


def test_a_spent_seconds_budget_is_429(
    serve: Callable[..., str], sample_of: Callable[[str], Sample]
) -> None:
    budget = Budget(window=60, source_seconds=0.000001)
    url = serve(_catalog(sample_of("duckdb"), budget=budget), clock=Clock())
    assert _ask(url, **_page(0)).status_code == 200  # admitted with time left; it overruns
    refused = _ask(url, **_page(1))
    assert refused.status_code == 429
    assert refused.json()["error"]["details"]["budget"] == "source_seconds"


def test_the_estimate_refuses_an_expensive_query_before_it_runs(
    serve: Callable[..., str], sample_of: Callable[[str], Sample]
) -> None:
    for kind in ("postgres", "duckdb"):
        url = serve(_catalog(sample_of(kind), max_estimated_cost=0.5), cache_ttl=0)
        response = _ask(url)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "cost_too_high"
        assert error["details"]["estimate"] > 0.5
        cheap = serve(_catalog(sample_of(kind), max_estimated_cost=1e9), cache_ttl=0)
        assert _ask(cheap).status_code == 200


def test_the_rate_limit_is_429_with_retry_after(serve: Callable[..., str]) -> None:
    """Every request of a caller counts, hits included: the rate protects the service itself.
    The third identical request would be answered by the hot path; the limit holds there."""
    clock = Clock()
    url = serve(rate_limit=1, rate_limit_burst=2, clock=clock)
    body = {"table": "world_country_list", "limit": 3}
    assert httpx.post(f"{url}/query", json=body).status_code == 200
    assert httpx.post(f"{url}/query", json=body).status_code == 200
    refused = httpx.post(f"{url}/query", json=body)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["retry-after"] == "1"
    clock.now += 1
    assert httpx.post(f"{url}/query", json=body).status_code == 200


def test_redis_shares_the_rate_limit_between_servers(serve: Callable[..., str]) -> None:
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    require_service("Redis on 127.0.0.1:6379", client.ping)
    for key in client.scan_iter("livedata:quota:*"):
        client.delete(key)
    clock = Clock()
    settings = {"rate_limit": 1, "rate_limit_burst": 2, "redis_url": "redis://127.0.0.1:6379/0"}
    first, second = serve(clock=clock, **settings), serve(clock=clock, **settings)
    body = {"table": "world_country_list", "limit": 2}
    assert httpx.post(f"{first}/query", json=body).status_code == 200
    assert httpx.post(f"{second}/query", json=body).status_code == 200
    # Each process alone would allow two; together they have spent the burst.
    assert httpx.post(f"{first}/query", json=body).status_code == 429
    assert httpx.post(f"{second}/query", json=body).status_code == 429
    client.close()


def test_a_stale_entry_answers_when_the_budget_is_spent(
    serve: Callable[..., str], sample_of: Callable[[str], Sample]
) -> None:
    clock = Clock()
    budget = Budget(window=3600, queries=1)
    url = serve(_catalog(sample_of("duckdb"), budget=budget, ttl=10), clock=clock)
    assert _ask(url).status_code == 200
    clock.now += 20  # expired, within stale_if_error; the next query is over budget
    stale = _ask(url)
    assert stale.status_code == 200
    assert stale.headers["cache-status"] == "livedata; hit; detail=stale-if-error"


def test_a_coalesced_caller_is_not_refused_for_the_leaders_budget(
    sample_of: Callable[[str], Sample], tmp_path: Path
) -> None:
    """Two callers ask for the same result at once; the first, whose flight the second
    joins, is over its own budget. The second gets the rows, asked under its budget.
    Driven through the service (the web layer has one anonymous caller until
    authentication lands)."""
    budget = Budget(window=3600, per_caller={"queries": 1})
    catalog = _catalog(sample_of("duckdb"), budget=budget)
    service = QueryService.create(catalog, Settings(cache_dir=tmp_path), clock=Clock())
    spent, fresh = Caller("spent"), Caller("fresh")

    async def race() -> list[Any]:
        await answer(service, QueryRequest(table="countries", limit=1), spent)
        wanted = QueryRequest(table="countries", limit=2)
        return await asyncio.gather(
            answer(service, wanted, spent),
            answer(service, wanted, fresh),
            return_exceptions=True,
        )

    try:
        leader, joiner = asyncio.run(race())
    finally:
        service.close()
    assert isinstance(leader, BudgetExhausted)
    assert leader.details["caller"] == "spent"
    assert not isinstance(joiner, BaseException)
    assert joiner.rows == 2


@pytest.mark.parametrize("kind", ["duckdb", "mysql"])
def test_a_statement_that_times_out_still_spends_source_seconds(
    serve: Callable[..., str], sample_of: Callable[[str], Sample], kind: str
) -> None:
    """MariaDB fails in the driver's execute, DuckDB may fail before the first batch: both
    before any row is read, where no charge used to be made."""
    sample = sample_of(kind)
    config = sample.config.model_copy(
        update={"statement_timeout": 0.2, "budget": Budget(window=60, source_seconds=0.1)}
    )
    slow = {"source": "s", "sql": sample.slow_sql}
    catalog = Catalog.model_validate(  # two names: a failure is remembered per request
        {"sources": {"s": config}, "queries": {"slow": slow, "slow_too": slow}}
    )
    url = serve(catalog, clock=Clock())
    first = httpx.post(f"{url}/query", json={"query": "slow"}, timeout=60)
    assert first.status_code == 504
    second = httpx.post(f"{url}/query", json={"query": "slow_too"}, timeout=60)
    assert second.status_code == 429
    assert second.json()["error"]["details"]["budget"] == "source_seconds"
