"""Objects in the shared tier: a damaged one is never served (it is a miss, and replaced);
callers with different restrictions never share one."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import obstore
import pytest
from obstore.store import S3Store

from livedata.auth.keys import new_key
from tests.cache.conftest import PLAIN_SQL, Postgres
from tests.cache.traffic import BOUND, STORED
from tests.cluster.conftest import (
    ACCESS_KEY,
    BUCKET,
    SECRET_KEY,
    Cluster,
    RedisServer,
    SeaweedFS,
    restart_empty,
)

SHARED = "livedata; hit; detail=shared"


def bucket(seaweedfs: SeaweedFS, prefix: str) -> S3Store:
    return S3Store(
        BUCKET,
        prefix=prefix,
        endpoint=seaweedfs.endpoint,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        region="us-east-1",
        client_options={"allow_http": True},
    )


def uploaded(store: S3Store, count: int = 1) -> list[dict[str, Any]]:
    """The objects in the bucket once there are ``count``: a node uploads its entry after the
    response that fetched it is sent."""
    deadline = time.monotonic() + BOUND
    while len(found := [dict(meta) for page in obstore.list(store) for meta in page]) < count:
        assert time.monotonic() < deadline, f"{len(found)} of {count} objects uploaded"
        time.sleep(0.05)  # polling the bucket, within the bound
    return found


def catalog_file(postgres: Postgres, tmp_path: Path, marker: str) -> Path:
    path = tmp_path / "catalog.toml"
    sql = PLAIN_SQL.format(marker=marker)
    path.write_text(
        postgres.catalog_toml(plain={"sql": sql, "ttl": 600, "params": {"region": {"type": "str"}}})
    )
    return path


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data[:-1] + bytes([data[-1] ^ 0xFF]), id="flipped-byte"),
        pytest.param(lambda data: b"not a livedata object", id="foreign"),
    ],
)
def test_a_damaged_object_is_a_miss_and_is_replaced(
    cluster: Callable[..., Cluster],
    postgres: Postgres,
    seaweedfs: SeaweedFS,
    tmp_path: Path,
    damage: Callable[[bytes], bytes],
) -> None:
    marker = "cluster_damaged"
    started = cluster(catalog_file(postgres, tmp_path, marker))
    a, b, c = (n.url for n in started.nodes)
    body = {"query": "plain", "params": {"region": "Europe"}}
    first = httpx.post(f"{a}/query", json=body, timeout=BOUND)
    assert first.headers["cache-status"] == STORED
    store = bucket(seaweedfs, started.prefix)
    [listed] = uploaded(store)
    obstore.put(
        store, listed["path"], damage(obstore.get(store, listed["path"]).bytes().to_bytes())
    )
    before = postgres.executions(marker)

    again = httpx.post(f"{b}/query", json=body, timeout=BOUND)  # b has no copy of its own

    assert again.status_code == 200
    assert again.json()["rows"] == first.json()["rows"]
    assert again.headers["cache-status"] == STORED  # fetched again, never the damaged one
    assert postgres.executions_since(marker, before) == 1
    third = httpx.post(f"{c}/query", json=body, timeout=BOUND)
    assert third.headers["cache-status"] == SHARED  # b's object replaced the damaged one
    assert third.json()["rows"] == first.json()["rows"]


def test_callers_with_different_restrictions_never_share_an_entry(
    cluster: Callable[..., Cluster], postgres: Postgres, tmp_path: Path
) -> None:
    keys, sections = {}, []
    for region in ("Europe", "Asia"):
        key, digest = new_key(region.lower())
        keys[region] = key
        sections.append(
            f'[api_keys.{region.lower()}]\nhash = "{digest}"\nqueries = ["plain"]\n'
            f'restrictions = {{ region = "{region}" }}\n'
        )
    access = tmp_path / "access.toml"
    access.write_text("\n".join(sections))
    nodes = cluster(
        catalog_file(postgres, tmp_path, "cluster_tenants"), LIVEDATA_AUTH_FILE=str(access)
    ).nodes
    rows = {}
    for region, node in (("Europe", nodes[0]), ("Asia", nodes[1]), ("Europe", nodes[2])):
        response = httpx.post(
            f"{node.url}/query",
            json={"query": "plain"},
            headers={"Authorization": f"Bearer {keys[region]}"},
            timeout=BOUND,
        )
        assert response.status_code == 200, response.text
        rows.setdefault(region, []).append(response.json()["rows"])
    europe, asia = rows["Europe"], rows["Asia"]
    assert europe[0] == europe[1]  # the third node had Europe's entry from the shared tier
    assert not {tuple(r) for r in asia[0]} & {tuple(r) for r in europe[0]}


def test_credentials_from_the_shared_credentials_file(
    cluster: Callable[..., Cluster], postgres: Postgres, seaweedfs: SeaweedFS, tmp_path: Path
) -> None:
    """How a container is handed its keys: a secret file, none in the environment."""
    credentials = tmp_path / "s3_credentials"
    credentials.write_text(
        f"[livedata]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
    )
    started = cluster(
        catalog_file(postgres, tmp_path, "cluster_credentials_file"),
        nodes=2,
        AWS_ACCESS_KEY_ID="",
        AWS_SECRET_ACCESS_KEY="",
        AWS_SHARED_CREDENTIALS_FILE=str(credentials),
        AWS_PROFILE="livedata",
    )
    body = {"query": "plain", "params": {"region": "Asia"}}
    first = httpx.post(f"{started.nodes[0].url}/query", json=body, timeout=BOUND)
    assert first.headers["cache-status"] == STORED
    assert uploaded(bucket(seaweedfs, started.prefix))

    second = httpx.post(f"{started.nodes[1].url}/query", json=body, timeout=BOUND)

    assert second.headers["cache-status"] == SHARED
    assert second.json()["rows"] == first.json()["rows"]


def test_after_redis_restarts_empty_new_entries_are_shared_again(
    cluster: Callable[..., Cluster],
    postgres: Postgres,
    redis_server: RedisServer,
    seaweedfs: SeaweedFS,
    tmp_path: Path,
) -> None:
    """Fences name the objects: counted again from 1 after Redis lost them, the next fetch's
    object had the name of one already in the bucket, its conditional create was refused,
    and no other node could read the new entry."""
    started = cluster(catalog_file(postgres, tmp_path, "cluster_restarted"), nodes=2)
    a, b = (node.url for node in started.nodes)
    body = {"query": "plain", "params": {"region": "Oceania"}}
    assert httpx.post(f"{a}/query", json=body, timeout=BOUND).headers["cache-status"] == STORED
    store = bucket(seaweedfs, started.prefix)
    uploaded(store)
    restart_empty(redis_server, [a, b])
    assert httpx.post(f"{a}/cache/invalidate", json={"all": True}, timeout=BOUND).is_success

    again = httpx.post(f"{a}/query", json=body, timeout=BOUND)
    assert again.headers["cache-status"] == STORED
    uploaded(store, count=2)
    shared = httpx.post(f"{b}/query", json=body, timeout=BOUND)

    assert shared.headers["cache-status"] == SHARED
    assert shared.json()["rows"] == again.json()["rows"]
