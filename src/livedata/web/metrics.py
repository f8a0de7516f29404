"""``GET /metrics``: what the server, the cache and the sources did, for Prometheus.

Counters and histograms are prometheus_client instruments, fed as things happen: the
service's tally tells them of each answer and source query, ``web/observed.py`` times every
request and counts its errors and bytes, ``web/responses.py`` times each body it gets from
the cache. The counters a request adds to on every answer (its status, the source time it
saved, its bytes) add up in a dictionary first and reach their counters at each scrape
(``Counts``).
Alone, an app counts into a registry of its own (no global state, so two apps in one process,
as in the tests, never mix their numbers). Under ``livedata serve --workers N`` the serve
command points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before the workers start; each
worker then writes its numbers there and a scrape of any worker sums them all
(prometheus_client's multiprocess mode). Entries and bytes come from the index every worker
shares, read at scrape time.
"""

from __future__ import annotations

import functools
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.responses import Response
from starlette.types import Scope

from livedata.encoders.registry import ENCODERS
from livedata.service import QueryService
from livedata.status import Status
from livedata.tally import Key, Measure

router = APIRouter()

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own switch
# Seconds. A hit answers in about a millisecond, a fetch in tens to thousands of them; the
# slowest buckets reach the statement timeouts people set.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
SOURCE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
ENCODE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_TARGET = ["source", "target"]  # target: "query:NAME" or "table:NAME"
_FORMATS = {e.media_type: e.name for e in ENCODERS.values()}
# The cache's own event counters (ResultCache.counters), with their help.
CACHE_EVENTS = {
    "evictions": "Entries removed to keep the cache under its size bound.",
    "integrity_failures": "Damaged cache files found, removed and re-fetched.",
    "write_failures": "Cache writes the disk refused; those results went uncached.",
    "oversized": "Results larger than the whole cache; they went uncached.",
}


def by_what(tally: Mapping[Key, float]) -> dict[Status | Measure, dict[tuple[str, str], float]]:
    """The service's tally as what -> (source, target) -> value."""
    grouped: defaultdict[Status | Measure, dict[tuple[str, str], float]] = defaultdict(dict)
    for (what, source, target), value in tally.items():
        grouped[what][(source, target)] = value
    return grouped


class Counts:
    """Counter increments summed in a dictionary until ``flush`` adds each sum to its counter
    (a scrape flushes first). A counter's ``inc`` takes 0.9 us (two checks and a lock), a
    dictionary's += 0.2 us (python -m timeit), and a hit makes three. Under ``--workers``
    (``eager``) each increment goes to its counter at once: a scrape may reach another worker,
    which reads this one's numbers from the files only this one writes. Only the event loop's
    thread adds and flushes: no lock."""

    def __init__(self, eager: bool) -> None:
        self._sums: defaultdict[Callable[[float], None], float] = defaultdict(float)
        self.eager = eager

    def add(self, inc: Callable[[float], None], amount: float) -> None:
        if self.eager:
            inc(amount)
        else:
            self._sums[inc] += amount

    def flush(self) -> None:
        sums, self._sums = self._sums, defaultdict(float)
        for inc, amount in sums.items():
            inc(amount)


