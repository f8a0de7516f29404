"""The result cache: entries, the response bodies encoded from them, and what removes both.

An entry holds one fetch of a result: its rows in the configured cache format and a typed
header (lifetimes, target, parameters, counts, columns, source time, tags). Response bodies
(``json``, ``json.gz``, ``csv``...) are encoded from it at most once and kept beside it, so
a hit never re-encodes rows and one entry answers every format. Layout::

    entries/ab/<key>.entry                  the rows, in a checked container (store.py)
    entries/ab/<key>.error                  a failure remembered for a few seconds
    bodies/ab/<key>.<version>.<variant>     a body encoded from that fetch of the entry
    index.sqlite, locks/, tmp/

An entry owns its bodies: each fetch gets a new ``version``, and committing it removes the
bodies of the versions before; removing an entry (eviction, invalidation, purge) removes
them all. Every byte is counted against the size bound: entries and bodies in the index,
the rest (index, locks, files in flight, leftovers) measured by upkeep (``upkeep.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from livedata.cache.formats.base import BatchWriter, CacheFormat
from livedata.cache.index import Index
from livedata.cache.store import Store, Stored, Writer

log = logging.getLogger("livedata.cache")


@dataclass(frozen=True)
class EntryHeader:
    """What an entry says of its result, beside the rows."""

    version: str  # names the bodies of this fetch: the same key fetched again gets a new one
    created: float
    fresh_until: float
    stale_until: float
    source: str
    kind: str  # "table" or "query"
    name: str
    params: Mapping[str, Any]
    rows: int
    truncated: bool
    columns: tuple[Mapping[str, str], ...]
    source_ms: float
    tags: tuple[str, ...]
    format: str
    # The cluster's invalidation counters of its tags when the fetch began (livedata.cluster).
    generations: Mapping[str, int]

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> EntryHeader | None:
        """The header of a file this version of livedata wrote; None for any other."""
        try:
            return cls(
                version=str(raw["version"]),
                created=float(raw["created"]),
                fresh_until=float(raw["fresh_until"]),
                stale_until=float(raw["stale_until"]),
                source=str(raw["source"]),
                kind=str(raw["kind"]),
                name=str(raw["name"]),
                params=dict(raw["params"]),
                rows=int(raw["rows"]),
                truncated=bool(raw["truncated"]),
                columns=tuple(raw["columns"]),
                source_ms=float(raw["source_ms"]),
                tags=tuple(raw["tags"]),
                format=str(raw["format"]),
                generations={str(t): int(n) for t, n in raw["generations"].items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "params": dict(self.params),
            "columns": list(self.columns),
            "tags": list(self.tags),
            "generations": dict(self.generations),
        }


@dataclass(frozen=True)
class Entry:
    key: str
    header: EntryHeader
    stored: Stored

    @property
    def version(self) -> str:
        return self.header.version

    @property
    def created(self) -> float:
        return self.header.created

    def age(self, now: float) -> float:
        return max(0.0, now - self.created)

    def fresh(self, now: float) -> bool:
        return now < self.header.fresh_until


class ResultCache:
    """Opening it may raise OSError or ``sqlite3.Error`` (a full or read-only disk)."""

    def __init__(self, root: Path, max_bytes: int, cache_format: CacheFormat) -> None:
        self.store = Store(root)
        self.locks = root / "locks"
        self.locks.mkdir(exist_ok=True)
        self.index = Index(root / "index.sqlite")
        self.max_bytes = max_bytes
        self.format = cache_format
        self.overhead = 0  # bytes no entry accounts for, as upkeep last measured them
        self.store.remove_leftovers()

    @property
    def counters(self) -> dict[str, int]:
        return dict(self.store.counters)

    def get(self, key: str) -> Entry | None:
        stored = self.store.read(self.store.entry_path(key))
        if stored is None:
            return None
        header = EntryHeader.from_json(stored.header)
        if header is None or header.format != self.format.name:
            return None  # another version's file, or another cache format setting: a miss
        entry = Entry(key, header, stored)
        self._heal(entry)
        self.index.hit(key)
        return entry

    def _heal(self, entry: Entry) -> None:
        """An entry whose index row is missing (a crash between the rename and the insert,
        a damaged index) is indexed again, so that invalidation and eviction reach it."""
        try:
            if not self.index.known(entry.key):
                self._record(entry)
        except Exception:  # the index is advisory: serving never depends on it
            log.exception("cache index repair failed for %s", entry.key)

    def _record(self, entry: Entry) -> None:
        size = self.size_of(entry.key, entry.version)
        self.index.record(entry.key, size, entry.stored.header, entry.header.tags)

    def size_of(self, key: str, version: str) -> int:
        """Bytes of the entry file and of its bodies of ``version`` on disk."""
        total = _size(self.store.entry_path(key))
        return total + sum(_size(body) for body in self.bodies(key) if _version(body) == version)

    def bodies(self, key: str) -> list[Path]:
        """Every body file of ``key``, of any version."""
        return list(self.store.body_path(key, "", "").parent.glob(f"{key}.*"))

    def writer(self, key: str, provisional: EntryHeader) -> EntryWriter:
        """A writer for a new fetch of ``key``; ``provisional`` is its header as far as it is
        known before the rows (it sizes the room the final one gets)."""
        return EntryWriter(self, key, provisional)

    def adopt(self, key: str, scratch: Path) -> Entry | None:
        """Take in an entry another node wrote (downloaded to ``scratch``): checked like any
        file read, and settled like one written here. None when it is damaged or foreign."""
        stored = self.store.adopt(scratch, self.store.entry_path(key))
        if stored is None:
            return None
        header = EntryHeader.from_json(stored.header)
        if header is None or header.format != self.format.name:
            self.store.remove(stored.path)
            return None
        entry = Entry(key, header, stored)
        self.settle(entry)
        return entry

    def settle(self, entry: Entry) -> None:
        """After an entry is committed: the bodies of its older fetches go, the index learns
        of it, and the least recently used others make room."""
        for body in self.bodies(entry.key):
            if _version(body) != entry.version:
                self.store.remove(body)
        try:
            self._record(entry)
            self.evict(keep=entry.key)
        except Exception:  # the entry is committed; the index is advisory (see index.py)
            log.exception("cache index update failed for %s", entry.key)

    def get_error(self, key: str) -> Stored | None:
        """A failure remembered for ``key``, kept apart so the stale result survives it."""
        return self.store.read(self.store.entry_path(key, "error"))

    def put_error(self, key: str, error: dict[str, Any], header: dict[str, Any]) -> None:
        self.store.write(self.store.entry_path(key, "error"), b"", {**header, "error": error})

    def table(self, entry: Entry) -> pa.Table:
        return self.format.loads(entry.stored.payload)

    def body(
        self, entry: Entry, variant: str, produce: Callable[[], Iterable[bytes]]
    ) -> memoryview:
        """The response body ``variant`` of ``entry``, encoded and stored on first use. It is
        written to disk as it is encoded; only if the disk refuses is it kept in memory."""
        path = self.store.body_path(entry.key, entry.version, variant)
        stored = self.store.read(path)
        if stored is not None:
            return stored.payload
        stored = self.store.write_stream(
            path,
            lambda sink: sink.write_all(produce()),
            lambda: {"entry": entry.key, "version": entry.version, "variant": variant},
        )
        if stored is None:
            return memoryview(b"".join(produce()))
        self.index.add_bytes(entry.key, _size(path))
        self.evict(keep=entry.key)
        return stored.payload

    def remove(self, keys: Iterable[str]) -> int:
        """Remove entries with their bodies and remembered errors; return how many."""
        keys = list(keys)
        for key in keys:
            for body in self.bodies(key):
                self.store.remove(body)
            self.store.remove(self.store.entry_path(key))
            self.store.remove(self.store.entry_path(key, "error"))
        self.index.forget(keys)
        return len(keys)

    def invalidate(self, tag: str) -> int:
        return self.remove(self.index.keys_tagged(tag))

    def clear(self) -> int:
        return self.remove(self.index.all_keys())

    def purge_expired(self, now: float | None = None) -> int:
        """Remove entries past their last stale deadline."""
        return self.remove(self.index.expired(time.time() if now is None else now))

    def evict(self, keep: str | None = None) -> int:
        """Remove least recently used entries (never ``keep``, just written) until the
        entries, their bodies and the overhead fit within the size bound."""
        self.index.flush_hits()
        total, victims = self.index.total_bytes() + self.overhead, []
        for key, size in self.index.least_recently_used():
            if total <= self.max_bytes:
                break
            if key != keep:
                victims.append(key)
                total -= size
        if victims:
            self.store.counters["evictions"] += len(victims)
        return self.remove(victims)

    def close(self) -> None:
        self.index.close()


class EntryWriter:
    """One fetch being stored: the entry's rows as they arrive, and bodies encoded from them
    on the way, committed together (entry first) or not at all. A disk that refuses, or a
    result larger than the whole cache, ends the writing, never the reading: rows keep
    flowing to whoever reads them (``failed`` then says so)."""

    def __init__(self, cache: ResultCache, key: str, provisional: EntryHeader) -> None:
        self.cache = cache
        self.key = key
        self.version = provisional.version
        provisional = replace(provisional, format=cache.format.name)
        self.failed = False
        self._entry: Writer | None = None
        self._rows: BatchWriter | None = None
        self._bodies: dict[str, Writer] = {}
        self._store = cache.store
        try:
            self._entry = self._store.writer(self._store.entry_path(key), provisional.to_json())
        except OSError as exc:
            self._fail(exc)

    def rows(
        self, schema: pa.Schema, batches: Iterable[pa.RecordBatch]
    ) -> Iterator[pa.RecordBatch]:
        """``batches``, each written to the entry before it is passed on."""
        if self._entry is not None:
            try:
                self._rows = self.cache.format.writer(schema, self._entry.sink)
            except OSError as exc:
                self._fail(exc)
        for batch in batches:
            if self._rows is not None:
                try:
                    self._rows.write_batch(batch)
                except OSError as exc:
                    self._fail(exc)
                self._check_size()
            yield batch

    def body(self, variant: str, chunk: bytes) -> None:
        """Add ``chunk`` to the body ``variant`` being encoded from these rows."""
        if self.failed:
            return
        try:
            writer = self._bodies.get(variant)
            if writer is None:
                path = self._store.body_path(self.key, self.version, variant)
                writer = self._bodies[variant] = self._store.writer(
                    path, self._body_header(variant)
                )
            writer.sink.write(chunk)
        except OSError as exc:
            self._fail(exc)
        self._check_size()

    def commit(self, header: EntryHeader) -> Entry | None:
        """Make the entry, then its bodies, visible; None when the writing failed."""
        if self._rows is not None and not self.failed:
            try:
                self._rows.close()
            except OSError as exc:
                self._fail(exc)
        if self.failed or self._entry is None:
            self.abort()
            return None
        header = replace(header, version=self.version, format=self.cache.format.name)
        try:
            stored = self._entry.commit(header.to_json())
            for variant, writer in self._bodies.items():
                writer.commit(self._body_header(variant))
        except OSError as exc:
            self._fail(exc)
            self.abort()
            return None
        entry = Entry(self.key, header, stored)
        self.cache.settle(entry)
        return entry

    def _body_header(self, variant: str) -> dict[str, Any]:
        return {"entry": self.key, "version": self.version, "variant": variant}

    def abort(self) -> None:
        """Drop whatever is not committed (idempotent)."""
        for writer in (self._entry, *self._bodies.values()):
            if writer is not None:
                writer.abort()

    def _check_size(self) -> None:
        written = sum(w.length for w in (self._entry, *self._bodies.values()) if w is not None)
        if not self.failed and written > self.cache.max_bytes:
            self.failed = True
            self._store.counters["oversized"] += 1
            log.info("result %s is larger than the cache (%d bytes); not stored", self.key, written)
            self.abort()

    def _fail(self, exc: OSError) -> None:
        if not self.failed:
            self.failed = True
            self._store.write_failed(exc)
            self.abort()


def _version(body: Path) -> str:
    """``<key>.<version>.<variant>`` -> version."""
    return body.name.split(".", 2)[1]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
