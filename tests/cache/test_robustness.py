"""The result cache's hard properties, proved against real parts (issue 3, "Tests").

Real servers on real sockets (uvicorn in this process, and the real `livedata serve`), real
PostgreSQL and DuckDB, real file systems (a full tmpfs, immutable folders). Nothing waits by
sleeping: a test waits on a server's readiness line, on responses, or on what PostgreSQL or
the kernel reports, always with a bound; time moves through a clock handed to the server.
PostgreSQL is the witness of how often a query ran (see ``conftest.py``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from livedata.cache.store import MAGIC
from livedata.catalog import QueryConfig
from tests.cache.conftest import (
    CliServer,
    Postgres,
    counted_run,
    held_locks,
    leftovers,
)
from tests.cache.test_http_cache import Clock
from tests.cache.traffic import BOUND, COLLAPSED, HIT, STORED, Body, ask, fire, same_data, statuses
from tests.conftest import require_service

# Each test's statement is told apart in pg_stat_statements by the name of its CTE: statements
# are grouped by their parse tree, where a CTE's name counts but a column alias does not.
PLAIN_SQL = """
WITH {marker} AS (SELECT alpha_3, name FROM world_country_list WHERE region = :region)
SELECT * FROM {marker} ORDER BY alpha_3
"""
# Half a second of work in PostgreSQL, so that concurrent requests really overlap.
SLOW_SQL = """
WITH {marker} AS (
    SELECT alpha_3, name, population FROM world_country_list
    WHERE region = :region AND (SELECT count(*) FROM pg_sleep(0.5)) = 1
)
SELECT * FROM {marker} ORDER BY alpha_3
"""
# Waits for advisory lock ``gate`` (taken shared, released when the statement ends), so a test
# holding that lock decides when the statement may finish.
GATED_SQL = """
WITH {marker} AS (
    SELECT alpha_3, name FROM world_country_list
    WHERE region = :region AND population >= :at_least
), gate AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared({gate}))
SELECT {marker}.* FROM {marker}, gate ORDER BY alpha_3
"""
REGION = {"region": {"type": "str"}}
GATED = {**REGION, "at_least": {"type": "int", "default": 0}}


def query(sql: str, **fields: Any) -> QueryConfig:
    params = GATED if ":at_least" in sql else REGION
    return QueryConfig.model_validate({"source": "pg", "sql": sql, "params": params, **fields})


# -- coalescing ------------------------------------------------------------------------------


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


# -- crash safety and integrity --------------------------------------------------------------


def crash_round(round_: int) -> list[tuple[Body, dict[str, str]]]:
    """Distinct cold requests for one round: large results in every format, and small ones."""
    lineitem: Body = {
        "table": "tpch_lineitem",
        "order_by": [{"column": "l_orderkey"}, {"column": "l_linenumber"}],
    }
    large = [
        ({**lineitem, "limit": 4000 + 10 * round_ + i, "format": fmt}, headers)
        for i, (fmt, headers) in enumerate(
            [
                ("json", {"accept-encoding": "identity"}),
                ("json", {"accept-encoding": "gzip"}),
                ("csv", {"accept-encoding": "identity"}),
                ("arrow", {"accept-encoding": "gzip"}),
                ("parquet", {"accept-encoding": "identity"}),
            ]
        )
    ]
    small: list[tuple[Body, dict[str, str]]] = [
        (
            {
                "query": "countries_by_region",
                "params": {"region": region, "min_population": 1000 * round_ + 1},
            },
            {},
        )
        for region in ("Europe", "Asia", "Africa")
    ]
    return large + small


class Killer:
    """SIGKILLs a server the moment a file shows up in its cache's ``tmp/``: mid-write."""

    def __init__(self, server: CliServer, tmp: Path) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, args=(server, tmp), daemon=True)
        self.thread.start()

    def _watch(self, server: CliServer, tmp: Path) -> None:
        while not self.stop.is_set():
            with os.scandir(tmp) as files:
                if any(files):
                    server.process.send_signal(signal.SIGKILL)
                    return

    def join(self) -> None:
        self.stop.set()
        self.thread.join()


def crash_during(
    server: CliServer, asks: list[tuple[Body, dict[str, str]]], after: int, cache_dir: Path
) -> list[tuple[Body, httpx.Response]]:
    """Send ``asks`` at once and kill -9 the server after ``after`` responses (0: at the
    first write). Returns the responses that arrived before the kill."""

    async def send(client: httpx.AsyncClient, body: Body, headers: dict[str, str]) -> Any:
        return body, await client.post("/query", json=body, headers=headers)

    async def run() -> list[tuple[Body, httpx.Response]]:
        answered: list[tuple[Body, httpx.Response]] = []
        killer = Killer(server, cache_dir / "tmp") if after == 0 else None
        async with httpx.AsyncClient(base_url=server.url, timeout=BOUND) as client:
            pending = {asyncio.ensure_future(send(client, b, h)) for b, h in asks}
            while pending and (killer is not None or len(answered) < after):
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if not isinstance(task.exception(), httpx.TransportError):
                        answered.append(task.result())  # else the kill cut it off: unanswered
            if killer is not None:
                killer.join()
            server.kill()
            await asyncio.gather(*pending, return_exceptions=True)
        return answered

    return asyncio.run(run())


