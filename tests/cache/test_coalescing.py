"""Coalescing proved against real PostgreSQL: N identical requests at once cost one execution,
in one process, across worker processes, and on failure; processes waiting on each other's
keys still answer. PostgreSQL is the witness of how often a query ran (see ``conftest.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.cache.conftest import (
    GATED,
    GATED_SQL,
    REGION,
    SLOW_SQL,
    Postgres,
    counted_run,
    held_locks,
    query,
)
from tests.cache.traffic import BOUND, COLLAPSED, HIT, STORED, fire, statuses
from tests.cli_server import CliServer


def test_200_cold_requests_cost_one_postgres_execution(
    serve: Callable[..., str], postgres: Postgres
) -> None:
    marker = "robust_cold_in_process"
    url = serve(postgres.catalog(slow=query(SLOW_SQL.format(marker=marker), ttl=600)))
    before = postgres.executions(marker)

    responses = fire(url, [{"query": "slow", "params": {"region": "Europe"}}] * 200, 200)

    assert [r.status_code for r in responses] == [200] * 200
    assert len({r.content for r in responses}) == 1
    assert postgres.executions_since(marker, before) == 1
    assert statuses(responses).count(STORED) == 1
    assert set(statuses(responses)) <= {STORED, COLLAPSED, HIT}


def test_200_cold_requests_on_4_workers_cost_one_postgres_execution(
    tmp_path: Path, postgres: Postgres, cli_server: Callable[..., CliServer]
) -> None:
    marker = "robust_cold_workers"
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        postgres.catalog_toml(
            slow={"sql": SLOW_SQL.format(marker=marker), "ttl": 600, "params": REGION}
        )
    )
    server = cli_server(tmp_path / "cache", "--catalog", str(catalog), workers=4)
    before = postgres.executions(marker)

    responses = fire(server.url, [{"query": "slow", "params": {"region": "Asia"}}] * 200, 50)

    assert [r.status_code for r in responses] == [200] * 200
    assert len({r.content for r in responses}) == 1
    assert postgres.executions_since(marker, before) == 1
    assert statuses(responses).count(STORED) == 1
    assert set(statuses(responses)) <= {STORED, COLLAPSED, HIT}


def test_concurrent_requests_share_one_failure(
    serve: Callable[..., str], postgres: Postgres
) -> None:
    tag = "robust_shared_error"
    failing = (
        f"SELECT 1 / (count(*) * 0) AS {tag} FROM {counted_run(tag)}, pg_sleep(0.5)"
        " WHERE :region <> ''"
    )
    url = serve(postgres.catalog(failing=query(failing, ttl=600)))
    before = postgres.runs(tag)

    responses = fire(url, [{"query": "failing", "params": {"region": "Africa"}}] * 50, 50)

    errors = [r.json()["error"] for r in responses]
    assert [r.status_code for r in responses] == [502] * 50
    assert {(e["code"], e["message"]) for e in errors} == {
        ("query_failed", "Source 'pg' rejected the query: division by zero")
    }
    assert postgres.runs(tag) - before == 1


def test_processes_waiting_on_each_others_keys_still_answer(
    tmp_path: Path, postgres: Postgres, cli_server: Callable[..., CliServer]
) -> None:
    """Two servers on one cache dir (as two workers), each first to 40 slow cold keys, then
    asked for the other's 40: each then has 40 requests blocked on the other's lock files,
    and the owners of those locks must still be able to store their results and answer."""
    gate, keys = 4_203_002, 40
    catalog = tmp_path / "catalog.toml"
    sql = GATED_SQL.format(marker="robust_cross", gate=gate)
    catalog.write_text(  # every request of the scenario waits for a slot: none is refused
        postgres.catalog_toml(
            {"max_queued_queries": 4 * keys}, cross={"sql": sql, "ttl": 600, "params": GATED}
        )
    )
    cache_dir = tmp_path / "cache"
    one, two = (cli_server(cache_dir, "--catalog", str(catalog)) for _ in range(2))
    mine = [{"query": "cross", "params": {"region": "Europe", "at_least": n}} for n in range(keys)]
    theirs = [{"query": "cross", "params": {"region": "Asia", "at_least": n}} for n in range(keys)]

    def until(what: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + BOUND
        while not done():
            assert time.monotonic() < deadline, what

    async def scenario() -> list[httpx.Response]:
        async with (
            httpx.AsyncClient(base_url=one.url, timeout=2 * BOUND) as a,
            httpx.AsyncClient(base_url=two.url, timeout=2 * BOUND) as b,
        ):
            sent = [asyncio.ensure_future(a.post("/query", json=body)) for body in mine]
            await asyncio.to_thread(
                until, "one holds its locks", lambda: held_locks(cache_dir)[0] == keys
            )
            sent += [asyncio.ensure_future(b.post("/query", json=body)) for body in theirs]
            await asyncio.to_thread(
                until, "two holds its locks", lambda: held_locks(cache_dir)[0] == 2 * keys
            )
            sent += [asyncio.ensure_future(a.post("/query", json=body)) for body in theirs]
            sent += [asyncio.ensure_future(b.post("/query", json=body)) for body in mine]
            await asyncio.to_thread(
                until, "each waits for the other", lambda: held_locks(cache_dir)[1] >= 2 * keys
            )
            postgres.release()
            _, unanswered = await asyncio.wait(sent, timeout=BOUND)
            held, waiting = held_locks(cache_dir)
            for task in unanswered:
                task.cancel()
            if unanswered:
                pytest.fail(
                    f"deadlock: {len(unanswered)} of {len(sent)} requests unanswered {BOUND:g} s"
                    f" after the gate opened; {held} cache locks held, {waiting} waited for"
                )
            return [task.result() for task in sent]

    postgres.hold(gate)
    try:
        responses = asyncio.run(scenario())
    finally:
        postgres.release()
    assert [r.status_code for r in responses] == [200] * (4 * keys)


def test_a_leader_that_disconnects_does_not_cancel_the_fetch_for_the_others(
    serve: Callable[..., str], postgres: Postgres
) -> None:
    gate, marker = 4_203_201, "coalesce_leader_leaves"
    sql = GATED_SQL.format(marker=marker, gate=gate)
    url = serve(postgres.catalog(gated=query(sql, ttl=600)))
    body = {"query": "gated", "params": {"region": "Europe"}}
    before = postgres.executions(marker)

    async def scenario() -> httpx.Response:
        async with httpx.AsyncClient(base_url=url, timeout=BOUND) as others:
            with postgres.gate(gate):
                async with httpx.AsyncClient(base_url=url, timeout=BOUND) as leader:
                    leaving = asyncio.ensure_future(leader.post("/query", json=body))
                    await asyncio.to_thread(until_waiting, postgres, marker)
                    joiner = asyncio.ensure_future(others.post("/query", json=body))
                    leaving.cancel()  # the leader's client goes away mid-fetch
                    await asyncio.gather(leaving, return_exceptions=True)
            return await joiner

    response = asyncio.run(scenario())

    assert response.status_code == 200
    assert response.json()["rows"]
    assert postgres.executions_since(marker, before) == 1


def until_waiting(postgres: Postgres, marker: str) -> None:
    deadline = time.monotonic() + BOUND
    while postgres.waiting_at_gate(marker) < 1:
        assert time.monotonic() < deadline, "the statement never reached the gate"
