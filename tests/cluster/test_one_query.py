"""One source query per key across the cluster: many nodes, many requests, one execution;
a node killed mid-fetch is taken over by another."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.cache.conftest import GATED, GATED_SQL, SLOW_SQL, Postgres
from tests.cache.traffic import BOUND
from tests.cluster.conftest import Cluster

REQUESTS = 200


def catalog_file(postgres: Postgres, tmp_path: Path, marker: str, **query: object) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(
        postgres.catalog_toml(
            slow={
                "sql": SLOW_SQL.format(marker=marker),
                "ttl": 600,
                "params": {"region": {"type": "str"}},
                **query,
            }
        )
    )
    return path


def spread(urls: list[str], body: dict[str, object], count: int) -> list[httpx.Response]:
    """``count`` identical requests at once, dealt round-robin over ``urls``."""

    async def send_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=count)
        async with httpx.AsyncClient(limits=limits, timeout=BOUND) as client:
            targets = itertools.islice(itertools.cycle(urls), count)
            return list(
                await asyncio.gather(*(client.post(f"{u}/query", json=body) for u in targets))
            )

    return asyncio.run(send_all())


@pytest.mark.parametrize(
    ("workers", "behind"),
    [
        pytest.param(1, "direct", id="1-worker"),
        pytest.param(2, "direct", id="2-workers"),
        pytest.param(1, "nginx", id="behind-nginx"),
    ],
)
def test_cold_requests_over_three_nodes_cost_one_execution(
    cluster: Callable[..., Cluster],
    balancer: Callable[[list[str]], str],
    postgres: Postgres,
    tmp_path: Path,
    workers: int,
    behind: str,
) -> None:
    marker = f"cluster_cold_{workers}_{behind}"
    catalog = catalog_file(postgres, tmp_path, marker)
    nodes = [n.url for n in cluster(catalog, workers=workers).nodes]
    urls = [balancer(nodes)] if behind == "nginx" else nodes
    before = postgres.executions(marker)

    responses = spread(urls, {"query": "slow", "params": {"region": "Asia"}}, REQUESTS)

    assert [r.status_code for r in responses] == [200] * REQUESTS
    assert len({r.json()["rows"].__repr__() for r in responses}) == 1
    assert postgres.executions_since(marker, before) == 1
    statuses = {r.headers["cache-status"] for r in responses}
    assert statuses <= {
        "livedata; fwd=miss; stored",
        "livedata; fwd=miss; collapsed",
        "livedata; hit",
        "livedata; hit; detail=shared",
    }


def test_a_node_killed_mid_fetch_is_taken_over_after_its_lease(
    cluster: Callable[..., Cluster], postgres: Postgres, tmp_path: Path
) -> None:
    """The node fetching a key dies (kill -9): the others, waiting for it, answer once its
    lease lapses; the source runs the statement at most once more."""
    gate, marker = 4_203_101, "cluster_takeover"
    catalog = tmp_path / "catalog.toml"
    sql = GATED_SQL.format(marker=marker, gate=gate)
    catalog.write_text(postgres.catalog_toml(gated={"sql": sql, "ttl": 600, "params": GATED}))
    first, *others = cluster(catalog, LIVEDATA_CLUSTER_LEASE_SECONDS="2").nodes
    body = {"query": "gated", "params": {"region": "Europe"}}
    before = postgres.executions(marker)

    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=BOUND) as client:
            with postgres.gate(gate):
                doomed = asyncio.ensure_future(client.post(f"{first.url}/query", json=body))
                await asyncio.to_thread(until, lambda: postgres.waiting_at_gate(marker) == 1)
                waiting = [
                    asyncio.ensure_future(client.post(f"{n.url}/query", json=body)) for n in others
                ]
                await asyncio.to_thread(first.kill)  # holds the lease; never releases it
                await asyncio.gather(doomed, return_exceptions=True)
                # Once its lease lapses, one of the others takes over and waits at the gate.
                await asyncio.to_thread(until, lambda: postgres.waiting_at_gate(marker) == 2)
            return list(await asyncio.gather(*waiting))

    responses = asyncio.run(scenario())

    assert [r.status_code for r in responses] == [200, 200]
    assert responses[0].json()["rows"] == responses[1].json()["rows"] != []
    # The killed node's statement may still finish in PostgreSQL: at most one more.
    assert postgres.executions_since(marker, before) <= 2


def until(done: Callable[[], bool]) -> None:
    """Until ``done()``, within the bound: what PostgreSQL reports of its own sessions."""
    deadline = time.monotonic() + BOUND
    while not done():
        assert time.monotonic() < deadline, "PostgreSQL never reported it"


def test_after_expiry_the_cluster_refreshes_once(
    cluster: Callable[..., Cluster], postgres: Postgres, tmp_path: Path
) -> None:
    """Every node holds a copy when it expires: one node refreshes it for all."""
    marker = "cluster_expiry"
    nodes = [n.url for n in cluster(catalog_file(postgres, tmp_path, marker, ttl=2)).nodes]
    body = {"query": "slow", "params": {"region": "Europe"}}
    first = spread(nodes, body, 30)
    assert {r.status_code for r in first} == {200}
    fresh_until = max(
        dt.datetime.fromisoformat(r.json()["meta"]["fresh_until"]).timestamp() for r in first
    )
    time.sleep(max(0.0, fresh_until - time.time()) + 0.1)  # the ttl passing, not a sync
    before = postgres.executions(marker)

    responses = spread(nodes, body, REQUESTS)

    assert {r.status_code for r in responses} == {200}
    assert postgres.executions_since(marker, before) == 1
