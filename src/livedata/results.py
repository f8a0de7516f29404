"""Results as the service hands them out: stored values, or live bodies with one owner.

A ``StoredResult`` is a committed cache entry: a value any number of requests may share. A
``LiveResult`` is a body still being encoded from rows arriving from the source (uncached by
design, or the cache could not store it, or the first request of a fetch being stored): it
belongs to exactly one response, which closes it. The service never hands one live result
to two requests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from livedata.cache.entries import Entry, EntryHeader
from livedata.encoders.json import describe_columns
from livedata.params import jsonable
from livedata.plan import Plan
from livedata.status import Status


def header_for(
    plan: Plan,
    schema: pa.Schema,
    version: str,
    now: float,
    rows: int = 0,
    truncated: bool = False,
    source_ms: float = 0.0,
    generations: Mapping[str, int] | None = None,
) -> EntryHeader:
    """What is known of a fetch of ``plan`` at ``now``; final once its last row is read.
    ``generations``: the invalidation counters of its tags when the fetch began."""
    fresh = plan.freshness
    return EntryHeader(
        version=version,
        created=now,
        fresh_until=now + fresh.ttl,
        stale_until=now + fresh.ttl + max(fresh.stale_while_revalidate, fresh.stale_if_error),
        source=plan.target.source,
        kind=plan.target.kind,
        name=plan.target.name,
        params={name: jsonable(value) for name, value in plan.params.items()},
        rows=rows,
        truncated=truncated,
        columns=tuple(describe_columns(schema)),
        source_ms=round(source_ms, 3),
        tags=plan.tags,
        format="",
        generations=dict(generations or {}),
    )


def meta(header: EntryHeader) -> dict[str, Any]:
    """The JSON ``meta`` of a result: it depends only on the header, so a body encoded once
    from an entry serves every hit on it."""
    return {
        "rows": header.rows,
        "truncated": header.truncated,
        "source": header.source,
        header.kind: header.name,
        "params": dict(header.params),
        "fetched_at": _iso(header.created),
        "fresh_until": _iso(header.fresh_until),
        "timings_ms": {"source": header.source_ms},
    }


@dataclass(frozen=True)
class StoredResult:
    plan: Plan
    entry: Entry
    status: Status
    served_at: float

    @property
    def header(self) -> EntryHeader:
        return self.entry.header

    @property
    def age(self) -> float:
        return self.entry.age(self.served_at)

    @property
    def fresh_for(self) -> float:
        """Seconds it stays fresh (negative when stale)."""
        return self.header.fresh_until - self.served_at


@dataclass(frozen=True)
class PageInfo:
    """What a page says of the pages after it: the cursor of the next one (None at the end);
    for a page of a snapshot, the row count of the whole snapshot and its validator, since
    such a page never changes (only its cursor's expiry does: a weak one). A keyset page
    (nothing cached) has neither: it is read from the live source."""

    next: str | None
    total: int | None = None
    etag: str | None = None

    @property
    def paging(self) -> str:
        """How the pages stay consistent, as meta and X-Paging say it."""
        return "keyset" if self.etag is None else "snapshot"


@dataclass(frozen=True)
class LiveResult:
    """A body on its way from the source to one client, in the format it asked for. Close
    ``body`` (``aclose``) to free the source, whether or not every chunk was taken."""

    plan: Plan
    status: Status  # miss (stored as it is sent), unstored, or bypass
    body: AsyncGenerator[bytes]
    header: Callable[[], EntryHeader]  # final once the last chunk is taken
    # For a miss: the entry, once committed (None if the disk refused after all).
    stored: Callable[[], Awaitable[StoredResult | None]] | None = None
    page: PageInfo | None = None  # a page of a pinned snapshot (livedata.paging)


Result = StoredResult | LiveResult


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds")
