"""Cache upkeep: one round brings the directory back within its bound and its index back to
the truth. Each server process runs a round every LIVEDATA_CACHE_MAINTENANCE_INTERVAL
seconds; ``livedata cache purge`` runs one too.

A round writes the hit counts to the shared index (so other processes see them and eviction
ranks by the latest use), removes expired entries, sweeps, then evicts the least recently
used entries until everything in the directory fits the bound. Pins of paging
cursors go once past their end. The sweep removes files that
belong to no current entry (bodies of an older fetch, expired error entries, a damaged or
foreign entry), indexes entries the index lost, forgets rows whose file is gone, and
measures what no entry accounts for (the index itself, locks, files being written), which
counts against the bound too. Removing files under a response being sent is safe: readers
map them, and unlinking a name leaves the mapped inode alone.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from livedata.cache.entries import EntryHeader, ResultCache


def maintain(cache: ResultCache, now: float) -> None:
    cache.index.flush_hits()
    cache.purge_expired(now)
    cache.pins.sweep(now)
    sweep(cache, now)
    cache.evict()
    cache.index.checkpoint()


def sweep(cache: ResultCache, now: float) -> None:
    store, index = cache.store, cache.index
    # Bodies are listed before entries: a body is renamed into place after its entry, so any
    # body listed here belongs to an entry the listing below sees (or to an older fetch).
    bodies = list(store.root.glob("bodies/*/*"))
    versions: dict[str, str] = {}
    indexed = index.sizes()
    for path in store.root.glob("entries/*/*.entry"):
        key = path.name.removesuffix(".entry")
        raw = store.read_header(path)
        header = None if raw is None else EntryHeader.from_json(raw)
        if header is None:
            store.remove(path)  # damaged, or written by another version: never served
            continue
        versions[key] = header.version
        size = cache.size_of(key, header.version)
        if key not in indexed:
            assert raw is not None
            index.record(key, size, raw, header.tags)
        elif indexed[key] != size:
            index.set_bytes(key, size)
    for body in bodies:
        key, version = body.name.split(".", 2)[:2]
        if versions.get(key) != version:
            store.remove(body)
    index.forget(set(indexed) - set(versions))
    for path in store.root.glob("entries/*/*.error"):
        raw = store.read_header(path)
        if raw is None or float(raw.get("fresh_until", 0)) < now:
            store.remove(path)
    index.checkpoint()
    counted = sum(index.sizes().values())
    cache.overhead = max(0, _bytes_under(store.root) - counted)


def _bytes_under(root: Path) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile by another process
                total += os.stat(os.path.join(folder, name)).st_size
    return total
