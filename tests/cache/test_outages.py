"""Freshness through a real outage: PostgreSQL stopped and started again (stale-if-error), and
stale-while-revalidate refreshing once for many requests. Time moves through a clock handed
to the server; nothing sleeps to synchronise."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.cache.conftest import (
    GATED_SQL,
    PLAIN_SQL,
    Postgres,
    query,
)
from tests.cache.traffic import BOUND, HIT, STORED, Clock, ask, fire
from tests.conftest import require_service


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
