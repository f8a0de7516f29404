"""Background upkeep: one round, run directly on a real cache, and the loop that repeats it."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import anyio
import anyio.from_thread
import pytest

from livedata.cache.entries import ResultCache
from livedata.cache.formats.registry import FORMATS
from livedata.cache.upkeep import maintain, sweep
from livedata.catalog import load_catalog
from livedata.plan import QueryRequest
from livedata.service import QueryService
from livedata.settings import BUNDLED_CATALOG, Settings
from livedata.web.app import maintain_forever
from tests.cache.conftest import directory_bytes
from tests.conftest import answer

NOW = 1_800_000_000.0
OLD = QueryRequest(query="countries_by_region", params={"region": "Asia"})
FRESH = {
    "revenue": QueryRequest(query="revenue_by_shipmode"),
    "france": QueryRequest(query="country", params={"codes": ["FRA"]}),
    "countries": QueryRequest(table="world_country_list", limit=3),
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the loop uvicorn runs, and maintenance with it


def fill(cache_dir: Path, requests: list[QueryRequest], at: float) -> None:
    """Store results through the real service, created at ``at`` (in this order)."""
    service = QueryService.create(
        load_catalog(BUNDLED_CATALOG), Settings(cache_dir=cache_dir), clock=lambda: at
    )
    try:
        for request in requests:
            asyncio.run(answer(service, request))
    finally:
        service.close()


def keys(cache_dir: Path) -> dict[str, tuple[str, int]]:
    """Each stored entry's ``kind:name``, with its key and size, as another process sees it."""
    cache = ResultCache(cache_dir, 1 << 30, FORMATS["arrow"])
    try:
        return {f"{e['kind']}:{e['name']}": (e["key"], e["bytes"]) for e in cache.index.listing()}
    finally:
        cache.close()


def test_one_round_removes_expired_entries_and_keeps_the_size_bound(tmp_path: Path) -> None:
    fill(tmp_path, [OLD], at=NOW - 2 * 3600)  # past ttl (60) and stale-if-error (3600)
    fill(tmp_path, list(FRESH.values()), at=NOW)  # least recently used first
    stored = keys(tmp_path)
    revenue, france, countries = (
        stored[n]
        for n in ("query:revenue_by_shipmode", "query:country", "table:world_country_list")
    )
    measured = ResultCache(tmp_path, 1 << 30, FORMATS["arrow"])
    try:
        sweep(measured, NOW)  # what the index and the lock files take besides the entries
        overhead = measured.overhead
    finally:
        measured.close()
    # Room for two of the three fresh entries; reading the oldest makes it the most recent.
    bound = revenue[1] + countries[1] + overhead + france[1] // 2
    cache = ResultCache(tmp_path, bound, FORMATS["arrow"])
    try:
        assert cache.get(revenue[0]) is not None

        maintain(cache, NOW)

        assert set(keys(tmp_path)) == {"query:revenue_by_shipmode", "table:world_country_list"}
        assert directory_bytes(tmp_path) <= bound  # everything in it counts
        assert cache.counters["evictions"] == 1  # the expired entry was purged, not evicted
        assert not list(tmp_path.glob(f"entries/*/{france[0]}.*"))  # files gone, not only rows
        assert not list(tmp_path.glob(f"bodies/*/{france[0]}.*"))  # its bodies with it
    finally:
        cache.close()


def test_a_round_indexes_lost_entries_and_removes_files_of_no_entry(tmp_path: Path) -> None:
    fill(tmp_path, [FRESH["revenue"], FRESH["countries"]], at=NOW)
    stored = keys(tmp_path)
    with sqlite3.connect(tmp_path / "index.sqlite") as index:  # lost, as after a crash
        index.execute("DELETE FROM tags")
        index.execute("DELETE FROM entries")
    [body] = tmp_path.glob(f"bodies/*/{stored['query:revenue_by_shipmode'][0]}.*.json")
    older = body.with_name(body.name.replace(body.name.split(".")[1], "0ldfetch"))
    older.write_bytes(body.read_bytes())  # a body of an earlier fetch
    stray = tmp_path / "bodies" / "zz" / f"{'z' * 40}.0ldfetch.json"
    stray.parent.mkdir()
    stray.write_bytes(b"of no entry")
    cache = ResultCache(tmp_path, 1 << 30, FORMATS["arrow"])
    try:
        maintain(cache, NOW)

        assert keys(tmp_path) == stored  # indexed again, with the same sizes
        assert body.exists()
        assert not older.exists()
        assert not stray.exists()
        assert cache.invalidate("reads:tpch_lineitem") == 1  # the tags came back too
    finally:
        cache.close()


@pytest.mark.anyio
async def test_a_failing_round_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds: list[int] = []
    second = anyio.Event()

    def round_() -> None:
        rounds.append(len(rounds) + 1)
        if len(rounds) == 1:
            raise OSError("No space left on device")
        anyio.from_thread.run_sync(second.set)

    with anyio.fail_after(30):  # a bound on a broken loop, not a pace
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(maintain_forever, round_, 0)
            await second.wait()
            tasks.cancel_scope.cancel()  # what shutdown does; the loop ends with it
    assert len(rounds) >= 2
    [failure] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "cache maintenance failed" in failure.getMessage()
    assert failure.exc_info is not None
    assert isinstance(failure.exc_info[1], OSError)


def test_a_round_removes_pins_past_their_end_and_only_those(tmp_path: Path) -> None:
    """Pins of paging cursors outlive their entries until their end, then go with upkeep."""
    fill(tmp_path, [FRESH["revenue"], FRESH["countries"]], at=NOW)
    cache = ResultCache(tmp_path, 1 << 30, FORMATS["arrow"])
    try:
        versions = {}
        for (key, _), until in zip(keys(tmp_path).values(), (NOW + 10, NOW + 100), strict=True):
            entry = cache.get(key)
            assert entry is not None
            versions[key] = entry.version, entry.header.rows
            cache.pin(entry, until)
        cache.clear()  # the entries are gone; their pins keep the rows

        maintain(cache, NOW + 50)

        ended, kept = versions
        assert cache.pinned(ended, versions[ended][0], NOW + 60) is None
        pinned = cache.pinned(kept, versions[kept][0], NOW + 60)
        assert pinned is not None
        assert pinned[1].num_rows == versions[kept][1] > 0
        assert len(list((tmp_path / "pins").iterdir())) == 2  # the kept pin and its marker
    finally:
        cache.close()