class Metrics:
    """The app's instruments, and the registry a scrape reads."""

    def __init__(self, service: QueryService, paths: frozenset[str]) -> None:
        self.service = service
        self.paths = paths  # a request elsewhere is counted as path "other": labels stay few
        multiprocess = bool(os.environ.get(MULTIPROCESS_DIR))
        self.registry = CollectorRegistry()
        self.counts = Counts(eager=multiprocess)
        # In multiprocess mode the instruments write to files that MultiProcessCollector
        # reads; registered as well, each would be counted twice.
        own = None if multiprocess else self.registry
        if multiprocess:
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]  # untyped upstream
        self.registry.register(CacheCollector(service))
        self.requests = Counter(
            "livedata_requests",
            "Results answered, by how the cache answered them (status: hit, stale, "
            "stale-if-error, miss, coalesced, bypass, unstored).",
            [*_TARGET, "status"],
            registry=own,
        )
        self.stale = Counter(
            "livedata_stale_served", "Stale results answered.", _TARGET, registry=own
        )
        self.coalesced = Counter(
            "livedata_coalesced_waiters",
            "Requests that waited for another's source query instead of sending their own.",
            _TARGET,
            registry=own,
        )
        self.source_queries = Counter(
            "livedata_source_queries", "Queries sent to a source.", _TARGET, registry=own
        )
        self.source_seconds = Counter(
            "livedata_source_seconds",
            "Seconds sources worked on answered queries.",
            _TARGET,
            registry=own,
        )
        self.saved_seconds = Counter(
            "livedata_source_seconds_saved",
            "Source seconds the cache saved: the source time of each result given from the "
            "cache (hit, stale, coalesced).",
            _TARGET,
            registry=own,
        )
        self.source_duration = Histogram(
            "livedata_source_duration_seconds",
            "Seconds each source query took, from sending it to its last row.",
            ["source"],
            buckets=SOURCE_BUCKETS,
            registry=own,
        )
        self.request_duration = Histogram(
            "livedata_http_request_duration_seconds",
            "Seconds from a request's arrival to its last byte sent.",
            ["method", "path", "status"],
            buckets=REQUEST_BUCKETS,
            registry=own,
        )
        self.errors = Counter(
            "livedata_http_errors",
            "Error responses by their code (the JSON error shape's error.code) and status.",
            ["code", "status"],
            registry=own,
        )
        self.response_bytes = Counter(
            "livedata_response_bytes",
            "Bytes of /query results sent, by format (as sent: compressed when it was).",
            ["format"],
            registry=own,
        )
        self.encode_duration = Histogram(
            "livedata_encode_duration_seconds",
            "Seconds to get a cached result's body in the format and coding asked for: "
            "encoded (and compressed) on the first request of each, read back after.",
            ["format"],
            buckets=ENCODE_BUCKETS,
            registry=own,
        )
        self.audit_queue_full = Counter(
            "livedata_audit_queue_full",
            "Requests that waited for room in the audit log's queue (its destination could "
            "not keep up); no line is ever dropped.",
            registry=own,
        )
        self.audit_lines_lost = Counter(
            "livedata_audit_lines_lost",
            "Audit lines the destination refused (a full disk, a closed pipe); /ready says "
            "why while it refuses.",
            registry=own,
        )
        self.cache_events = {
            name: Counter(f"livedata_cache_{name}", help, registry=own)
            for name, help in CACHE_EVENTS.items()
        }
        self._cache_seen: dict[str, int] = {}
        # prometheus_client checks the label values on every labels() call; a hit pays for
        # several, so each child is looked up once (a few hundred at most: bounded labels).
        self._child = functools.lru_cache(maxsize=4096)(_labelled)
        self._by_measure = {
            Measure.SOURCE_QUERIES: self.source_queries,
            Measure.SOURCE_SECONDS: self.source_seconds,
            Measure.SAVED_SECONDS: self.saved_seconds,
        }
        # Each tally key's counters (and histogram), found once: a hit adds to the tally twice,
        # and looking them up each time (an lru_cache call, str(status)) took it ~3% more
        # instructions (bench/hit_instructions.py: 237k, now 229-235k).
        self._feeds: dict[Key, tuple[Callable[[float], None], ...]] = {}
        service.tally.listeners.append(self.tallied)

    def tallied(self, key: Key, amount: float) -> None:
        """One addition to the service's tally, as it happens."""
        feeds = self._feeds.get(key)
        if feeds is None:
            feeds = self._feeds[key] = self._feeds_of(key)
        for feed in feeds:
            feed(amount)

    def _feeds_of(self, key: Key) -> tuple[Callable[[float], None], ...]:
        """What an addition to ``key`` goes to: its counters (through ``counts``), and the
        histogram that sees each source query's seconds."""
        what, source, target = key
        if isinstance(what, Measure):
            counter = self._counted(self._child(self._by_measure[what], source, target).inc)
            if what is Measure.SOURCE_SECONDS:
                return counter, self._child(self.source_duration, source).observe
            return (counter,)
        counter = self._counted(self._child(self.requests, source, target, str(what)).inc)
        if what in (Status.STALE, Status.STALE_IF_ERROR):
            return counter, self._counted(self._child(self.stale, source, target).inc)
        if what is Status.COALESCED:
            return counter, self._counted(self._child(self.coalesced, source, target).inc)
        return (counter,)

    def _counted(self, inc: Callable[[float], None]) -> Callable[[float], None]:
        return functools.partial(self.counts.add, inc)

    def encoded(self, format_name: str, seconds: float) -> None:
        self._child(self.encode_duration, format_name).observe(seconds)

    def answered(
        self,
        scope: Scope,
        status: int,
        headers: list[tuple[bytes, bytes]],
        sent: int,
        seconds: float,
    ) -> None:
        """One request done: its duration, its error code if any, its result bytes."""
        path = scope["path"] if scope["path"] in self.paths else "other"
        method = scope["method"] if scope["method"] in _METHODS else "other"
        self._child(self.request_duration, method, path, str(status)).observe(seconds)
        code = scope["state"].get("audit", {}).get("error")
        if code is not None or status >= 400:
            self._child(self.errors, code or "http_error", str(status)).inc()
        if path == "/query" and status == 200:
            self.counts.add(self._child(self.response_bytes, _format_of(headers)).inc, sent)
        self.count_cache_events()

    def hit_counter(
        self, headers: Iterable[tuple[bytes, bytes]]
    ) -> Callable[[str, int, float], None]:
        """``answered`` for a 200 to POST or GET /query with ``headers`` (method, bytes sent,
        seconds), its instruments found once: the hot lane counts each of its hits through
        one. Cache events are not counted: a hit from memory has none to count."""
        sent = self._child(self.response_bytes, _format_of(headers)).inc
        took = {
            method: self._child(self.request_duration, method, "/query", "200").observe
            for method in ("GET", "POST")
        }

        add = self.counts.add

        def answered(method: str, size: int, seconds: float) -> None:
            took[method](seconds)
            add(sent, size)

        return answered

    def count_cache_events(self) -> None:
        """Add what the cache counted since the last call (it keeps plain per-process
        counts; called after each request and at each scrape)."""
        cache = None if self.service.tier is None else self.service.tier.cache
        if cache is None:
            return
        counts = cache.counters
        if counts == self._cache_seen:
            return
        for name, counter in self.cache_events.items():
            new = counts.get(name, 0) - self._cache_seen.get(name, 0)
            if new:
                counter.inc(new)
        self._cache_seen = dict(counts)


