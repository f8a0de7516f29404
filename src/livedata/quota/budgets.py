"""What a source query costs, checked and charged where the service asks the source.

A budget counts queries and source-seconds per fixed window (aligned to multiples of the
window since the epoch, so every process agrees), for everyone together and per caller. A
query is admitted while something is left in every counter; its real source time (also of a
query that fails, and of an estimate) is added when it ends. Queries admitted while the last
second was left may all run to their end, so a seconds budget can be overrun by up to the
source's running and queued queries times their statement timeout.
Before running, a source that can estimate is asked for the query's cost, and a query over
``max_estimated_cost`` is refused; the estimate has then already counted as one query.
Only requests that reach the source come here: hits and coalesced waiters cost nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from livedata.connectors.config import Budget, SourceBase
from livedata.connectors.sources import Sources
from livedata.connectors.stream import Caps, Charge, RowStream
from livedata.errors import BudgetExhausted, CostTooHigh
from livedata.quota.store import QuotaStore, Spend
from livedata.sql import Statement

EVERYONE = "*"  # the caller id of the global counters


@dataclass(frozen=True)
class Window:
    start: float
    end: float


class Costs:
    def __init__(
        self,
        configs: Mapping[str, SourceBase],
        sources: Sources,
        store: QuotaStore,
        clock: Callable[[], float],
    ) -> None:
        self.configs = configs
        self.sources = sources
        self.store = store
        self.clock = clock

    async def stream(
        self,
        source: str,
        statement: Statement,
        caps: Caps,
        caller_id: str,
        on_close: Charge | None = None,
    ) -> RowStream:
        """``Sources.stream``, once the budget and the estimate allow it; the source time
        is charged when the rows are closed, then told to ``on_close``."""
        config = self.configs[source]
        budget = config.budget
        spend_seconds: Charge | None = None
        if budget is not None:
            spends = self._spends(
                source, budget, caller_id, await self._admit(source, budget, caller_id)
            )
            counters = [s for s, (_, what) in spends.items() if what == "source_seconds"]

            async def spend_seconds(source_ms: float) -> None:
                seconds = [Spend(s.key, source_ms / 1000, None, s.window_end) for s in counters]
                await self.store.spend(seconds, self.clock())

        if config.max_estimated_cost is not None:
            started = time.perf_counter()
            try:
                await self._check_estimate(source, statement, config.max_estimated_cost)
            finally:
                if spend_seconds is not None:  # asking for an estimate takes source time too
                    await spend_seconds((time.perf_counter() - started) * 1000)

        async def charge(source_ms: float) -> None:
            if spend_seconds is not None:
                await spend_seconds(source_ms)
            if on_close is not None:
                await on_close(source_ms)

        return await self.sources.stream(source, statement, caps, charge)

    async def _admit(self, source: str, budget: Budget, caller_id: str) -> Window:
        """Count one query in each counter, or raise BudgetExhausted if one is spent."""
        now = self.clock()
        start = math.floor(now / budget.window) * budget.window
        window = Window(start, start + budget.window)
        spends = self._spends(source, budget, caller_id, window)
        refused = await self.store.spend(list(spends), now)
        if refused is not None:
            who, what = spends[refused]
            whose = "everyone's" if who == EVERYONE else f"{caller_id!r}'s"
            raise BudgetExhausted(
                f"Source {source!r}: {whose} budget of {refused.limit:g} {what.replace('_', '-')} "
                f"per {budget.window:g} s is spent; it renews in {window.end - now:.0f} s.",
                retry_after=window.end - now,
                source=source,
                budget=what,
                caller=None if who == EVERYONE else caller_id,
            )
        return window

    def _spends(
        self, source: str, budget: Budget, caller_id: str, window: Window
    ) -> dict[Spend, tuple[str, str]]:
        """Each limited counter (with whose and what it counts): one query for a query
        counter, nothing (only the check) for a seconds counter."""
        spends = {}
        for who, limits in ((EVERYONE, budget), (caller_id, budget.per_caller)):
            for what, limit, amount in (
                ("queries", limits.queries, 1.0),
                ("source_seconds", limits.source_seconds, 0.0),
            ):
                if limit is not None:
                    key = f"budget:{source}:{what}:{window.start:g}:{who}"
                    spends[Spend(key, amount, limit, window.end)] = (who, what)
        return spends

    async def _check_estimate(self, source: str, statement: Statement, limit: float) -> None:
        estimate = await self.sources.estimate(source, statement)
        if estimate is not None and estimate > limit:
            raise CostTooHigh(
                f"Source {source!r} estimates this query at {estimate:g}, over its limit of "
                f"{limit:g}; narrow it with filters or fewer columns.",
                source=source,
                estimate=estimate,
                limit=limit,
            )
