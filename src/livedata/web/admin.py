"""Managing the result cache: list, count, invalidate, purge. ``livedata cache invalidate``
checks names with the same function, without a server.

Invalidation works on the tags every entry is stored with: ``query:NAME``, ``source:NAME`` and
``reads:TABLE`` for each table its SQL reads, so one call after an ETL run removes every
result that read the reloaded table, whichever query produced it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from livedata.cache.entries import ResultCache
from livedata.plan import invalidation_tag
from livedata.service import QueryService
from livedata.tally import Measure
from livedata.web.metrics import by_what
from livedata.web.models import (
    CacheCounters,
    CacheEntry,
    CacheListing,
    CacheStats,
    ErrorBody,
    InvalidateBody,
    Removed,
)

# Open to whoever reaches the server for now; an admin scope will guard it (a later issue).
# FastAPI's JSONResponse: with it, the OpenAPI document shows each answer's model.
router = APIRouter(prefix="/cache", tags=["cache"], default_response_class=JSONResponse)

_TIMES = ("created", "fresh_until", "stale_until", "last_access")
_ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}, 422: {"model": ErrorBody}}


def entries(cache: ResultCache) -> list[CacheEntry]:
    """Every indexed entry, most recently used first."""
    return [
        CacheEntry.model_validate(
            {**row, **{t: dt.datetime.fromtimestamp(row[t], dt.UTC) for t in _TIMES}}
        )
        for row in cache.index.listing()
    ]


def stats(service: QueryService) -> CacheStats:
    cache = service.cache
    store = {} if cache is None else cache.counters
    grouped = by_what(service.tally.snapshot())
    total = {str(what): sum(values.values()) for what, values in grouped.items()}
    return CacheStats(
        entries=0 if cache is None else len(cache.index.all_keys()),
        bytes=0 if cache is None else cache.index.total_bytes() + cache.overhead,
        max_bytes=service.settings.cache_max_bytes,
        counters=CacheCounters(
            requests={w: int(n) for w, n in total.items() if w not in set(Measure)},
            source_queries=int(total.get("source_queries", 0)),
            source_seconds=total.get("source_seconds", 0.0),
            source_seconds_saved=total.get("saved_seconds", 0.0),
            evictions=store.get("evictions", 0),
            integrity_failures=store.get("integrity_failures", 0),
            write_failures=store.get("write_failures", 0),
        ),
    )


@router.get("", summary="Entries of the result cache")
async def list_entries(request: Request) -> CacheListing:
    """Every stored result: target, parameters, size, lifetimes, hits and tags."""
    cache: ResultCache | None = request.app.state.service.cache
    found = [] if cache is None else await anyio.to_thread.run_sync(entries, cache)
    return CacheListing(entries=found)


@router.get("/stats", summary="Size of the result cache and what it saved")
async def cache_stats(request: Request) -> CacheStats:
    """Entries and bytes on disk (shared by every worker), and this process's counters."""
    return await anyio.to_thread.run_sync(stats, request.app.state.service)


@router.post("/invalidate", summary="Remove entries by table, query or source", responses=_ERRORS)
async def invalidate(request: Request, body: InvalidateBody) -> Removed:
    """Remove every entry that read a table (`{"table": "orders"}`, e.g. after an ETL run),
    of a named query (`{"query": ...}`), of a source (`{"source": ...}`), or every entry
    (`{"all": true}`). Answers how many were removed."""
    service: QueryService = request.app.state.service
    selector = body.selector()
    tag = None if selector is None else invalidation_tag(service.catalog, *selector)
    return Removed(removed=await service.invalidate(tag))


@router.post("/purge", summary="Remove expired entries")
async def purge(request: Request) -> Removed:
    """Remove the entries past their last stale deadline now, rather than at the next
    background round (every LIVEDATA_CACHE_MAINTENANCE_INTERVAL seconds)."""
    service: QueryService = request.app.state.service
    cache = service.cache
    if cache is None:
        return Removed(removed=0)
    return Removed(removed=await anyio.to_thread.run_sync(cache.purge_expired, service.clock()))
