"""Whether a cached entry answers a request: a pure function of the entry's lifetimes, what
the client asked (``Cache-Control``), the clock and the policy. No I/O, so it is tested as a
table (``tests/test_freshness.py``).

- fresh entry -> hit; the client may ask to revalidate (``no-cache``) or bound the age
  (``max-age``), which asks the source at most once per ``revalidate_interval`` per entry
  (so one browser cannot switch the cache off for everyone);
- stale within ``stale_while_revalidate`` -> answered at once, marked stale, one refresh in
  the background;
- missing or expired -> fetch (one coalesced fetch for every waiter); ``only-if-cached``
  then refuses instead;
- a fetch that fails may still be answered by an entry within ``stale_if_error``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    """Lifetimes of one target's entries, in seconds."""

    ttl: float
    stale_while_revalidate: float
    stale_if_error: float


@dataclass(frozen=True)
class CacheControl:
    """What the client asked of the cache (HTTP ``Cache-Control``, or the CLI)."""

    no_cache: bool = False  # revalidate with the source (throttled per entry)
    max_age: float | None = None  # accept no entry older than this (throttled the same way)
    only_if_cached: bool = False  # never ask the source


NO_DIRECTIVES = CacheControl()


@dataclass(frozen=True)
class Lifetimes:
    """When an entry was fetched and until when it is fresh."""

    created: float
    fresh_until: float


class Decision(enum.Enum):
    HIT = "hit"  # answer with the entry
    STALE = "stale"  # answer with the entry, marked stale, and refresh it in the background
    REVALIDATE = "revalidate"  # fresh, but the client asked for newer and the throttle allows
    FETCH = "fetch"  # no usable entry: ask the source
    NOT_CACHED = "not-cached"  # no usable entry, and the client forbids asking the source


def decide(
    entry: Lifetimes | None,
    control: CacheControl,
    now: float,
    policy: Policy,
    last_revalidated: float | None,
    revalidate_interval: float,
) -> Decision:
    """``last_revalidated``: when a client last forced this entry to be fetched again."""
    if entry is not None:
        young_enough = control.max_age is None or now - entry.created <= control.max_age
        if now < entry.fresh_until:
            throttled = (
                last_revalidated is not None and now - last_revalidated < revalidate_interval
            )
            wants_newer = control.no_cache or not young_enough
            if wants_newer and not throttled and not control.only_if_cached:
                return Decision.REVALIDATE
            return Decision.HIT
        in_swr = now < entry.fresh_until + policy.stale_while_revalidate
        if in_swr and young_enough and not control.no_cache:
            return Decision.STALE
    return Decision.NOT_CACHED if control.only_if_cached else Decision.FETCH


def may_serve_stale_on_error(entry: Lifetimes, now: float, policy: Policy) -> bool:
    """A failed fetch may be answered by ``entry`` while it is within stale-if-error."""
    return now < entry.created + policy.ttl + policy.stale_if_error