def _format_of(headers: Iterable[tuple[bytes, bytes]]) -> str:
    media_type = next((v for k, v in headers if k == b"content-type"), b"")
    return _FORMATS.get(media_type.decode("latin-1").split(";")[0], "other")


def _labelled(metric: MetricWrapperBase, *values: str) -> Any:
    return metric.labels(*values)


class CacheCollector:
    """The cache's size and state, read at scrape time (in a worker thread: the index is a
    SQLite file); the same for every worker, since they share the directory."""

    def __init__(self, service: QueryService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        tier = self.service.tier
        if tier is None:
            return
        yield GaugeMetricFamily(
            "livedata_cache_available",
            "1 when the answering process can use its cache directory; 0 while it serves "
            "uncached (a full or read-only disk; /ready says why).",
            int(tier.problem is None),
        )
        cache = tier.cache
        if cache is None:
            return
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


@router.get(
    "/metrics",
    summary="Prometheus metrics: requests, latencies, errors, bytes, the cache",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text format (OpenMetrics when the scraper asks).",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(request: Request) -> Response:
    """Counters and histograms per target (`target="query:NAME"` or `"table:NAME"`), source,
    format and error code, in the format the scraper's Accept header asks for."""
    measured: Metrics = request.app.state.metrics
    measured.count_cache_events()
    measured.counts.flush()
    encode, media_type = choose_encoder(request.headers.get("accept", ""))
    body = await anyio.to_thread.run_sync(encode, measured.registry)
    return Response(body, headers={"Content-Type": media_type})
