"""The query service: answers a request from the cache when it may, from the source when it
must, and never asks a source twice for what one query can answer.

It knows nothing of HTTP. Reading a request down the layers: ``_authorize`` (a name outside
the caller's grant is an unknown name), planning (``livedata.plan``, with the schema from
``livedata.schemas`` when the request names columns), the freshness decision
(``livedata.freshness``, pure), then a stored entry, one coalesced fill
(``livedata.filling``), or a live stream (``livedata.admission``). Results come back up as
values (``livedata.results``): a stored one may be shared, a live one has one owner.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import anyio.to_thread
import pyarrow as pa

from livedata import keyset
from livedata.admission import Admission
from livedata.auth.caller import ANONYMOUS, Caller
from livedata.bodies import live_body
from livedata.cache.entries import Entry, EntryHeader, ResultCache
from livedata.cache.formats.registry import cache_format
from livedata.cache.shared import SharedTier
from livedata.cache.tier import LocalTier
from livedata.catalog import Catalog
from livedata.cluster import EVERYTHING, Cluster
from livedata.connectors.sources import Sources
from livedata.cursors import Cursor, Signer, derive_secret
from livedata.encoders.base import Encoder
from livedata.errors import (
    BudgetExhausted,
    CursorExpired,
    CursorsNeedCache,
    CursorsNeedOrder,
    InvalidOption,
    NotCached,
    NotFound,
    SourceError,
)
from livedata.filling import Fills
from livedata.freshness import (
    NO_DIRECTIVES,
    CacheControl,
    Decision,
    Lifetimes,
    Policy,
    decide,
    may_serve_stale_on_error,
)
from livedata.paging import NOT_KEPT, Pager, Snapshot, resume, resumed
from livedata.plan import Plan, Planner, QueryRequest, Target
from livedata.quota.store import QuotaStore, open_store
from livedata.results import LiveResult, Result, StoredResult, header_for
from livedata.schemas import Schemas
from livedata.settings import Settings
from livedata.sharing import Sharing
from livedata.status import Status
from livedata.tally import Tally


@dataclass(frozen=True)
class Memo:
    """What the hit fast path keeps of a stored result to answer the same request again from
    memory: the entry's key and lifetimes, never the entry (an open file) itself."""

    key: str
    entry_path: str
    identity: tuple[int, int, int]  # inode, size, mtime_ns of the entry file when verified
    created: float
    fresh_until: float
    source: str
    target: str
    source_ms: float


