"""A cursor from one node pages on another: the snapshot is found through the shared tier,
and every node checks the signature with the same LIVEDATA_CURSOR_SECRET."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from tests.cache.conftest import Postgres
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
