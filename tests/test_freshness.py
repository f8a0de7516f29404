"""The freshness decision as a table: entry lifetimes, client directives, clock, policy."""

from __future__ import annotations

import pytest

from livedata.freshness import (
    CacheControl,
    Decision,
    Lifetimes,
    Policy,
    decide,
    may_serve_stale_on_error,
)

POLICY = Policy(ttl=60, stale_while_revalidate=30, stale_if_error=600)
ENTRY = Lifetimes(created=1000, fresh_until=1060)
INTERVAL = 10  # revalidate_interval
NO_CACHE = CacheControl(no_cache=True)
ONLY = CacheControl(only_if_cached=True)


@pytest.mark.parametrize(
    ("entry", "control", "now", "revalidated", "decision"),
    [
        pytest.param(None, CacheControl(), 1000, None, Decision.FETCH, id="no-entry"),
        pytest.param(None, ONLY, 1000, None, Decision.NOT_CACHED, id="no-entry-only-if-cached"),
        pytest.param(ENTRY, CacheControl(), 1059.9, None, Decision.HIT, id="fresh"),
        pytest.param(ENTRY, CacheControl(), 1060, None, Decision.STALE, id="just-expired-swr"),
        pytest.param(ENTRY, CacheControl(), 1089.9, None, Decision.STALE, id="end-of-swr"),
        pytest.param(ENTRY, CacheControl(), 1090, None, Decision.FETCH, id="past-swr"),
        pytest.param(ENTRY, ONLY, 1090, None, Decision.NOT_CACHED, id="expired-only-if-cached"),
        pytest.param(ENTRY, NO_CACHE, 1030, None, Decision.REVALIDATE, id="no-cache-fresh"),
        pytest.param(ENTRY, NO_CACHE, 1030, 1025, Decision.HIT, id="no-cache-throttled"),
        pytest.param(
            ENTRY, NO_CACHE, 1030, 1020, Decision.REVALIDATE, id="no-cache-after-throttle"
        ),
        pytest.param(ENTRY, NO_CACHE, 1070, None, Decision.FETCH, id="no-cache-skips-swr"),
        pytest.param(
            ENTRY, CacheControl(max_age=20), 1030, None, Decision.REVALIDATE, id="max-age-too-old"
        ),
        pytest.param(ENTRY, CacheControl(max_age=40), 1030, None, Decision.HIT, id="max-age-ok"),
        pytest.param(
            ENTRY, CacheControl(max_age=20), 1030, 1029, Decision.HIT, id="max-age-throttled"
        ),
        pytest.param(
            ENTRY, CacheControl(max_age=20), 1070, None, Decision.FETCH, id="max-age-skips-swr"
        ),
        pytest.param(
            ENTRY,
            CacheControl(no_cache=True, only_if_cached=True),
            1030,
            None,
            Decision.HIT,
            id="only-if-cached-wins-over-no-cache",
        ),
    ],
)
def test_decide(
    entry: Lifetimes | None,
    control: CacheControl,
    now: float,
    revalidated: float | None,
    decision: Decision,
) -> None:
    assert decide(entry, control, now, POLICY, revalidated, INTERVAL) is decision


@pytest.mark.parametrize(
    ("now", "allowed"),
    [
        pytest.param(1100, True, id="stale"),
        pytest.param(1659.9, True, id="last-moment"),
        pytest.param(1660, False, id="too-old"),
    ],
)
def test_stale_if_error_window(now: float, allowed: bool) -> None:
    assert may_serve_stale_on_error(ENTRY, now, POLICY) is allowed
