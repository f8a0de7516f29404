"""Every byte the cache writes belongs to an entry and is counted; nothing outlives its entry,
not on disk, not as an open file."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest

from tests.cache.traffic import HIT, STORED, Clock, ask

LINEITEM = {"table": "tpch_lineitem", "limit": 2000}


def files(cache_dir: Path, folder: str) -> list[Path]:
    return [p for p in (cache_dir / folder).rglob("*") if p.is_file()]


def test_a_refetched_entry_leaves_no_bodies_of_its_older_fetches(
    serve: Callable[..., str], tmp_path: Path
) -> None:
    """Each refresh once left its bodies behind, uncounted: 8 refreshes, 8 body files."""
    clock, cache_dir = Clock(), tmp_path / "cache"
    url = serve(cache_dir=cache_dir, clock=clock)
    for _ in range(8):
        for fmt in ("json", "csv", "arrow"):
            assert ask(url, {**LINEITEM, "format": fmt}, **{"accept-encoding": "gzip"}).is_success
        clock.now += 61  # past the default ttl: the next request fetches it again

    bodies = files(cache_dir, "bodies")
    assert {p.name.split(".")[1] for p in bodies} == {_version(cache_dir)}  # one fetch's only
    [entry] = httpx.get(f"{url}/cache").json()["entries"]
    on_disk = sum(p.stat().st_size for p in [*files(cache_dir, "entries"), *bodies])
    assert entry["bytes"] == on_disk  # every body counted with its entry

    assert httpx.post(f"{url}/cache/invalidate", json={"all": True}).json() == {"removed": 1}
    assert files(cache_dir, "entries") == files(cache_dir, "bodies") == []


def _version(cache_dir: Path) -> str:
    """The version of the one entry in the cache, as its index row says."""
    with sqlite3.connect(cache_dir / "index.sqlite") as index:
        [(header,)] = index.execute("SELECT header FROM entries").fetchall()
    return str(orjson.loads(header)["version"])


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_results_remembered_by_the_fast_path_hold_no_open_file(
    serve: Callable[..., str], tmp_path: Path
) -> None:
    """The fast path once kept each result's entry, and with it a mapped file: 600 one-row
    queries took a process from 22 to 622 descriptors, and the cache stopped writing at the
    descriptor limit."""
    url = serve(cache_dir=tmp_path / "cache")
    ask(url, {"query": "country", "params": {"codes": ["FRA"]}})  # the server warmed up
    before = _open_files()

    with httpx.Client(base_url=url, timeout=60) as client:
        for population in range(300):
            body = {
                "query": "countries_by_region",
                "params": {"region": "Asia", "min_population": population},
            }
            for expected in (STORED, HIT, HIT):  # a miss, a hit that is remembered, a memory hit
                assert client.post("/query", json=body).headers["cache-status"] == expected
        removed = client.post("/cache/invalidate", json={"all": True}).json()["removed"]
        assert removed == 300 + 1  # and the warm-up

    assert _open_files() - before < 30  # sockets and pooled connections, not 300 files


@pytest.fixture
def stored_then_forgotten(serve: Callable[..., str], tmp_path: Path) -> tuple[str, Path]:
    """A server with one stored entry whose index row is then lost (as after a crash between
    the file's rename and the index insert)."""
    cache_dir = tmp_path / "cache"
    url = serve(cache_dir=cache_dir)
    assert ask(url, {"query": "revenue_by_shipmode"}).headers["cache-status"] == STORED
    with sqlite3.connect(cache_dir / "index.sqlite") as index:
        index.execute("DELETE FROM tags")
        index.execute("DELETE FROM entries")
    return url, cache_dir


def test_an_entry_the_index_lost_is_indexed_again_when_read(
    stored_then_forgotten: tuple[str, Path],
) -> None:
    url, _ = stored_then_forgotten
    # Past the fast path (it answers from memory), so the entry file is read.
    read = ask(url, {"query": "revenue_by_shipmode"}, **{"if-none-match": '"other"'})
    assert read.headers["cache-status"] == HIT

    removed = httpx.post(f"{url}/cache/invalidate", json={"table": "tpch_lineitem"}).json()

    assert removed == {"removed": 1}
    assert ask(url, {"query": "revenue_by_shipmode"}).headers["cache-status"] == STORED
