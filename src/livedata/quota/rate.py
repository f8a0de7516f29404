"""Per-caller rate limits: a token bucket per caller id."""

from __future__ import annotations

from collections.abc import Callable

from livedata.errors import RateLimited
from livedata.quota.store import QuotaStore


class RateLimiter:
    """``rate`` requests per second per caller on average, ``burst`` at once; off at rate 0."""

    def __init__(
        self, store: QuotaStore, rate: float, burst: float, clock: Callable[[], float]
    ) -> None:
        self.store = store
        self.rate = rate
        self.burst = max(1.0, burst)
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    async def admit(self, caller_id: str) -> None:
        """Take one request from the caller's bucket, or raise RateLimited saying when to retry."""
        if not self.enabled:
            return
        wait = await self.store.take(f"rate:{caller_id}", self.rate, self.burst, self.clock())
        if wait > 0:
            raise RateLimited(
                f"Too many requests from {caller_id!r}: the limit is {self.rate:g} per second "
                f"(bursts of {self.burst:g}); retry after {wait:.1f} s.",
                retry_after=wait,
                caller=caller_id,
            )
