"""``GET /metrics`` as Prometheus scrapes it, from a real server."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from livedata.catalog import load_catalog
from livedata.settings import BUNDLED_CATALOG
from tests.cache.traffic import Clock
from tests.cli_server import CliServer
from tests.scrape import Scrape

REGION = {"query": "countries_by_region", "params": {"region": "Europe"}}
COUNTRIES = {"table": "world_country_list", "limit": 5}
DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana-dashboard.json"
TARGET = {"source": "sample", "target": "query:countries_by_region"}


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


def test_latencies_errors_and_bytes_are_measured(serve: Callable[..., str]) -> None:
    url = serve()
    regions = [ask(url, REGION) for _ in range(3)]  # a miss, a hit, a hit from the fast path
    csv = ask(url, {**COUNTRIES, "format": "csv"})
    assert httpx.post(f"{url}/query", json={"table": "nowhere"}).status_code == 404
    assert httpx.put(f"{url}/query").status_code == 405
    scrape = Scrape(url)
    requests = "livedata_http_request_duration_seconds"
    assert scrape(f"{requests}_count", method="POST", path="/query", status="200") == 4
    assert scrape(f"{requests}_count", method="POST", path="/query", status="404") == 1
    assert scrape(f"{requests}_count", method="PUT", path="/query", status="405") == 1
    buckets = {
        dict(labels).get("le") for name, labels in scrape.samples if name.endswith("_bucket")
    }
    assert {"0.001", "60.0", "+Inf"} <= buckets
    assert scrape("livedata_http_errors_total", code="not_found", status="404") == 1
    assert scrape("livedata_http_errors_total", code="method_not_allowed", status="405") == 1
    sent_json = sum(r.num_bytes_downloaded for r in regions)
    assert scrape("livedata_response_bytes_total", format="json") == sent_json
    assert scrape("livedata_response_bytes_total", format="csv") == csv.num_bytes_downloaded
    source = "livedata_source_duration_seconds"
    assert scrape(f"{source}_count", source="sample") == 2  # the two misses
    source_seconds = sum(
        v for (n, _), v in scrape.samples.items() if n == "livedata_source_seconds_total"
    )
    assert scrape(f"{source}_sum", source="sample") == pytest.approx(source_seconds)
    encode = "livedata_encode_duration_seconds"
    # The miss only: the fast path answers both repeats with the body it kept.
    assert scrape(f"{encode}_count", format="json") == 1
    assert scrape(f"{encode}_count", format="csv") == 1


def test_workers_add_up_their_numbers(cli_server: Callable[..., CliServer], tmp_path: Path) -> None:
    """``--workers 2``: whichever worker a scrape reaches reports every worker's requests."""
    folder = tmp_path / "metrics"
    server = cli_server(tmp_path / "cache", workers=2, PROMETHEUS_MULTIPROC_DIR=str(folder))
    sent = 0
    while len({p.stem for p in folder.glob("histogram_*.db")}) < 2:
        assert sent < 200, "the kernel gave every connection to one worker"
        ask(server.url, REGION)  # a new connection each time: either worker may accept it
        sent += 1
    for _ in range(4):
        scrape = Scrape(server.url)  # new connections too
        answered = scrape(
            "livedata_http_request_duration_seconds_count",
            method="POST",
            path="/query",
            status="200",
        )
        assert answered == sent
        statuses = [
            v for (n, labels), v in scrape.samples.items() if n == "livedata_requests_total"
        ]
        assert sum(statuses) == sent
        assert scrape("livedata_requests_total", status="miss", **TARGET) == 1
    server.stop()
    assert list(folder.glob("*.db"))  # a folder it was given is left to its owner


def test_the_dashboard_names_only_metrics_we_expose(serve: Callable[..., str]) -> None:
    url = serve()
    ask(url, REGION)
    ask(url, REGION)
    assert httpx.post(f"{url}/query", json={"table": "nowhere"}).status_code == 404
    samples = Scrape(url).samples
    dashboard = orjson.loads(DASHBOARD.read_bytes())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"\blivedata_[a-z_]+", target["expr"]):
                labels = {k for n, pairs in samples if n == name for k, _ in pairs}
                assert labels or (name, frozenset()) in samples, (panel["title"], name)
                grouped = re.findall(r"by \(([^)]*)\)", target["expr"])
                wanted = {g.strip() for group in grouped for g in group.split(",")} - {"le"}
                assert wanted <= labels | {"le"}, (panel["title"], name, wanted - labels)


def test_serve_removes_the_metrics_folder_it_made(
    cli_server: Callable[..., CliServer], tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    server = cli_server(tmp_path / "cache", workers=2, TMPDIR=str(scratch))
    ask(server.url, REGION)
    [made] = scratch.glob("livedata-metrics-*")
    assert list(made.glob("*.db"))
    server.stop()
    assert not made.exists()
