"""``GET /metrics``: what the cache and the sources did, in the Prometheus text format.

Nothing is counted here: a collector reads the service's tally and the cache's counters when
Prometheus scrapes, into a registry of the app's own (no global state, so two apps in one
process, as in the tests, never mix their numbers). Counters belong to the process that
answered: with ``livedata serve --workers N`` each worker counts its own requests and a scrape
reaches one of them. Entries and bytes come from the index every worker shares.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping

import anyio.to_thread
from fastapi import APIRouter, Request
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.responses import Response

from livedata.service import QueryService
from livedata.status import Status
from livedata.tally import Key, Measure

router = APIRouter()

_PER_PROCESS = (
    " Counted by the answering process since it started; each --workers process counts for itself."
)
# The service's measures other than result statuses, with their metric names and help.
SOURCE_TALLIES = {
    Measure.SOURCE_QUERIES: ("livedata_source_queries", "Queries sent to a source."),
    Measure.SOURCE_SECONDS: (
        "livedata_source_seconds",
        "Seconds sources worked on answered queries.",
    ),
    Measure.SAVED_SECONDS: (
        "livedata_source_seconds_saved",
        "Source seconds the cache saved: the source time of each result given from the cache "
        "(hit, stale, coalesced).",
    ),
}
_TARGET = ["source", "target"]  # target: "query:NAME" or "table:NAME"


def by_what(tally: Mapping[Key, float]) -> dict[Status | Measure, dict[tuple[str, str], float]]:
    """The service's tally as what -> (source, target) -> value."""
    grouped: defaultdict[Status | Measure, dict[tuple[str, str], float]] = defaultdict(dict)
    for (what, source, target), value in tally.items():
        grouped[what][(source, target)] = value
    return grouped


class ServiceCollector:
    """Reads one service's numbers at scrape time (called in a worker thread: the index is
    a SQLite file)."""

    def __init__(self, service: QueryService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        grouped = by_what(self.service.tally.snapshot())
        requests = _counter(
            "livedata_requests",
            "Results answered, by how the cache answered them (status: hit, stale, "
            "stale-if-error, miss, coalesced, bypass).",
            [*_TARGET, "status"],
        )
        stale = _counter("livedata_stale_served", "Stale results answered.", _TARGET)
        coalesced = _counter(
            "livedata_coalesced_waiters",
            "Requests that waited for another's source query instead of sending their own.",
            _TARGET,
        )
        for what, values in grouped.items():
            if isinstance(what, Measure):
                continue
            for (source, target), value in values.items():
                requests.add_metric([source, target, str(what)], value)
                if what in (Status.STALE, Status.STALE_IF_ERROR):
                    stale.add_metric([source, target], value)
                elif what is Status.COALESCED:
                    coalesced.add_metric([source, target], value)
        yield from (requests, stale, coalesced)
        for what, (name, documentation) in SOURCE_TALLIES.items():
            family = _counter(name, documentation, _TARGET)
            for labels, value in grouped.get(what, {}).items():
                family.add_metric(list(labels), value)
            yield family
        yield from self._cache()

    def _cache(self) -> Iterator[Metric]:
        tier = self.service.tier
        if tier is None:
            return
        yield GaugeMetricFamily(
            "livedata_cache_available",
            "1 when this process can use its cache directory; 0 while it serves uncached "
            "(a full or read-only disk; /ready says why).",
            int(tier.problem is None),
        )
        cache = tier.cache
        if cache is None:
            return
        counts = cache.counters
        for name, documentation in (
            ("evictions", "Entries removed to keep the cache under its size bound."),
            ("integrity_failures", "Damaged cache files found, removed and re-fetched."),
            ("write_failures", "Cache writes the disk refused; those results went uncached."),
            ("oversized", "Results larger than the whole cache; they went uncached."),
        ):
            family = _counter(f"livedata_cache_{name}", documentation)
            family.add_metric([], counts.get(name, 0))
            yield family
        shared = " Shared by every worker process."
        yield GaugeMetricFamily(
            "livedata_cache_bytes",
            "Bytes stored: entries and their encoded bodies." + shared,
            cache.index.total_bytes(),
        )
        yield GaugeMetricFamily(
            "livedata_cache_entries", "Entries stored." + shared, len(cache.index.all_keys())
        )
        yield GaugeMetricFamily(
            "livedata_cache_max_bytes", "The size bound of the cache.", cache.max_bytes
        )


def _counter(name: str, documentation: str, labels: list[str] | None = None) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation + _PER_PROCESS, labels=labels or [])


def registry_for(service: QueryService) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(ServiceCollector(service))
    return registry


@router.get(
    "/metrics",
    summary="Prometheus metrics: requests by cache status, source time saved, cache size",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(request: Request) -> Response:
    """Counters per target (`target="query:NAME"` or `"table:NAME"`) and source, in the
    format the scraper's Accept header asks for (Prometheus text by default)."""
    encode, media_type = choose_encoder(request.headers.get("accept", ""))
    body = await anyio.to_thread.run_sync(encode, request.app.state.metrics)
    return Response(body, headers={"Content-Type": media_type})
