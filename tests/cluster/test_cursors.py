"""A cursor from one node pages on another: the snapshot is found through the shared tier,
and every node checks the signature with the same LIVEDATA_CURSOR_SECRET."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.cache.conftest import PLAIN_SQL, Postgres
from tests.cache.traffic import BOUND, HIT
from tests.cluster.conftest import Cluster, SeaweedFS
from tests.cluster.test_shared_objects import bucket, catalog_file, uploaded

SECRET = "a-cursor-secret-every-node-shares"  # noqa: S105  # made for this test


def test_a_cursor_pages_on_every_node(
    cluster: Callable[..., Cluster], postgres: Postgres, seaweedfs: SeaweedFS, tmp_path: Path
) -> None:
    started = cluster(
        catalog_file(postgres, tmp_path, "cluster_cursors"), nodes=2, LIVEDATA_CURSOR_SECRET=SECRET
    )
    first_node, other_node = (node.url for node in started.nodes)
    body = {"query": "plain", "params": {"region": "Europe"}, "limit": 5, "paginate": True}
    first = httpx.post(f"{first_node}/query", json=body, timeout=BOUND)
    assert first.status_code == 200, first.text
    uploaded(bucket(seaweedfs, started.prefix))  # the entry reaches the tier after the page

    second = httpx.post(
        f"{other_node}/query",
        json={"query": "plain", "cursor": first.json()["meta"]["next"]},
        timeout=BOUND,
    )

    assert second.status_code == 200, second.text
    assert second.headers["cache-status"] == HIT
    whole = httpx.post(
        f"{first_node}/query", json={"query": "plain", "params": {"region": "Europe"}}
    ).json()["rows"]
    assert first.json()["rows"] + second.json()["rows"] == whole[:10]
    assert second.json()["meta"]["total"] == len(whole)


def test_a_cursor_pages_on_another_node_after_its_entry_is_no_longer_fresh(
    cluster: Callable[..., Cluster], postgres: Postgres, seaweedfs: SeaweedFS, tmp_path: Path
) -> None:
    """The other node once took the snapshot from the shared tier only while it was fresh
    enough to answer with: a cursor failed there (410) one ttl after its first page."""
    catalog = tmp_path / "catalog.toml"
    sql = PLAIN_SQL.format(marker="cluster_cursors_stale")
    region = {"region": {"type": "str"}}
    catalog.write_text(
        postgres.catalog_toml(plain={"sql": sql, "ttl": 1, "stale_if_error": 600, "params": region})
    )
    started = cluster(catalog, nodes=2, LIVEDATA_CURSOR_SECRET=SECRET)
    first_node, other_node = (node.url for node in started.nodes)
    body = {"query": "plain", "params": {"region": "Asia"}, "limit": 5, "paginate": True}
    first = httpx.post(f"{first_node}/query", json=body, timeout=BOUND).json()
    uploaded(bucket(seaweedfs, started.prefix))
    fresh_until = dt.datetime.fromisoformat(first["meta"]["fresh_until"]).timestamp()
    time.sleep(max(0.0, fresh_until - time.time()) + 0.1)  # what is tested is time passing

    second = httpx.post(
        f"{other_node}/query",
        json={"query": "plain", "cursor": first["meta"]["next"]},
        timeout=BOUND,
    )

    assert second.status_code == 200, second.text
    assert second.json()["meta"]["fetched_at"] == first["meta"]["fetched_at"]  # same snapshot
