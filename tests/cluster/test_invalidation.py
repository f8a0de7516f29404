"""Invalidation on one node reaches every node at once: memory, disk and shared copies."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.cache.conftest import Postgres
from tests.cache.traffic import BOUND, HIT
from tests.cli_server import LIVEDATA
from tests.cluster.conftest import Cluster, RedisServer, restart_empty

TABLE = "cluster_invalidated"


def value_catalog(postgres: Postgres, tmp_path: Path) -> Path:
    """A query reading one value from a table of its own, which the test then changes."""
    postgres.db.execute(f"DROP TABLE IF EXISTS {TABLE}")
    postgres.db.execute(f"CREATE TABLE {TABLE} (v int)")
    postgres.db.execute(f"INSERT INTO {TABLE} VALUES (1)")
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(postgres.catalog_toml(value={"sql": f"SELECT v FROM {TABLE}", "ttl": 600}))
    return catalog


def ask(url: str) -> httpx.Response:
    return httpx.post(f"{url}/query", json={"query": "value"}, timeout=BOUND)


@pytest.mark.parametrize("how", ["http", "cli"])
def test_invalidating_on_one_node_makes_every_node_fetch_again(
    cluster: Callable[..., Cluster],
    redis_server: RedisServer,
    postgres: Postgres,
    tmp_path: Path,
    how: str,
) -> None:
    """Through one node's POST /cache/invalidate, or `livedata cache invalidate` on its host."""
    catalog = value_catalog(postgres, tmp_path)
    a, b, c = cluster(catalog).nodes

    for node in (a, b, c):  # each node has it on disk, then in memory (the fast path)
        for _ in range(3):
            assert ask(node.url).json()["rows"] == [[1]]
    assert ask(b.url).headers["cache-status"] == HIT

    postgres.db.execute(f"UPDATE {TABLE} SET v = 2")
    if how == "http":
        removed = httpx.post(f"{a.url}/cache/invalidate", json={"table": TABLE}, timeout=BOUND)
        assert removed.json() == {"removed": 1}  # node a's own copy; the others' go stale
    else:
        done = subprocess.run(
            [*LIVEDATA, "cache", "invalidate", "--table", TABLE],
            env={
                **os.environ,
                "LIVEDATA_CATALOG": str(catalog),
                "LIVEDATA_CACHE_DIR": str(tmp_path / "node-0"),
                "LIVEDATA_REDIS_URL": redis_server.url,
            },
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "removed 1 entry" in done.stdout

    for node in (b, c, a):
        answer = ask(node.url)
        assert answer.json()["rows"] == [[2]], node.url
        assert answer.headers["cache-status"] != HIT


def test_an_invalidation_after_redis_lost_its_counters_still_reaches_every_node(
    cluster: Callable[..., Cluster],
    redis_server: RedisServer,
    postgres: Postgres,
    tmp_path: Path,
) -> None:
    """Redis restarted empty (it keeps nothing on disk): the counters start again, and the
    nodes, which remember higher ones, must not take the next invalidation for an old one."""
    a, b = cluster(value_catalog(postgres, tmp_path), nodes=2).nodes
    for _ in range(3):  # counters above what a restarted Redis counts to at first
        assert httpx.post(f"{a.url}/cache/invalidate", json={"table": TABLE}).is_success
    for node in (a, b):
        assert ask(node.url).json()["rows"] == [[1]]
    restart_empty(redis_server, [a.url, b.url])

    postgres.db.execute(f"UPDATE {TABLE} SET v = 2")
    assert httpx.post(f"{a.url}/cache/invalidate", json={"table": TABLE}).is_success

    for node in (b, a):
        assert ask(node.url).json()["rows"] == [[2]], node.url
