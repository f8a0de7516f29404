"""The real `livedata cache ...` commands on a cache the real service filled."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from livedata.cache.entries import ResultCache
from livedata.cache.formats.registry import FORMATS
from livedata.plan import QueryRequest
from tests.cache.test_maintenance import fill
from tests.test_cli import run

REVENUE = QueryRequest(query="revenue_by_shipmode")  # reads tpch_lineitem
REGION = QueryRequest(query="countries_by_region", params={"region": "Europe"})
LINEITEM = QueryRequest(table="tpch_lineitem", limit=5)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIVEDATA_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")  # one line per entry in `cache ls`
    return tmp_path


def targets(cache_dir: Path) -> set[str]:
    cache = ResultCache(cache_dir, 1 << 30, FORMATS["arrow"])
    try:
        return {f"{e['kind']}:{e['name']}" for e in cache.index.listing()}
    finally:
        cache.close()


def test_ls_and_stats(cache_dir: Path) -> None:
    fill(cache_dir, [REVENUE, REGION], at=time.time())
    listed = run("cache", "ls")
    assert listed.returncode == 0, listed.stderr
    assert 'query:countries_by_region {"region":"Europe","min_population":0}' in listed.stdout
    assert "query:revenue_by_shipmode" in listed.stdout
    assert "2 entries" in listed.stderr
    stats = run("cache", "stats")
    assert stats.returncode == 0, stats.stderr
    assert "entries: 2\n" in stats.stdout
    assert "expired: 0" in stats.stdout


def test_invalidate_by_table_removes_the_queries_that_read_it(cache_dir: Path) -> None:
    # The other selectors share this code path; tests/cache/test_admin.py covers each one.
    fill(cache_dir, [REVENUE, LINEITEM, REGION], at=time.time())
    done = run("cache", "invalidate", "--table", "tpch_lineitem")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "removed 2 entries (reads:tpch_lineitem)\n"
    assert targets(cache_dir) == {"query:countries_by_region"}


@pytest.mark.parametrize(
    ("option", "message"),
    [
        pytest.param(
            ["--query", "revenue_by_shipmod"], "Did you mean 'revenue_by_shipmode'?", id="unknown"
        ),
        pytest.param([], "give exactly one of --table, --query or --source", id="none"),
    ],
)
def test_invalidate_refuses_what_it_cannot_mean(
    cache_dir: Path, option: list[str], message: str
) -> None:
    fill(cache_dir, [REGION], at=time.time())
    done = run("cache", "invalidate", *option)
    assert done.returncode == 2
    assert message in done.stderr
    assert targets(cache_dir) == {"query:countries_by_region"}


def test_purge_removes_expired_entries_and_clear_every_entry(cache_dir: Path) -> None:
    fill(cache_dir, [REVENUE], at=time.time() - 2 * 3600)  # past ttl and stale-if-error
    fill(cache_dir, [REGION], at=time.time())
    purged = run("cache", "purge")
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout == "removed 1 entry (expired)\n"
    assert targets(cache_dir) == {"query:countries_by_region"}
    cleared = run("cache", "clear")
    assert cleared.stdout == "removed 1 entry\n"
    assert targets(cache_dir) == set()
