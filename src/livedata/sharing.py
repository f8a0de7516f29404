"""The shared tier seen from a fill: the newest entry another node committed for a key, and
this node's entries offered to the others.

A node that is about to fetch a key first asks Redis for the key's newest committed object
(``Cluster.latest``); if it is still good (fresh, newer than what it replaces, fetched under
the current invalidation counters) it is downloaded into the local tier, rewritten in the
local format if the shared tier stores another, and answers. A node that fetched a key
uploads the entry (the same checked container, in the shared tier's format:
``LIVEDATA_CACHE_SHARED_FORMAT``, compressed because objects cross a network; see
docs/cache-formats.md), with a conditional create, then names it the newest (fenced: a node
that lost its lease cannot replace a newer one), which wakes the other nodes' waiters.
Without object storage or Redis, both are no-ops: every node is a cache of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
from anyio import to_thread

from livedata.cache.entries import Entry, ResultCache
from livedata.cache.formats.base import CacheFormat
from livedata.cache.shared import SharedTier
from livedata.cluster import Cluster, Lease, Pointer

log = logging.getLogger("livedata.cache")


class Sharing:
    def __init__(
        self, cluster: Cluster, shared: SharedTier | None, clock: Callable[[], float]
    ) -> None:
        self.cluster = cluster
        self.shared = shared
        self.clock = clock

    async def claim(self, key: str) -> Lease | None:
        """The right to fetch ``key`` for the cluster (None: another node has it). Without a
        shared tier there is nothing to share, so every node fetches for itself."""
        if self.shared is None:
            return Lease(key, "", 0)
        return await self.cluster.acquire(key)

    async def newest(self, cache: ResultCache, key: str, replaces: float | None) -> Entry | None:
        """The key's newest entry from another node, taken into ``cache``, if it is good."""
        if self.shared is None:
            return None
        pointer = await self.cluster.latest(key)
        if pointer is None or not self._good(pointer, replaces):
            return None
        scratch = cache.store.scratch(key)
        local = None
        try:
            if not await self.shared.download(pointer.name, scratch):
                return None
            local = await to_thread.run_sync(from_shared, cache, key, scratch, self.shared.format)
            entry = None if local is None else cache.adopt(key, local)
        finally:
            scratch.unlink(missing_ok=True)
            if local is not None:
                local.unlink(missing_ok=True)
        if entry is None:  # damaged or foreign: never served, and the next fetch replaces it
            log.warning("shared object %s failed its check; fetching it again", pointer.name)
            await self.cluster.forget(key, pointer.fence)
            await self.shared.delete(pointer.name)
        return entry

    async def fetch(self, cache: ResultCache, key: str, into: Path) -> Path | None:
        """The key's newest object, fresh or not, downloaded to ``into`` and turned into a
        file in the cache's format (``into`` itself, or one the caller removes too): the
        snapshot a paging cursor names may be past the freshness an answer needs, never past
        its pin. None when there is none, or it is damaged."""
        if self.shared is None:
            return None
        pointer = await self.cluster.latest(key)
        if pointer is None or not await self.shared.download(pointer.name, into):
            return None
        return await to_thread.run_sync(from_shared, cache, key, into, self.shared.format)

    def _good(self, pointer: Pointer, replaces: float | None) -> bool:
        header_tags = pointer.generations.keys()
        return (
            self.clock() < pointer.fresh_until
            and (replaces is None or pointer.created > replaces)
            and self.cluster.is_current(header_tags, pointer.generations, pointer.created)
        )

    async def offer(self, cache: ResultCache, entry: Entry, lease: Lease) -> None:
        """Upload ``entry`` in the shared tier's format under the lease's fence and name it
        the key's newest."""
        if self.shared is None or lease.fence == 0:
            return  # no object storage, or Redis is down: nobody could find it
        name = SharedTier.name(entry.key, lease.fence)
        path = await to_thread.run_sync(export, cache, entry, self.shared.format)
        if path is None:
            return
        try:
            uploaded = await self.shared.upload(name, path)
        finally:
            if path != entry.stored.path:
                path.unlink(missing_ok=True)
        if not uploaded:
            return
        header = entry.header
        pointer = Pointer(
            name, lease.fence, header.created, header.fresh_until, header.stale_until,
            dict(header.generations),
        )  # fmt: skip
        if not await self.cluster.point(lease, pointer):
            await self.shared.delete(name)  # a newer fetch was named meanwhile


def export(cache: ResultCache, entry: Entry, shared: CacheFormat) -> Path | None:
    """The file to upload for ``entry`` to a shared tier that stores ``shared``: the entry
    file itself in the same format, else a container written in the cache's ``tmp/`` that the
    caller removes (None if the disk refuses). Run in a thread: it decodes and encodes rows."""
    if shared.name == cache.format.name:
        return entry.stored.path
    table = cache.format.loads(entry.stored.payload)
    header = {**entry.stored.header, "format": shared.name}
    stored = cache.store.write(cache.store.scratch(entry.key), shared.dumps(table), header)
    return None if stored is None else stored.path


def from_shared(cache: ResultCache, key: str, scratch: Path, shared: CacheFormat) -> Path | None:
    """A downloaded object in the shared format ``shared`` rewritten in the cache's format,
    ready for ``ResultCache.adopt`` (its digest is checked first); None when it is damaged or
    does not decode. Any other object is handed on as it is, for ``adopt`` to judge. Run in a
    thread, like ``export``."""
    stored = cache.store.read(scratch)
    if stored is None:
        return None
    if stored.header.get("format") != shared.name or shared.name == cache.format.name:
        return scratch
    try:
        table = shared.loads(stored.payload)
    except (pa.ArrowException, ValueError) as exc:  # the digest matched: a foreign writer
        cache.store.remove(scratch)
        log.warning("shared object for %s does not decode: %s", key, exc)
        return None
    header = {**stored.header, "format": cache.format.name}
    local = cache.store.write(cache.store.scratch(key), cache.format.dumps(table), header)
    return None if local is None else local.path
