"""The result cache: what is stored for a key, whether it is still fresh, and eviction.

An entry holds a result's Arrow data in the configured cache format, with a header carrying
its metadata (created, fresh and stale deadlines, source, query, parameters, rows, schema,
source time, tags). Response bodies encoded from an entry are stored beside it, named by the
entry's digest and the variant (``json``, ``json.gz``...), so a hit never re-encodes rows
and one entry answers every response format. A failed fetch may be stored as a short-lived
error entry, so that waiters in other processes get that error instead of asking again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from livedata.cache.formats.base import CacheFormat
from livedata.cache.index import Index
from livedata.cache.store import Store, Stored

log = logging.getLogger("livedata.cache")


@dataclass(frozen=True)
class Entry:
    key: str
    stored: Stored

    @property
    def header(self) -> dict[str, Any]:
        return self.stored.header

    @property
    def digest(self) -> str:
        return self.stored.digest

    @property
    def version(self) -> str:
        """Names this entry's bodies: the same rows fetched again carry new metadata."""
        return body_id(self.key, self.header)

    @property
    def created(self) -> float:
        return float(self.header["created"])

    def age(self, now: float) -> float:
        return max(0.0, now - self.created)

    def fresh(self, now: float) -> bool:
        return now < float(self.header["fresh_until"])


def body_id(key: str, header: dict[str, Any]) -> str:
    """Bodies embed their entry's metadata: the same rows under another key, or fetched again,
    need bodies of their own."""
    return f"{key}-{header['digest'][:16]}-{round(float(header['created']) * 1e6):x}"


class ResultCache:
    def __init__(self, root: Path, max_bytes: int, cache_format: CacheFormat) -> None:
        self.store = Store(root)
        self.index = Index(root / "index.sqlite")
        self.locks = root / "locks"
        self.locks.mkdir(exist_ok=True)
        self.max_bytes = max_bytes
        self.format = cache_format
        self.store.remove_leftovers()

    @property
    def counters(self) -> dict[str, int]:
        return dict(self.store.counters)

    def get(self, key: str) -> Entry | None:
        stored = self.store.read(self.store.entry_path(key))
        if stored is None:
            return None
        if stored.header.get("format") not in (self.format.name, None):
            return None  # written under another cache format setting: a miss
        self.index.hit(key)
        return Entry(key, stored)

    def put(
        self,
        key: str,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch],
        header: Callable[[], dict[str, Any]],
    ) -> Entry | None:
        """Store a result as its batches arrive; ``header`` is asked for again after the last
        one (see ``Store.write_stream``). None when the disk refused."""
        stored = self.store.write_stream(
            self.store.entry_path(key),
            lambda sink: self.format.dump(schema, batches, sink),
            lambda: {**header(), "format": self.format.name},
        )
        if stored is None:
            return None
        try:
            self.index.record(key, stored.header["length"], stored.header, stored.header["tags"])
        except Exception:  # the entry is committed; the index is advisory (see index.py)
            log.exception("cache index update failed for %s", key)
        return Entry(key, stored)

    def get_error(self, key: str) -> Entry | None:
        """A failure remembered for ``key``, kept apart so the stale result survives it."""
        stored = self.store.read(self.store.entry_path(key, "error"))
        return None if stored is None else Entry(key, stored)

    def put_error(self, key: str, error: dict[str, Any], header: dict[str, Any]) -> None:
        self.store.write(self.store.entry_path(key, "error"), b"", {**header, "error": error})

    def header(self, key: str) -> dict[str, Any] | None:
        return self.store.read_header(self.store.entry_path(key))

    def table(self, entry: Entry) -> pa.Table:
        return self.format.loads(entry.stored.payload)

    def body(
        self, entry: Entry, variant: str, produce: Callable[[], Iterable[bytes]]
    ) -> memoryview:
        """The response body ``variant`` of ``entry``, encoded and stored on first use. It is
        written to disk as it is encoded; only if the disk refuses is it kept in memory."""
        path = self.store.body_path(entry.version, variant)
        stored = self.store.read(path)
        if stored is not None:
            return stored.payload
        stored = self.store.write_stream(
            path,
            lambda sink: sink.write_all(produce()),
            lambda: {"entry": entry.key, "variant": variant},
        )
        if stored is None:
            return memoryview(b"".join(produce()))
        self.index.add_bytes(entry.key, len(stored.payload))
        return stored.payload

    def remove(self, keys: Iterable[str]) -> int:
        """Remove entries and their bodies; return how many there were."""
        keys = list(keys)
        for key in keys:
            path = self.store.entry_path(key)
            header = self.store.read_header(path)
            if header is not None:
                version = body_id(key, header)
                for body in self.store.root.glob(f"bodies/{version[:2]}/{version}.*"):
                    self.store.remove(body)
            self.store.remove(path)
            self.store.remove(self.store.entry_path(key, "error"))
        self.index.forget(keys)
        return len(keys)

    def invalidate(self, tag: str) -> int:
        return self.remove(self.index.keys_tagged(tag))

    def clear(self) -> int:
        return self.remove(self.index.all_keys())

    def purge_expired(self, now: float | None = None) -> int:
        """Remove entries past their last stale deadline; run in the background."""
        return self.remove(self.index.expired(time.time() if now is None else now))

    def evict(self) -> int:
        """Remove least recently used entries until the total is under the size bound."""
        self.index.flush_hits()
        total, victims = self.index.total_bytes(), []
        for key, size in self.index.least_recently_used():
            if total <= self.max_bytes:
                break
            victims.append(key)
            total -= size
        if victims:
            self.store.counters["evictions"] += len(victims)
        return self.remove(victims)

    def close(self) -> None:
        self.index.close()
