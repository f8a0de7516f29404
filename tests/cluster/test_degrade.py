"""When the shared parts fail, every request still answers; when they return, the cluster
asks the source once per key again."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

from tests.cache.conftest import Postgres
from tests.cluster.conftest import Cluster, RedisServer, SeaweedFS, until_ready
from tests.cluster.test_one_query import REQUESTS, catalog_file, spread


def test_every_request_answers_while_redis_and_storage_are_down_then_one_query_again(
    cluster: Callable[..., Cluster],
    postgres: Postgres,
    redis_server: RedisServer,
    seaweedfs: SeaweedFS,
    tmp_path: Path,
) -> None:
    marker = "cluster_degraded"
    catalog = catalog_file(postgres, tmp_path, marker)
    # Stopped services refuse connections at once, so a longer timeout slows nothing here; it
    # keeps the first upload to a just-restarted SeaweedFS on a loaded machine (CI: once over
    # the 2 s default, and a lost upload costs each node a query by design) within it.
    urls = [n.url for n in cluster(catalog, LIVEDATA_CACHE_SHARED_TIMEOUT="10").nodes]

    def body(region: str) -> dict[str, object]:
        return {"query": "slow", "params": {"region": region}}

    redis_server.stop()
    until_ready(urls, "cluster", "Redis failed")
    assert {r.status_code for r in spread(urls, body("Asia"), 30)} == {200}

    seaweedfs.stop()
    assert {r.status_code for r in spread(urls, body("Africa"), 30)} == {200}  # both down

    redis_server.start()
    assert {r.status_code for r in spread(urls, body("Americas"), 30)} == {200}  # storage down

    seaweedfs.start()
    until_ready(urls, "cluster", "ok")
    until_ready(urls, "shared_tier", "ok")
    before = postgres.executions(marker)
    responses = spread(urls, body("Oceania"), REQUESTS)
    assert {r.status_code for r in responses} == {200}
    assert postgres.executions_since(marker, before) == 1


def test_a_redis_that_does_not_answer_costs_a_bounded_wait(
    cluster: Callable[..., Cluster], postgres: Postgres, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Redis frozen (SIGSTOP: connections open, no answer) is as good as down after the
    timeout: requests answer, one statement per node at most."""
    marker = "cluster_frozen_redis"
    catalog = catalog_file(postgres, tmp_path, marker)
    urls = [n.url for n in cluster(catalog, LIVEDATA_CACHE_SHARED_TIMEOUT="0.5").nodes]
    assert redis_server.process is not None
    before = postgres.executions(marker)
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        responses = spread(urls, {"query": "slow", "params": {"region": "Europe"}}, 30)
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    assert {r.status_code for r in responses} == {200}
    assert 1 <= postgres.executions_since(marker, before) <= len(urls)
