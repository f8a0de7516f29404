"""The cache on this host's disk, or the reason it is not there.

A cache directory that cannot be opened at start-up (a full disk refuses the index, a
read-only one refuses the folders) does not stop the server: it serves uncached, says so
once in the log and in ``/ready`` and ``/metrics``, and tries again at every upkeep round
until the disk recovers.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from livedata.cache.entries import ResultCache
from livedata.cache.formats.base import CacheFormat
from livedata.cache.upkeep import maintain

log = logging.getLogger("livedata.cache")


class LocalTier:
    def __init__(self, root: Path, max_bytes: int, cache_format: CacheFormat) -> None:
        self._open: Callable[[], ResultCache] = lambda: ResultCache(root, max_bytes, cache_format)
        self.root = root
        self.cache: ResultCache | None = None
        self.problem: str | None = None  # why there is no cache right now
        self.open()

    def open(self) -> ResultCache | None:
        """Open the cache unless it is open; None (and ``problem`` says why) when it cannot."""
        if self.cache is not None:
            return self.cache
        try:
            self.cache = self._open()
        except (OSError, sqlite3.Error) as exc:
            if self.problem is None:
                log.warning(
                    "cache directory %s cannot be used (%s); serving uncached until it can",
                    self.root,
                    exc,
                )
            self.problem = f"the cache directory cannot be used: {exc}"
            return None
        if self.problem is not None:
            log.warning("cache directory %s can be used again; caching resumes", self.root)
            self.problem = None
        return self.cache

    def upkeep(self, now: float) -> None:
        """One round of upkeep (``upkeep.maintain``), or another try at opening the cache."""
        cache = self.cache or self.open()
        if cache is not None:
            maintain(cache, now)

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
            self.cache = None
