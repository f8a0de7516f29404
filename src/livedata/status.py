"""How a result was obtained, and what that means for headers, costs and the fast path."""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    """How a result was obtained."""

    HIT = "hit"
    SHARED = "shared"  # another node's entry, from the shared tier
    STALE = "stale"  # stale within stale-while-revalidate; a refresh runs
    STALE_IF_ERROR = "stale-if-error"  # stale, because the source failed
    MISS = "miss"  # fetched for this request, and stored
    COALESCED = "coalesced"  # fetched for another request at the same time
    UNSTORED = "unstored"  # fetched, but the cache could not store it
    BYPASS = "bypass"  # not cached by design (ttl 0)

    @property
    def cache_status(self) -> str:
        """The RFC 9211 ``Cache-Status`` value."""
        return _CACHE_STATUS[self]

    @property
    def asked_source(self) -> bool:
        """This request's own statement ran at the source (and costs it)."""
        return self in (Status.MISS, Status.UNSTORED, Status.BYPASS)

    @property
    def saved_source_time(self) -> bool:
        """The cache answered instead of the source."""
        return self in (Status.HIT, Status.SHARED, Status.STALE, Status.COALESCED)

    @property
    def memoisable(self) -> bool:
        """The same request may be answered from memory while the entry stays fresh."""
        return self in (Status.HIT, Status.SHARED, Status.MISS, Status.COALESCED)


_CACHE_STATUS = {
    Status.HIT: "livedata; hit",
    Status.SHARED: "livedata; hit; detail=shared",
    Status.STALE: "livedata; hit; detail=stale-while-revalidate",
    Status.STALE_IF_ERROR: "livedata; hit; detail=stale-if-error",
    Status.MISS: "livedata; fwd=miss; stored",
    Status.COALESCED: "livedata; fwd=miss; collapsed",
    Status.UNSTORED: "livedata; fwd=miss; detail=not-stored",
    Status.BYPASS: "livedata; fwd=bypass",
}
