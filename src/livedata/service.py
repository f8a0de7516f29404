"""The query service: answers a request from the cache when it may, from the source when
it must, and never asks a source twice for what one query can answer.

It knows nothing of HTTP. Planning (checking names, converting values, keying) is in
``livedata.plan``; the files are in ``livedata.cache``; this module decides freshness:

- fresh entry -> hit; the client may ask to revalidate (``no-cache``, throttled per key) or
  bound the age (``max-age``);
- stale within ``stale_while_revalidate`` -> answered at once, one background refresh;
- missing or expired -> one coalesced fetch for every waiter, in this process and across
  processes on the host; if it fails and a stale entry is within ``stale_if_error``, that
  entry answers, marked stale;
- failures are remembered for ``cache_error_ttl`` (as error entries other processes see, and
  as a per-source back-off) so a failing source is not hammered.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter, defaultdict
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import anyio
import anyio.to_thread
import pyarrow as pa

from livedata.auth.caller import ANONYMOUS, Caller
from livedata.bounds import cap_bytes
from livedata.cache.flight import Flights, host_lock
from livedata.cache.formats.registry import cache_format
from livedata.cache.results import Entry, ResultCache
from livedata.catalog import Catalog
from livedata.connectors.sources import Sources, Streamed
from livedata.encoders.base import Encoder
from livedata.encoders.compression import compress
from livedata.encoders.json import describe_columns
from livedata.errors import (
    BudgetExhausted,
    LivedataError,
    NotCached,
    NotFound,
    QueryFailed,
    SourceBusy,
    SourceError,
    SourceUnavailable,
    StatementTimeout,
)
from livedata.params import jsonable
from livedata.plan import Freshness, Plan, Planner, QueryRequest
from livedata.quota.budgets import Costs
from livedata.quota.store import QuotaStore, open_store
from livedata.settings import Settings

_REMEMBERED_ERRORS = {c.code: c for c in (SourceUnavailable, StatementTimeout, QueryFailed)}
BLOCK_BYTES = 256 << 10  # an unstored body goes to the event loop in blocks of about this
_SAVED_SOURCE_TIME = {"hit", "stale", "coalesced"}  # answers that asked the source nothing


@dataclass(frozen=True)
class CacheControl:
    """What the client asked of the cache (HTTP ``Cache-Control``, or the CLI)."""

    no_cache: bool = False  # revalidate with the source (throttled per key)
    max_age: float | None = None  # accept no entry older than this
    only_if_cached: bool = False  # never ask the source


@dataclass(frozen=True)
class Result:
    """A result and where it came from. ``status`` is hit, stale, stale-if-error, miss,
    coalesced, unstored (the cache could not write it) or bypass (not cached by design).
    An unstored result's rows are still arriving from the source as it is sent, and its
    ``header`` is final only after the last one."""

    plan: Plan
    header: Mapping[str, Any]
    status: str
    entry: Entry | None = None
    fetched: Reading | None = None  # rows not stored (by design, or the disk refused)
    served_at: float = 0.0

    @property
    def rows(self) -> int:
        return int(self.header["rows"])

    @property
    def truncated(self) -> bool:
        return bool(self.header["truncated"])

    @property
    def age(self) -> float:
        return max(0.0, self.served_at - float(self.header["created"]))

    @property
    def fresh_for(self) -> float:
        """Seconds it stays fresh (negative when stale)."""
        return float(self.header["fresh_until"]) - self.served_at

    def meta(self) -> dict[str, Any]:
        """Metadata that depends only on the stored result, so encoded bodies can be reused."""
        target = self.plan.target
        return {
            "rows": self.rows,
            "truncated": self.truncated,
            "source": target.source,
            target.kind: target.name,
            "params": self.header["params"],
            "fetched_at": _iso(self.header["created"]),
            "fresh_until": _iso(self.header["fresh_until"]),
            "timings_ms": {"source": self.header["source_ms"]},
        }


class QueryService:
    def __init__(
        self,
        catalog: Catalog,
        sources: Sources,
        settings: Settings,
        cache: ResultCache | None,
        clock: Callable[[], float] = time.time,
        quota: QuotaStore | None = None,
    ) -> None:
        self.catalog = catalog
        self.clock = clock  # tests pass a settable clock to see expiry without sleeping
        self.counters: Counter[str] = Counter()
        # For /metrics, per target: (what, source, "kind:name") -> a count or seconds, where
        # what is a result status, "source_queries", "source_seconds" or "saved_seconds".
        # Each process counts for itself.
        self.tally: defaultdict[tuple[str, str, str], float] = defaultdict(float)
        self.sources = sources
        self.settings = settings
        self.cache = cache
        self.quota = open_store(None) if quota is None else quota  # rate limits use it too
        self.costs = Costs(catalog.sources, sources, self.quota, clock)
        self.planner = Planner(
            catalog,
            sources,
            Freshness(
                settings.cache_ttl,
                settings.cache_stale_while_revalidate,
                settings.cache_stale_if_error,
            ),
        )
        self._flights: Flights[Result] = Flights()
        self._lock_waiters = anyio.CapacityLimiter(1024)
        self._refreshes: set[asyncio.Task[Result]] = set()
        self._revalidated: dict[str, float] = {}
        self._failing_until: dict[str, float] = {}

    @classmethod
    def create(
        cls, catalog: Catalog, settings: Settings, clock: Callable[[], float] = time.time
    ) -> QueryService:
        cache = None
        if settings.cache_ttl > 0 or catalog_uses_cache(catalog):
            cache = ResultCache(
                settings.cache_dir, settings.cache_max_bytes, cache_format(settings.cache_format)
            )
        redis_url = None if settings.redis_url is None else settings.redis_url.get_secret_value()
        sources = Sources.from_configs(catalog.sources)
        return cls(catalog, sources, settings, cache, clock, open_store(redis_url))

    def close(self) -> None:
        self.sources.close()
        if self.cache is not None:
            self.cache.close()

    async def run(
        self,
        request: QueryRequest,
        control: CacheControl = CacheControl(),  # frozen
        caller: Caller = ANONYMOUS,
    ) -> Result:
        return self.count(await self._run(request, control, caller))

    def count(self, result: Result) -> Result:
        """Tally how a result was answered, and the source time a cached answer saved."""
        target = _target(result.plan)
        self.tally[(result.status, *target)] += 1
        if result.status in _SAVED_SOURCE_TIME:
            self.tally[("saved_seconds", *target)] += float(result.header["source_ms"]) / 1000
        return result

    async def _run(self, request: QueryRequest, control: CacheControl, caller: Caller) -> Result:
        self._authorize(request, caller)
        plan = await self.planner.plan(request, caller.restrictions)
        if self.cache is None or plan.freshness.ttl <= 0:
            return await self._fetch(plan, "bypass", caller, store=False)
        now = self.clock()
        entry = self.cache.get(plan.key)
        if entry is not None:
            result = self._answer_from(plan, entry, control, now, caller)
            if result is not None:
                return result
        if control.only_if_cached:
            raise NotCached("Not in the cache, and only-if-cached forbids asking the source.")
        try:
            return await self._coalesced(plan, None if entry is None else entry.created, caller)
        except (SourceError, BudgetExhausted):  # a budget spent is a source we may not ask
            if (
                entry is not None
                and now < entry.created + plan.freshness.ttl + plan.freshness.stale_if_error
            ):
                return self._result(plan, entry.header, "stale-if-error", entry)
            raise

    def _authorize(self, request: QueryRequest, caller: Caller) -> None:
        """Before the cache or the source is asked: a name outside the caller's allow-list is
        answered exactly as a name that does not exist, so it reveals nothing."""
        for kind, name, known in (
            ("table", request.table, self.catalog.tables),
            ("query", request.query, self.catalog.queries),
        ):
            if name is not None and not caller.allows(kind, name):
                raise NotFound.for_name(kind, name, caller.visible(kind, known))

    def _result(
        self,
        plan: Plan,
        header: Mapping[str, Any],
        status: str,
        entry: Entry | None = None,
        fetched: Reading | None = None,
    ) -> Result:
        return Result(plan, header, status, entry, fetched, served_at=self.clock())

    def _answer_from(
        self, plan: Plan, entry: Entry, control: CacheControl, now: float, caller: Caller
    ) -> Result | None:
        young_enough = control.max_age is None or entry.age(now) <= control.max_age
        if entry.fresh(now):
            wants_newer = control.no_cache or not young_enough
            if not wants_newer or not self._may_revalidate(plan.key, now):
                return self._result(plan, entry.header, "hit", entry)
            return None
        in_swr = now < float(entry.header["fresh_until"]) + plan.freshness.stale_while_revalidate
        if in_swr and young_enough and not control.no_cache:
            self._refresh_in_background(plan, entry.created, caller)
            return self._result(plan, entry.header, "stale", entry)
        return None

    def _may_revalidate(self, key: str, now: float) -> bool:
        if now - self._revalidated.get(key, 0.0) < self.settings.cache_revalidate_interval:
            return False
        self._revalidated[key] = now
        return True

    def _refresh_in_background(self, plan: Plan, replaces: float, caller: Caller) -> None:
        task = asyncio.ensure_future(self._coalesced(plan, replaces, caller))
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # failures are logged

    async def _coalesced(self, plan: Plan, replaces: float | None, caller: Caller) -> Result:
        """``replaces``: creation time of the entry being replaced; only a newer one will do.
        Only ``caller``, whose request asks the source, is charged; joiners cost nothing."""
        try:
            result, joined = await self._flights.join(
                plan.key, lambda: self._fetch_once(plan, replaces, caller)
            )
        except BudgetExhausted as exc:
            if exc.details["caller"] in (None, caller.id):
                raise
            # The flight's leader was refused on its own budget: ask again under ours.
            return await self._coalesced(plan, replaces, caller)
        return (
            self._result(plan, result.header, "coalesced", result.entry, result.fetched)
            if joined
            else result
        )

    async def _fetch_once(self, plan: Plan, replaces: float | None, caller: Caller) -> Result:
        """Fetch and store under the host-wide lock; another process may have done it."""
        assert self.cache is not None
        store = self.cache.store
        async with host_lock(self.cache.locks, plan.key, self._lock_waiters, store.write_failed):
            now = self.clock()
            entry = self.cache.get(plan.key)
            newer = entry is not None and (replaces is None or entry.created > replaces)
            if entry is not None and newer and entry.fresh(now):
                return self._result(plan, entry.header, "coalesced", entry)
            failure = self.cache.get_error(plan.key)
            if failure is not None and failure.fresh(now):
                raise _error_from(failure.header["error"])
            return await self._fetch(plan, "miss", caller, store=True)

    async def _fetch(self, plan: Plan, status: str, caller: Caller, *, store: bool) -> Result:
        reading = await self._read(plan, caller, store=store)
        if not store or self.cache is None:
            return self._result(plan, reading.header, status, fetched=reading)
        try:
            entry = await anyio.to_thread.run_sync(
                self.cache.put, plan.key, reading.schema, reading, reading.describe
            )
        except SourceError as exc:  # the source failed half-way through the rows
            self._remember_failure(plan, exc, store=True)
            raise
        finally:
            await reading.close()
        if entry is not None:
            return self._result(plan, entry.header, status, entry)
        # The disk refused, and the rows went with the failed write: ask again, serve them
        # without storing. Only a failing cache disk costs this second query.
        reading = await self._read(plan, caller, store=False)
        return self._result(plan, reading.header, "unstored", fetched=reading)

    async def _read(self, plan: Plan, caller: Caller, *, store: bool) -> Reading:
        """Start the plan's statement at its source, unless the source is backing off;
        ``caller`` pays for it (see ``livedata.quota.budgets``)."""
        source = plan.target.source
        if self.clock() < self._failing_until.get(source, 0.0):
            raise self.sources[source].unavailable("it failed moments ago; backing off")
        self.counters["source_queries"] += 1
        self.tally[("source_queries", *_target(plan))] += 1
        try:
            statement = self.planner.statement(plan)
            streamed = await self.costs.stream(source, statement, caller.id)
        except SourceError as exc:
            self._remember_failure(plan, exc, store=store)
            raise
        self._failing_until.pop(source, None)
        max_bytes = self.catalog.sources[source].max_bytes
        return Reading(plan, streamed, self._header, self.tally, max_bytes)

    def _remember_failure(self, plan: Plan, exc: LivedataError, *, store: bool) -> None:
        ttl = self.settings.cache_error_ttl
        if ttl <= 0 or isinstance(exc, SourceBusy):  # overload passes; it says nothing lasting
            return
        now = self.clock()
        if isinstance(exc, SourceUnavailable):  # the source is down: leave it alone a while
            self._failing_until[plan.target.source] = now + ttl
        if store and self.cache is not None:
            error = {"code": exc.code, "message": exc.message, "details": exc.details}
            self.cache.put_error(plan.key, error, {"created": now, "fresh_until": now + ttl})

    def _header(
        self, plan: Plan, schema: pa.Schema, rows: int, truncated: bool, source_ms: float
    ) -> dict[str, Any]:
        now = self.clock()
        fresh = plan.freshness
        return {
            "created": now,
            "fresh_until": now + fresh.ttl,
            "stale_until": now
            + fresh.ttl
            + max(fresh.stale_while_revalidate, fresh.stale_if_error),
            "source": plan.target.source,
            "kind": plan.target.kind,
            "name": plan.target.name,
            "params": {name: jsonable(value) for name, value in plan.params.items()},
            "rows": rows,
            "truncated": truncated,
            "columns": describe_columns(schema),
            "source_ms": round(source_ms, 3),
            "tags": list(plan.tags),
        }

    def count_hit(self, result: Result) -> None:
        """Count a hit that the web layer answered from memory, as ``run`` would have."""
        assert self.cache is not None
        assert result.entry is not None
        self.cache.index.hit(result.entry.key)
        self.count(replace(result, status="hit"))

    async def table(self, result: Result) -> pa.Table:
        """The whole result; an unstored one is read to its end."""
        if result.fetched is None:
            assert self.cache is not None
            assert result.entry is not None
            return self.cache.table(result.entry)
        try:
            return await anyio.to_thread.run_sync(result.fetched.read_all)
        finally:
            await result.fetched.close()

    def body(self, result: Result, encoder: Encoder, encoding: str | None) -> memoryview:
        """A stored result's encoded body (``encoding``: gzip, br or zstd), encoded once."""
        cache, entry = self.cache, result.entry
        assert cache is not None
        assert entry is not None
        plain = cache.body(
            entry, encoder.name, lambda: encoder.encode(cache.table(entry).to_reader(), result.meta)
        )
        if encoding is None:
            return plain
        return cache.body(entry, f"{encoder.name}.{encoding}", lambda: (compress(plain, encoding),))

    async def chunks(self, result: Result, encoder: Encoder) -> AsyncGenerator[bytes]:
        """An unstored result's body, encoded in a worker thread as its rows arrive from the
        source, which stays busy until the last chunk is taken or the iterator is closed."""
        assert result.fetched is not None
        chunks = encoder.encode(result.fetched, result.meta)
        try:
            while block := await anyio.to_thread.run_sync(_block, chunks, BLOCK_BYTES):
                yield block
        finally:
            await result.fetched.close()


