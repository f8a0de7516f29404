"""The shared tier stores its own format (``LIVEDATA_CACHE_SHARED_FORMAT``): objects are
written in it, and a node turns them into its disk's format on the way in, checked first."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import obstore
import pytest

from livedata.cache.store import Store
from tests.cache.conftest import Postgres
from tests.cache.traffic import BOUND, STORED
from tests.cluster.conftest import Cluster, SeaweedFS
from tests.cluster.test_shared_objects import SHARED, bucket, catalog_file, uploaded


def object_file(seaweedfs: SeaweedFS, prefix: str, into: Path) -> tuple[Store, Path]:
    """The bucket's one object, saved as a file a ``Store`` can check."""
    store = bucket(seaweedfs, prefix)
    [listed] = uploaded(store)
    path = into / "object"
    path.write_bytes(obstore.get(store, listed["path"]).bytes().to_bytes())
    return Store(into / "check"), path


@pytest.mark.parametrize(
    ("local", "shared"),
    [
        pytest.param("arrow", "arrow-zstd", id="default-arrow-zstd-over-arrow"),
        pytest.param("arrow-lz4", "parquet-zstd", id="parquet-zstd-over-arrow-lz4"),
        pytest.param("arrow", "arrow", id="same-format-as-is"),
    ],
)
def test_objects_are_in_the_shared_format_and_nodes_keep_their_own(
    cluster: Callable[..., Cluster],
    postgres: Postgres,
    seaweedfs: SeaweedFS,
    tmp_path: Path,
    local: str,
    shared: str,
) -> None:
    marker = "cluster_shared_format"
    started = cluster(
        catalog_file(postgres, tmp_path, marker),
        nodes=2,
        LIVEDATA_CACHE_FORMAT=local,
        LIVEDATA_CACHE_SHARED_FORMAT=shared,
    )
    a, b = (node.url for node in started.nodes)
    body = {"query": "plain", "params": {"region": "Europe"}}
    first = httpx.post(f"{a}/query", json=body, timeout=BOUND)
    assert first.headers["cache-status"] == STORED
    store, path = object_file(seaweedfs, started.prefix, tmp_path)
    stored = store.read(path)
    assert stored is not None
    assert stored.header["format"] == shared

    again = httpx.post(f"{b}/query", json=body, timeout=BOUND)

    assert again.headers["cache-status"] == SHARED
    assert again.json()["rows"] == first.json()["rows"]
    [entry] = (tmp_path / "node-1" / "entries").glob("*/*.entry")
    on_disk = store.read(entry)
    assert on_disk is not None
    assert on_disk.header["format"] == local


def test_an_object_that_passes_its_check_but_does_not_decode_is_a_miss(
    cluster: Callable[..., Cluster], postgres: Postgres, seaweedfs: SeaweedFS, tmp_path: Path
) -> None:
    """A writer that is not livedata, or a bug: the digest matches, the payload is not
    ``arrow-zstd``. It is never served; the next fetch replaces it."""
    marker = "cluster_undecodable"
    started = cluster(catalog_file(postgres, tmp_path, marker))
    a, b, c = (node.url for node in started.nodes)
    body = {"query": "plain", "params": {"region": "Asia"}}
    first = httpx.post(f"{a}/query", json=body, timeout=BOUND)
    store, path = object_file(seaweedfs, started.prefix, tmp_path)
    stored = store.read(path)
    assert stored is not None
    forged = store.write(tmp_path / "forged", b"not arrow at all", stored.header)
    assert forged is not None
    [listed] = uploaded(bucket(seaweedfs, started.prefix))
    obstore.put(bucket(seaweedfs, started.prefix), listed["path"], forged.path.read_bytes())
    before = postgres.executions(marker)

    again = httpx.post(f"{b}/query", json=body, timeout=BOUND)

    assert again.headers["cache-status"] == STORED  # fetched again, never the forged one
    assert again.json()["rows"] == first.json()["rows"]
    assert postgres.executions_since(marker, before) == 1
    third = httpx.post(f"{c}/query", json=body, timeout=BOUND)
    assert third.headers["cache-status"] == SHARED  # b's object replaced the forged one
    assert third.json()["rows"] == first.json()["rows"]