class QueryService:
    def __init__(
        self,
        catalog: Catalog,
        sources: Sources,
        settings: Settings,
        tier: LocalTier | None,
        clock: Callable[[], float] = time.time,
        quota: QuotaStore | None = None,
        cluster: Cluster | None = None,
        shared: SharedTier | None = None,
    ) -> None:
        self.catalog = catalog
        self.clock = clock  # tests pass a settable clock to see expiry without sleeping
        self.sources = sources
        self.settings = settings
        self.tier = tier  # None when nothing is ever cached
        self.quota = open_store(None) if quota is None else quota  # rate limits use it too
        self.tally = Tally()
        defaults = Policy(
            settings.cache_ttl, settings.cache_stale_while_revalidate, settings.cache_stale_if_error
        )
        self.planner = Planner(catalog, defaults)
        self.admission = Admission(
            catalog.sources, sources, self.quota, clock, settings.cache_error_ttl, self.tally
        )
        self.schemas = Schemas(self.planner, self.admission)
        self.cluster = cluster or Cluster(None, settings.cache_shared_timeout, 1.0, clock)
        self.sharing = Sharing(self.cluster, shared, clock)
        self.fills = Fills(
            self.planner, self.admission, self.sharing, clock, settings.cache_error_ttl
        )
        self._revalidated: dict[str, float] = {}
        secret = settings.cursor_secret
        key = derive_secret(
            None if secret is None else secret.get_secret_value(),
            settings.auth_file,
            None if tier is None else settings.cache_dir,  # no cache, no cursors
        )
        self.pager = Pager(Signer(key), settings.cursor_ttl, clock)

    @classmethod
    def create(
        cls, catalog: Catalog, settings: Settings, clock: Callable[[], float] = time.time
    ) -> QueryService:
        tier = None
        if settings.cache_ttl > 0 or catalog_uses_cache(catalog):
            tier = LocalTier(
                settings.cache_dir, settings.cache_max_bytes, cache_format(settings.cache_format)
            )
        redis_url = None if settings.redis_url is None else settings.redis_url.get_secret_value()
        sources = Sources.from_configs(catalog.sources)
        timeout = settings.cache_shared_timeout
        cluster = Cluster(redis_url, timeout, settings.cluster_lease_seconds, clock)
        shared = None
        if settings.cache_shared_url is not None and tier is not None:
            shared = SharedTier(
                settings.cache_shared_url, timeout, cache_format(settings.cache_shared_format)
            )
        quota = open_store(redis_url, timeout)
        return cls(catalog, sources, settings, tier, clock, quota, cluster, shared)

    @property
    def cache(self) -> ResultCache | None:
        return None if self.tier is None else self.tier.cache

    def close(self) -> None:
        self.sources.close()
        if self.tier is not None:
            self.tier.close()

    async def run(
        self,
        request: QueryRequest,
        encoder: Encoder,
        control: CacheControl = NO_DIRECTIVES,
        caller: Caller = ANONYMOUS,
    ) -> Result:
        """The result of ``request``; a live one's body is encoded by ``encoder``."""
        self._authorize(request, caller)
        plan = await self._plan(request, caller)
        result = await self._answer(plan, encoder, control, caller)
        source_ms = result.header.source_ms if isinstance(result, StoredResult) else 0.0
        self.tally.answered(result.status, plan.target.source, plan.target.label, source_ms)
        return result

    async def page(
        self,
        request: QueryRequest,
        cursor: str | None,
        encoder: Encoder,
        control: CacheControl = NO_DIRECTIVES,
        caller: Caller = ANONYMOUS,
    ) -> LiveResult:
        """A page of ``request``'s result from a pinned snapshot (``livedata.paging``): the
        first one (``cursor`` None) pins it, each page's cursor leads to the next. Where
        nothing is cached, pages of the live source by keyset (``livedata.keyset``)."""
        self._authorize(request, caller)
        if request.limit is not None and request.limit < 1:
            raise InvalidOption('"limit" (the page size) must be 1 or more.')
        until = self.clock() + self.pager.ttl
        target = self.planner.resolve(request)
        if cursor is None and request.limit is None:
            raise InvalidOption('"paginate" needs a "limit": the number of rows per page.')
        opened = None if cursor is None else self.pager.open(cursor, request, target, caller)
        cache = self.cache
        if opened is None and (cache is None or not self.planner.cached(target)):
            return await self._keyset_page(request, target, None, encoder, caller, until)
        if opened is not None and opened.shape is not None:
            return await self._keyset_page(request, target, opened, encoder, caller, until)
        if cache is None:  # a snapshot's cursor, and this node keeps nothing now
            raise CursorExpired("The snapshot of this cursor is no longer kept; start again.")
        if opened is not None:
            pinned = await resume(opened, cache, self.sharing, until)
            plan, start, status = resumed(target, opened.key), opened.offset, Status.HIT
            limit = request.limit or opened.limit
        else:
            assert request.limit is not None, "checked above"
            plan = await self._plan(replace(request, limit=None, offset=0), caller)
            result = await self._answer(plan, None, control, caller)
            assert isinstance(result, StoredResult), "with no encoder, only a stored result"
            kept = await anyio.to_thread.run_sync(cache.pin, result.entry, until)
            if kept is None:
                raise CursorsNeedCache(NOT_KEPT)
            pinned = kept
            start, limit, status = request.offset, request.limit, result.status
        header, table = pinned
        snapshot = Snapshot(plan.key, header, table)
        page = self.pager.page(plan, snapshot, start, limit, status, encoder, caller, until)
        source_ms = 0.0 if cursor is not None else header.source_ms
        self.tally.answered(status, plan.target.source, plan.target.label, source_ms)
        return page

    async def _keyset_page(
        self,
        request: QueryRequest,
        target: Target,
        opened: Cursor | None,
        encoder: Encoder,
        caller: Caller,
        until: float,
    ) -> LiveResult:
        """The first page of ``request`` (``opened`` None) or the one after ``opened``'s,
        read from the source with one row more, to know whether another page follows."""
        if opened is None:
            asked, shape = request, keyset.shape(request)
        else:
            asked, shape = keyset.resumed(request, opened)
        limit = keyset.page_size(asked.limit, self.catalog.sources[target.source].max_rows)
        if not asked.order_by:
            raise CursorsNeedOrder(keyset.NEEDS_ORDER)
        # Never cut at max_rows: the page is at most max_rows, the row past it only a probe.
        fetched = replace(keyset.reading_order(asked), limit=limit + 1)
        plan = replace(await self._plan(fetched, caller), capped=False)
        keyset.check_order(plan.options.order_by, await self.schemas.of(plan.target, caller.id))
        statement = self.planner.statement(plan)
        rows, stream = await self.admission.fetch(plan.target, statement, plan.caps, caller.id)
        after = keyset.next_after(rows, plan.options.order_by, limit)
        page = rows.slice(0, limit)
        if asked.columns is not None:  # without the order columns it did not ask to see
            page = page.select(list(asked.columns))
        now = self.clock()
        header = header_for(plan, page.schema, "", now, page.num_rows, False, stream.source_ms)
        following = None if after is None else (shape, after)
        result = self.pager.keyset_page(plan, page, header, following, encoder, caller, until)
        self.tally.answered(Status.BYPASS, plan.target.source, plan.target.label, stream.source_ms)
        return result

    def _authorize(self, request: QueryRequest, caller: Caller) -> None:
        """Before the cache or the source is asked: a name outside the caller's allow-list is
        answered exactly as a name that does not exist, so it reveals nothing."""
        for kind, name, known in (
            ("table", request.table, self.catalog.tables),
            ("query", request.query, self.catalog.queries),
        ):
            if name is not None and not caller.allows(kind, name):
                raise NotFound.for_name(kind, name, caller.visible(kind, known))

    async def _plan(self, request: QueryRequest, caller: Caller) -> Plan:
        draft = self.planner.draft(request, caller.restrictions)
        schema = await self.schemas.of(draft.target, caller.id) if draft.needs_schema else None
        return self.planner.plan(draft, schema)

    async def _answer(
        self, plan: Plan, encoder: Encoder | None, control: CacheControl, caller: Caller
    ) -> Result:
        """``encoder``: the format of a live body; None when only a stored result will do."""
        cache = self.cache
        if cache is None or plan.freshness.ttl <= 0:
            return await self._live(plan, _needs(encoder), caller, Status.BYPASS)
        now = self.clock()
        entry = cache.get(plan.key)
        if entry is not None and not self._current(entry):
            entry = None  # invalidated: never served, not even stale
        lifetimes = None if entry is None else _lifetimes(entry.header)
        decision = decide(
            lifetimes,
            control,
            now,
            plan.freshness,
            self._revalidated.get(plan.key),
            self.settings.cache_revalidate_interval,
        )
        if entry is not None and decision is Decision.HIT:
            return self._stored(plan, entry, Status.HIT)
        if entry is not None and decision is Decision.STALE:
            if self.fills.running(plan.key) is None:  # one refresh, in the background
                self.fills.start(plan, cache, entry.created, caller, None)
            return self._stored(plan, entry, Status.STALE)
        if decision is Decision.NOT_CACHED:
            raise NotCached("Not in the cache, and only-if-cached forbids asking the source.")
        if decision is Decision.REVALIDATE:
            self._revalidated[plan.key] = now
            interval = self.settings.cache_revalidate_interval
            if entry is not None and not await self.cluster.claim_revalidation(plan.key, interval):
                return self._stored(plan, entry, Status.HIT)  # another node revalidated it
        try:
            return await self._fetch(plan, cache, entry, caller, encoder)
        except (SourceError, BudgetExhausted):  # a budget spent is a source we may not ask
            if lifetimes is not None and may_serve_stale_on_error(lifetimes, now, plan.freshness):
                assert entry is not None
                return self._stored(plan, entry, Status.STALE_IF_ERROR)
            raise

    async def _fetch(
        self,
        plan: Plan,
        cache: ResultCache,
        entry: Entry | None,
        caller: Caller,
        encoder: Encoder | None,
    ) -> Result:
        """Through the key's one fill: the first request leads it and gets the body as it is
        stored; the others get the committed entry. Only the leader's caller is charged."""
        fill = self.fills.running(plan.key)
        if fill is None:
            fill = self.fills.start(
                plan, cache, None if entry is None else entry.created, caller, encoder
            )
            tee = await asyncio.shield(fill.started)
            if tee is not None:

                async def stored() -> StoredResult | None:
                    committed = await asyncio.shield(fill.committed)
                    return None if committed is None else self._stored(plan, committed, Status.MISS)

                def header() -> EntryHeader:
                    assert fill.header is not None, "set before the first chunk"
                    return fill.header

                return LiveResult(plan, Status.MISS, tee.blocks(), header, stored)
            committed = await asyncio.shield(fill.committed)
            if committed is not None:  # another process or node had it: no fetch was needed
                return self._stored(plan, committed, fill.origin)
        try:
            committed = await asyncio.shield(fill.committed)
        except BudgetExhausted as exc:
            if exc.details["caller"] in (None, caller.id):
                raise
            # The fill's leader was refused on its own budget: ask again under ours.
            return await self._fetch(plan, cache, entry, caller, encoder)
        if committed is None:  # the cache could not store it: ask the source on our own
            return await self._live(plan, _needs(encoder), caller, Status.UNSTORED)
        return self._stored(plan, committed, Status.COALESCED)

    async def _live(
        self, plan: Plan, encoder: Encoder, caller: Caller, status: Status
    ) -> LiveResult:
        """Rows sent as they arrive, stored nowhere."""
        statement = self.planner.statement(plan)
        stream = await self.admission.open(plan.target, statement, plan.caps, caller.id)
        final: list[EntryHeader] = []

        def header() -> EntryHeader:
            if not final:  # asked for after the last row, so the counts are final
                final.append(
                    header_for(
                        plan,
                        stream.schema,
                        "",
                        self.clock(),
                        stream.rows,
                        stream.truncated,
                        stream.source_ms,
                    )
                )
            return final[0]

        return LiveResult(plan, status, live_body(stream, encoder, header), header)

    def _current(self, entry: Entry) -> bool:
        """Not invalidated since it was fetched, anywhere in the cluster."""
        header = entry.header
        return self.cluster.is_current(header.tags, header.generations, header.created)

    async def invalidate(self, tag: str | None) -> int:
        """Make every entry tagged ``tag`` (None: every entry) stale on every node; remove
        this host's copies. How many this host had."""
        cache = self.cache
        await self.cluster.invalidate(tag or EVERYTHING)
        if cache is None:
            return 0
        work = cache.clear if tag is None else (lambda: cache.invalidate(tag))
        return await anyio.to_thread.run_sync(work)

    def _stored(self, plan: Plan, entry: Entry, status: Status) -> StoredResult:
        return StoredResult(plan, entry, status, served_at=self.clock())

    def memo(self, result: StoredResult) -> Memo | None:
        """What the fast path may keep to answer the same request again, while it is fresh."""
        if not result.status.memoisable or result.fresh_for <= 0:
            return None
        stored, header = result.entry.stored, result.header
        return Memo(
            result.entry.key,
            str(stored.path),
            stored.identity,
            header.created,
            header.fresh_until,
            header.source,
            f"{header.kind}:{header.name}",
            header.source_ms,
        )

    def hit_counter(self, memo: Memo) -> Callable[[], None]:
        """Counts a hit that the fast path answers from memory, as ``run`` would have."""
        answered = self.tally.answerer(Status.HIT, memo.source, memo.target, memo.source_ms)

        def count() -> None:
            cache = self.cache
            if cache is not None:
                cache.index.hit(memo.key)
            answered()

        return count

    async def table(self, result: StoredResult) -> pa.Table:
        """A stored result's rows."""
        cache = self.cache
        assert cache is not None, "a stored result comes from the cache"
        return await anyio.to_thread.run_sync(cache.table, result.entry)


def catalog_uses_cache(catalog: Catalog) -> bool:
    """True when any table, query or source sets its own positive TTL."""
    layers = [*catalog.sources.values(), *catalog.tables.values(), *catalog.queries.values()]
    return any((layer.ttl or 0) > 0 for layer in layers)


def _needs(encoder: Encoder | None) -> Encoder:
    """The encoder of a result the cache could not keep; without one (a page), a snapshot
    could not be kept either."""
    if encoder is None:
        raise CursorsNeedCache(NOT_KEPT)
    return encoder


def _lifetimes(header: EntryHeader) -> Lifetimes:
    return Lifetimes(header.created, header.fresh_until)
