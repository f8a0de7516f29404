"""What this process answered and what its sources did, counted for ``/metrics`` and
``/cache/stats``. Each process counts for itself."""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Callable
from typing import NamedTuple

from livedata.status import Status


class Measure(enum.StrEnum):
    """Counted per target besides the answers by status."""

    SOURCE_QUERIES = "source_queries"  # statements sent to the source
    SOURCE_SECONDS = "source_seconds"  # seconds the source worked on them
    SAVED_SECONDS = "saved_seconds"  # source seconds of results the cache gave instead


class Key(NamedTuple):
    what: Status | Measure
    source: str
    target: str  # "query:NAME" or "table:NAME"


class Tally:
    def __init__(self) -> None:
        self.counts: defaultdict[Key, float] = defaultdict(float)
        # Told of every addition as it happens (the web layer's Prometheus metrics, which
        # also need each source query's own duration, not only the running sum).
        self.listeners: list[Callable[[Key, float], None]] = []

    def add(self, what: Status | Measure, source: str, target: str, amount: float = 1.0) -> None:
        self._add(Key(what, source, target), amount)

    def _add(self, key: Key, amount: float) -> None:
        self.counts[key] += amount
        for listener in self.listeners:
            listener(key, amount)

    def answered(self, status: Status, source: str, target: str, source_ms: float) -> None:
        """One result answered; ``source_ms``: what its fetch cost the source."""
        self.answerer(status, source, target, source_ms)()

    def answerer(
        self, status: Status, source: str, target: str, source_ms: float
    ) -> Callable[[], None]:
        """``answered`` for answers all alike, its keys made once: the hot lane counts each
        hit from memory through one (making the keys took half of a hit's counting)."""
        adds = [(Key(status, source, target), 1.0)]
        if status.saved_source_time:
            adds.append((Key(Measure.SAVED_SECONDS, source, target), source_ms / 1000))

        def answered() -> None:
            for key, amount in adds:
                self._add(key, amount)

        return answered

    def snapshot(self) -> dict[Key, float]:
        """A copy, safe to read while requests go on."""
        return dict(self.counts)
