"""Pages that stay consistent: a result's snapshot, pinned in the cache, read page by page
(where nothing is cached, ``livedata.keyset`` pages the live source instead).

The first page (``paginate``) is a slice of the request's whole result (up to the source's
``max_rows``), fetched and stored as an ordinary cache entry, then pinned
(``livedata.cache.pins``). Its cursor names that entry's version, so every later page is
cut from the same rows, whatever the source, a refresh, eviction or invalidation do
meanwhile. A page is a slice of the mapped Arrow table: it costs the page, not the result.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import anyio.to_thread
import pyarrow as pa

from livedata import sql
from livedata.auth.caller import Caller
from livedata.bodies import next_block
from livedata.cache.entries import EntryHeader, ResultCache
from livedata.cursors import Cursor, Signer, restrictions_digest
from livedata.encoders.base import Encoder
from livedata.errors import CursorExpired, InvalidCursor, InvalidOption
from livedata.freshness import Policy
from livedata.plan import Plan, QueryRequest, Target
from livedata.results import LiveResult, PageInfo, meta
from livedata.sharing import Sharing
from livedata.status import Status

NOT_KEPT = (
    "The cache could not keep a snapshot of this result (full or failing disk); "
    'page with "limit" and "offset" instead.'
)


@dataclass(frozen=True)
class Snapshot:
    """A pinned fetch: its cache key, the header of its entry and its rows."""

    key: str
    header: EntryHeader
    table: pa.Table


class Pager:
    """Issues cursors for pages of snapshots and checks the ones sent back."""

    def __init__(self, signer: Signer, ttl: float, clock: Callable[[], float]) -> None:
        """``ttl``: how long a cursor (and the pin of its snapshot) lasts past its page."""
        self.signer = signer
        self.ttl = ttl
        self.clock = clock

    def open(self, token: str, request: QueryRequest, target: Target, caller: Caller) -> Cursor:
        """The cursor ``token`` stands for, if it pages ``target`` for ``caller`` as its
        restrictions are now. Shaping options are the cursor's: naming them again is refused,
        so that a changed filter never silently pages the old rows."""
        shaped = [
            name
            for name, given in (
                ("params", request.params),
                ("columns", request.columns is not None),
                ("filters", request.filters),
                ("order_by", request.order_by),
                ("offset", request.offset),
            )
            if given
        ]
        if shaped:
            raise InvalidOption(
                f"A cursor carries the shape of its request; send only table or query, "
                f"cursor, and optionally limit and format (not {', '.join(shaped)})."
            )
        cursor = self.signer.open(token, self.clock())
        if cursor.target != target.label:
            raise InvalidCursor(f"This cursor pages {cursor.target}, not {target.label}.")
        if cursor.caller != caller.id or cursor.restrictions != restrictions_digest(
            caller.restrictions
        ):
            raise InvalidCursor("This cursor was issued to another caller; start again.")
        return cursor

    def page(
        self,
        plan: Plan,
        snapshot: Snapshot,
        start: int,
        limit: int,
        status: Status,
        encoder: Encoder,
        caller: Caller,
        until: float,
    ) -> LiveResult:
        """Rows ``start`` to ``start + limit`` of ``snapshot``, pinned until ``until``,
        when the next page's cursor expires."""
        total = snapshot.table.num_rows
        rows = snapshot.table.slice(start, limit)
        following = start + rows.num_rows
        token = None
        if following < total:
            version = snapshot.header.version
            token = self.signer.sign(
                Cursor(snapshot.key, version, following, limit, *_bound(plan, caller, until))
            )
        tag = f"{snapshot.key}.{snapshot.header.version}.{start}.{limit}.{encoder.name}"
        header = replace(snapshot.header, rows=rows.num_rows)
        return _page(plan, status, rows, header, PageInfo(token, total, f'"{tag}"'), encoder)

    def keyset_page(
        self,
        plan: Plan,
        rows: pa.Table,
        header: EntryHeader,
        following: tuple[dict[str, Any], list[Any]] | None,
        encoder: Encoder,
        caller: Caller,
        until: float,
    ) -> LiveResult:
        """``rows`` just read from the source (nothing cached: ``livedata.keyset``);
        ``following``: the request's shape and where the next page starts, if one does."""
        token = None
        if following is not None:
            shape, after = following
            limit = rows.num_rows
            token = self.signer.sign(
                Cursor("", "", 0, limit, *_bound(plan, caller, until), shape, after)
            )
        return _page(plan, Status.BYPASS, rows, header, PageInfo(token), encoder)


async def resume(
    cursor: Cursor, cache: ResultCache, sharing: Sharing, until: float
) -> tuple[EntryHeader, pa.Table]:
    """The snapshot ``cursor`` pages, kept until ``until``: pinned on this node, still its
    entry here, or that fetch from the shared tier (the cursor came from another node)."""
    pinned = await anyio.to_thread.run_sync(cache.pinned, cursor.key, cursor.version, until)
    if pinned is None:
        scratch = cache.store.scratch(cursor.key)
        local = None
        try:
            local = await sharing.fetch(cache, cursor.key, scratch)
            if local is not None:
                pinned = await anyio.to_thread.run_sync(
                    cache.adopt_pin, cursor.key, cursor.version, local, until
                )
        finally:
            scratch.unlink(missing_ok=True)
            if local is not None:
                local.unlink(missing_ok=True)
    if pinned is None:
        raise CursorExpired("The snapshot of this cursor is no longer kept; start again.")
    return pinned


def resumed(target: Target, key: str) -> Plan:
    """The plan of a page read from a pinned snapshot: nothing is asked of the source, so
    only what it reads (the target) and where (the key) matter."""
    return Plan(target, {}, sql.Options(), 0, False, None, key, Policy(0, 0, 0), ())


def _bound(plan: Plan, caller: Caller, until: float) -> tuple[str, str | None, str, float]:
    """What binds a cursor: its target, its caller and the caller's restrictions, its expiry."""
    return plan.target.label, caller.id, restrictions_digest(caller.restrictions), until


def _page(
    plan: Plan,
    status: Status,
    rows: pa.Table,
    header: EntryHeader,
    info: PageInfo,
    encoder: Encoder,
) -> LiveResult:
    def page_meta() -> dict[str, Any]:
        return {**meta(header), "total": info.total, "next": info.next, "paging": info.paging}

    chunks = encoder.encode(rows.to_reader(), page_meta)
    return LiveResult(plan, status, _body(chunks), lambda: header, page=info)


async def _body(chunks: Iterator[bytes]) -> AsyncGenerator[bytes]:
    """The page encoded in worker threads (never on the event loop), in blocks."""
    while block := await anyio.to_thread.run_sync(next_block, chunks):
        yield block