def catalog_uses_cache(catalog: Catalog) -> bool:
    """True when any table, query or source sets its own positive TTL."""
    layers = [*catalog.sources.values(), *catalog.tables.values(), *catalog.queries.values()]
    return any((layer.ttl or 0) > 0 for layer in layers)


class Reading:
    """A plan's rows as they arrive from its source: capped at ``max_rows`` (the statement
    asks for one more, which marks the result truncated), counted, and described by a header
    that is final after the last batch."""

    def __init__(
        self,
        plan: Plan,
        streamed: Streamed,
        header: Callable[[Plan, pa.Schema, int, bool, float], dict[str, Any]],
        tally: defaultdict[tuple[str, str, str], float],
        max_bytes: int | None = None,
    ) -> None:
        self.plan = plan
        self.schema = streamed.schema
        self.max_bytes = max_bytes
        self.bytes = 0
        self.rows = 0
        self.truncated = False
        self._streamed = streamed
        self._header = header
        self._tally = tally
        self.header = self.describe()

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._streamed:
            if self.plan.capped and self.rows + batch.num_rows > self.plan.max_rows:
                self.truncated = True
                batch = batch.slice(0, self.plan.max_rows - self.rows)
            left = None if self.max_bytes is None else self.max_bytes - self.bytes
            batch, cut = cap_bytes(batch, left)
            self.rows += batch.num_rows
            self.bytes += batch.nbytes
            yield batch
            if cut:  # the rest would be cut too: stop reading (closing ends the statement)
                self.truncated = True
                break
        self._tally[("source_seconds", *_target(self.plan))] += self._streamed.source_ms / 1000
        self.header.update(self.describe())

    def describe(self) -> dict[str, Any]:
        return self._header(
            self.plan, self.schema, self.rows, self.truncated, self._streamed.source_ms
        )

    def read_all(self) -> pa.Table:
        return pa.Table.from_batches(list(self), self.schema)

    async def close(self) -> None:
        await self._streamed.aclose()


def _block(chunks: Iterator[bytes], size: int) -> bytes:
    """The next chunks joined up to ``size`` bytes (empty at the end): one thread hop sends a
    small result whole, and a big one in pieces worth a hop each."""
    taken, total = [], 0
    for chunk in chunks:
        taken.append(chunk)
        total += len(chunk)
        if total >= size:
            break
    return b"".join(taken)


def _target(plan: Plan) -> tuple[str, str]:
    """The labels a tally is kept under: the source, and "query:NAME" or "table:NAME"."""
    return plan.target.source, f"{plan.target.kind}:{plan.target.name}"


def _error_from(error: Mapping[str, Any]) -> LivedataError:
    cls = _REMEMBERED_ERRORS.get(error["code"], QueryFailed)
    return cls(error["message"], **error.get("details", {}))


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds")