def test_kill_9_never_leads_to_a_wrong_body(
    tmp_path: Path, cli_server: Callable[..., CliServer], reference: Callable[[Body], Any]
) -> None:
    rounds = 20
    cache_dir = tmp_path / "cache"
    checked: list[tuple[Body, dict[str, str]]] = []
    for round_ in range(rounds + 1):
        server = cli_server(cache_dir)
        assert leftovers(cache_dir) == [], f"round {round_}: tmp/ not cleaned at start-up"
        for body, headers in checked:  # the last round's requests, after its crash
            response = ask(server.url, body, **headers)
            assert response.status_code == 200, (round_, body, response.text)
            assert same_data(response) == reference(body), (round_, body, headers)
        if round_ == rounds:
            break
        asks = crash_round(round_)
        answered = crash_during(server, asks, round_ % (len(asks) + 1), cache_dir)
        for body, response in answered:
            assert response.status_code == 200, (round_, body, response.text)
            assert same_data(response) == reference(body), (round_, body)
        (cache_dir / "tmp" / "entry.4242.1").write_bytes(MAGIC + b"half a write")
        checked = asks


def damage_flip_payload(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def damage_flip_header(data: bytes) -> bytes:
    inside = len(MAGIC) + 4 + 3  # a byte of the JSON header
    return data[:inside] + bytes([data[inside] ^ 0x01]) + data[inside + 1 :]


def damage_truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def damage_foreign(data: bytes) -> bytes:
    return (b"PK\x03\x04" + bytes(range(256)) * (len(data) // 256 + 1))[: len(data)]


def damage_empty(data: bytes) -> bytes:
    return b""


# (damage, a number that makes each case's request, so its entry, its own)
DAMAGES = [
    pytest.param(damage_flip_payload, 1, id="flipped-payload-byte"),
    pytest.param(damage_flip_header, 2, id="flipped-header-byte"),
    pytest.param(damage_truncate, 3, id="truncated"),
    pytest.param(damage_foreign, 4, id="foreign-bytes"),
    pytest.param(damage_empty, 5, id="empty"),
]


@pytest.fixture(scope="module")
def integrity(
    serve: Callable[..., str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    cache_dir = tmp_path_factory.mktemp("integrity")
    return serve(cache_dir=cache_dir), cache_dir


def _files(cache_dir: Path, pattern: str) -> set[Path]:
    return set(cache_dir.glob(pattern))


def integrity_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The files the cache logged as failing their check (and removed)."""
    return [
        str(r.args[0])  # type: ignore[index]
        for r in caplog.records
        if r.name == "livedata.cache" and "integrity check" in r.getMessage()
    ]


@pytest.mark.parametrize(("damage", "case"), DAMAGES)
def test_a_damaged_entry_is_a_miss_and_is_replaced(
    integrity: tuple[str, Path],
    reference: Callable[[Body], Any],
    damage: Callable[[bytes], bytes],
    case: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, cache_dir = integrity
    body = {"table": "tpch_lineitem", "limit": 500 + case}
    before = _files(cache_dir, "entries/*/*.entry")
    assert ask(url, body).headers["cache-status"] == STORED
    (entry,) = _files(cache_dir, "entries/*/*.entry") - before
    damaged = damage(entry.read_bytes())
    entry.write_bytes(damaged)

    with caplog.at_level(logging.WARNING, logger="livedata.cache"):
        again = ask(url, body)

    assert integrity_failures(caplog) == [entry.name]
    assert again.headers["cache-status"] == STORED
    assert same_data(again) == reference(body)
    assert entry.read_bytes() != damaged
    third = ask(url, body)
    assert third.headers["cache-status"] == HIT
    assert third.content == again.content


@pytest.mark.parametrize(("damage", "case"), DAMAGES)
def test_a_damaged_stored_body_is_encoded_again(
    integrity: tuple[str, Path],
    damage: Callable[[bytes], bytes],
    case: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, cache_dir = integrity
    body = {"table": "tpch_lineitem", "limit": 600 + case}
    plain = {"accept-encoding": "identity"}  # so the stored body is the bytes sent
    first = ask(url, body, **plain)
    version_and_variant = first.headers["etag"].strip('"')
    stored = cache_dir / "bodies" / version_and_variant[:2] / version_and_variant
    assert stored.read_bytes().endswith(first.content)
    damaged = damage(stored.read_bytes())
    stored.write_bytes(damaged)

    with caplog.at_level(logging.WARNING, logger="livedata.cache"):
        # A Cache-Control header takes the path that reads files: the memory fast path keeps
        # serving the verified bytes it holds, and never reads the damaged file at all.
        again = ask(url, body, **plain, **{"cache-control": "max-age=86400"})

    assert integrity_failures(caplog) == [stored.name]
    assert again.headers["cache-status"] == HIT  # the entry is sound; only its body was not
    assert again.content == first.content
    assert stored.read_bytes() != damaged
    assert stored.read_bytes().endswith(first.content)


def test_a_body_is_never_served_for_another_entry(
    serve: Callable[..., str], reference: Callable[[Body], Any]
) -> None:
    """Two requests whose rows happen to be equal, fetched at the same instant."""
    clock = Clock()
    url = serve(None, clock)
    one, two = (
        {"query": "countries_by_region", "params": {"region": "Oceania", "min_population": n}}
        for n in (1, 2)
    )
    first, second = ask(url, one), ask(url, two)
    assert first.json()["rows"] == second.json()["rows"]  # the precondition: the same rows

    assert second.json()["meta"]["params"] == {"region": "Oceania", "min_population": 2}
    assert same_data(second) == reference(two)


# -- freshness with a real outage ------------------------------------------------------------


def _cluster() -> list[str]:
    """The command that controls this machine's PostgreSQL cluster (Debian's tools)."""
    if shutil.which("pg_ctlcluster") is None:
        raise FileNotFoundError("pg_ctlcluster is not installed")
    (version,) = (p.name for p in Path("/etc/postgresql").iterdir())
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]


def _pg_ctl(action: str) -> None:
    subprocess.run([*_cluster(), action, *(["-m", "fast"] if action == "stop" else [])], check=True)


def _wait_for_postgres() -> None:
    deadline = time.monotonic() + BOUND
    while subprocess.run(
        ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"], check=False
    ).returncode:
        assert time.monotonic() < deadline, "PostgreSQL did not come back"
        time.sleep(0.1)  # waiting for a service to start, not synchronising with our own code


def test_stale_if_error_while_postgres_is_stopped_then_fresh(
    serve: Callable[..., str], postgres: Postgres
) -> None:
    require_service("pg_ctlcluster, to stop and start PostgreSQL", _cluster)
    clock = Clock()
    sql = PLAIN_SQL.format(marker="robust_outage")
    url = serve(
        postgres.catalog(outage=query(sql, ttl=10, stale_if_error=3600)),
        clock,
        cache_error_ttl=5,
    )
    body = {"query": "outage", "params": {"region": "Oceania"}}
    first = ask(url, body)
    assert first.headers["cache-status"] == STORED
    clock.now += 11  # expired; stale-while-revalidate is 0

    try:
        _pg_ctl("stop")
        stale = ask(url, body)
    finally:
        _pg_ctl("start")
        _wait_for_postgres()
        postgres.reconnect()

    assert stale.status_code == 200, stale.text
    assert "detail=stale-if-error" in stale.headers["cache-status"].split("; ")
    assert stale.content == first.content
    assert int(stale.headers["age"]) == 11
    assert stale.headers["cache-control"] == "max-age=0"
    clock.now += 6  # past the remembered failure and the source's back-off
    fresh = ask(url, body)
    assert fresh.status_code == 200, fresh.text
    assert fresh.headers["cache-status"] == STORED
    assert fresh.json()["meta"]["fetched_at"] > first.json()["meta"]["fetched_at"]
    assert fresh.json()["rows"] == first.json()["rows"]


def test_stale_while_revalidate_refreshes_once_for_50_requests(
    serve: Callable[..., str], postgres: Postgres
) -> None:
    clock, marker, gate = Clock(), "robust_swr", 4_203_001
    sql = GATED_SQL.format(marker=marker, gate=gate)
    url = serve(postgres.catalog(swr=query(sql, ttl=10, stale_while_revalidate=600)), clock)
    body = {"query": "swr", "params": {"region": "Oceania"}}
    first = ask(url, body)
    assert first.headers["cache-status"] == STORED
    filled = postgres.executions(marker)
    clock.now += 11  # stale, within stale-while-revalidate

    with postgres.gate(gate):  # the refresh cannot finish before every stale answer is out
        responses = fire(url, [body] * 50, 50)
        deadline = time.monotonic() + BOUND
        while postgres.waiting_at_gate(marker) == 0:
            assert time.monotonic() < deadline, "no refresh reached PostgreSQL"
        assert postgres.waiting_at_gate(marker) == 1

    assert {r.headers["cache-status"] for r in responses} == {
        "livedata; hit; detail=stale-while-revalidate"
    }
    assert {r.content for r in responses} == {first.content}
    deadline = time.monotonic() + BOUND
    while (fresh := ask(url, body)).headers["cache-status"] != HIT:  # the refresh lands
        assert time.monotonic() < deadline, "the refresh never landed"
    assert fresh.json()["meta"]["fetched_at"] > first.json()["meta"]["fetched_at"]
    assert postgres.executions_since(marker, filled) == 1


# -- coalescing across processes under load --------------------------------------------------


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
