"""``GET /metrics`` as Prometheus scrapes it, from a real server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from livedata.catalog import load_catalog
from livedata.settings import BUNDLED_CATALOG
from tests.cache.traffic import Clock

REGION = {"query": "countries_by_region", "params": {"region": "Europe"}}
COUNTRIES = {"table": "world_country_list", "limit": 5}
TARGET = {"source": "sample", "target": "query:countries_by_region"}


class Scrape:
    """One scrape, parsed by the Prometheus client's own parser."""

    def __init__(self, url: str) -> None:
        response = httpx.get(f"{url}/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        self.samples = {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples
        }

    def __call__(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)


def ask(url: str, body: dict[str, Any]) -> httpx.Response:
    response = httpx.post(f"{url}/query", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response


def test_a_miss_then_a_hit_are_counted_for_their_target(serve: Callable[..., str]) -> None:
    url = serve()
    miss = ask(url, REGION)
    ask(url, REGION)
    ask(url, COUNTRIES)
    scrape = Scrape(url)
    assert scrape("livedata_requests_total", status="miss", **TARGET) == 1
    assert scrape("livedata_requests_total", status="hit", **TARGET) == 1
    assert scrape("livedata_source_queries_total", **TARGET) == 1
    source_seconds = miss.json()["meta"]["timings_ms"]["source"] / 1000
    assert scrape("livedata_source_seconds_total", **TARGET) == pytest.approx(source_seconds, 1e-3)
    assert scrape("livedata_source_seconds_saved_total", **TARGET) == pytest.approx(source_seconds)
    countries = {"source": "sample", "target": "table:world_country_list"}
    assert scrape("livedata_requests_total", status="miss", **countries) == 1
    assert scrape("livedata_requests_total", status="hit", **countries) == 0
    stats = httpx.get(f"{url}/cache/stats").json()
    assert scrape("livedata_cache_entries") == stats["entries"] == 2
    assert scrape("livedata_cache_bytes") == stats["bytes"]
    assert scrape("livedata_cache_max_bytes") == 1 << 30


def test_stale_answers_are_counted(serve: Callable[..., str]) -> None:
    catalog = load_catalog(BUNDLED_CATALOG)
    queries = dict(catalog.queries)
    queries["countries_by_region"] = queries["countries_by_region"].model_copy(
        update={"ttl": 60.0, "stale_while_revalidate": 30.0}
    )
    clock = Clock()
    url = serve(catalog.model_copy(update={"queries": queries}), clock)
    ask(url, REGION)
    clock.now += 61
    assert "stale-while-revalidate" in ask(url, REGION).headers["cache-status"]
    scrape = Scrape(url)
    assert scrape("livedata_requests_total", status="stale", **TARGET) == 1
    assert scrape("livedata_stale_served_total", **TARGET) == 1


def test_a_damaged_entry_file_counts_as_an_integrity_failure(
    serve: Callable[..., str], tmp_path: Path
) -> None:
    url = serve(cache_dir=tmp_path)
    first = ask(url, REGION)
    [entry_file] = (tmp_path / "entries").glob("*/*.entry")
    with entry_file.open("r+b") as file:  # flip the last byte of the stored data
        file.seek(-1, 2)
        last = file.read(1)
        file.seek(-1, 2)
        file.write(bytes([last[0] ^ 0xFF]))
    again = ask(url, REGION)
    assert again.headers["cache-status"] == "livedata; fwd=miss; stored"
    assert again.json()["rows"] == first.json()["rows"]
    scrape = Scrape(url)
    assert scrape("livedata_cache_integrity_failures_total") == 1
    assert scrape("livedata_requests_total", status="miss", **TARGET) == 2
    assert scrape("livedata_source_queries_total", **TARGET) == 2
