"""Where quota counts live: ``MemoryStore`` (this process) or ``RedisStore`` (shared).

Two primitives cover every quota: a token bucket (rate limits) and window counters that
refuse once spent (budgets). Both take the time as an argument, so a settable clock drives
them in tests and every process of a deployment agrees on window boundaries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

_SWEEP_ABOVE = 100_000  # entries kept before the memory store drops the ones that say nothing


@dataclass(frozen=True)
class Spend:
    """Add ``amount`` to counter ``key`` unless it has reached ``limit`` (None: no limit).
    The counter lives until ``window_end``."""

    key: str
    amount: float
    limit: float | None
    window_end: float


class QuotaStore(ABC):
    @abstractmethod
    async def take(self, key: str, rate: float, burst: float, now: float) -> float:
        """Take one token from bucket ``key``, refilled at ``rate`` per second up to ``burst``.
        Return 0 when taken, else the seconds until a token is there (nothing taken)."""

    @abstractmethod
    async def spend(self, spends: Sequence[Spend], now: float) -> Spend | None:
        """All or nothing: add every amount, unless a counter has reached its limit; then
        add none and return (the first) such spend."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""


class MemoryStore(QuotaStore):
    """Counts in this process: each ``--workers`` process enforces the limits on its own.
    Every call runs without awaiting, so each is atomic on the event loop."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float, float]] = {}  # tokens, updated, full at
        self._counters: dict[str, tuple[float, float]] = {}  # used, window end

    async def take(self, key: str, rate: float, burst: float, now: float) -> float:
        tokens, updated, _ = self._buckets.get(key, (burst, now, now))
        tokens = min(burst, tokens + max(0.0, now - updated) * rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
        tokens -= 1 if wait == 0 else 0
        self._buckets[key] = (tokens, now, now + (burst - tokens) / rate)
        if len(self._buckets) > _SWEEP_ABOVE:  # a full bucket is the same as none
            self._buckets = {k: b for k, b in self._buckets.items() if b[2] > now}
        return wait

    async def spend(self, spends: Sequence[Spend], now: float) -> Spend | None:
        if len(self._counters) > _SWEEP_ABOVE:
            self._counters = {k: c for k, c in self._counters.items() if c[1] > now}
        for spend in spends:
            used = self._used(spend.key, now)
            if spend.limit is not None and used >= spend.limit:
                return spend
        for spend in spends:
            self._counters[spend.key] = (
                self._used(spend.key, now) + spend.amount,
                spend.window_end,
            )
        return None

    async def close(self) -> None:
        """Nothing to release: the counts go with the process."""

    def _used(self, key: str, now: float) -> float:
        used, window_end = self._counters.get(key, (0.0, now))
        return used if window_end > now else 0.0


def open_store(redis_url: str | None, timeout: float = 2.0) -> QuotaStore:
    """Redis when a URL is given (redis-py is imported only then), else this process.
    ``timeout``: seconds Redis has to answer before this process counts for itself."""
    if redis_url is None:
        return MemoryStore()
    from livedata.quota.redis_store import RedisStore

    return RedisStore(redis_url, timeout)
