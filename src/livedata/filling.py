"""One fetch per key: a stored miss goes to its first client as it is written, and every
other waiter gets the committed entry.

Within a process, the first request for a key starts a fill and later ones join it. Across
processes on the host, the fill holds the key's lock file while it fetches
(``cache.flight.host_lock``); another process's fill waits for the lock, then finds the
entry the first one wrote. A fill is a task of its own: a requester that disconnects never
cancels it for the others.

The request that started the fill (its leader) receives the body in its format while the fill
writes it, with the rows, to the cache: its first byte leaves once the first rows are
encoded, as for an uncached request. The others wait for the commit and answer from the
entry. When the cache cannot store the result (a full or failing disk, a result larger than
the cache) the leader still gets every byte and each waiter asks the source again on its
own, under the source's queue: a short or empty answer is never possible, and only a failing
cache disk costs these extra statements.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field

import anyio
import anyio.from_thread
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream

from livedata.admission import Admission
from livedata.auth.caller import Caller
from livedata.bodies import blocks
from livedata.cache.entries import Entry, EntryHeader, ResultCache
from livedata.cache.flight import host_lock
from livedata.cache.writing import EntryWriter
from livedata.connectors.stream import RowStream
from livedata.encoders.base import Encoder, Passing
from livedata.errors import (
    LivedataError,
    QueryFailed,
    SourceBusy,
    SourceError,
    SourceUnavailable,
    StatementTimeout,
)
from livedata.plan import Plan, Planner
from livedata.results import header_for, meta
from livedata.sharing import Sharing
from livedata.status import Status

TEE_BLOCKS = 4  # blocks of body waiting for a slow leader before the fill waits for it
_REMEMBERED_ERRORS = {c.code: c for c in (SourceUnavailable, StatementTimeout, QueryFailed)}


class Tee:
    """The leader's body, block by block, from the fill's worker thread to its response."""

    def __init__(self) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[bytes | LivedataError](
            TEE_BLOCKS
        )
        self._listening = True

    def put(self, block: bytes) -> None:
        """From the fill's thread; waits while the leader is behind. A leader that left is
        skipped from then on: the fill goes on for the others."""
        if self._listening:
            try:
                anyio.from_thread.run(self._send.send, block)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._listening = False

    def end(self, error: LivedataError | None = None) -> None:
        """From the event loop: no more blocks; ``error`` cuts the leader's body short."""
        if error is not None:
            try:
                self._send.send_nowait(error)
            except anyio.WouldBlock:  # the leader is behind: it sees the body end unfinished
                pass
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
        self._send.close()

    def blocks(self) -> AsyncGenerator[bytes]:
        return _drain(self._receive)


async def _drain(
    receive: MemoryObjectReceiveStream[bytes | LivedataError],
) -> AsyncGenerator[bytes]:
    with receive:  # closing it tells the fill that the leader left
        async for item in receive:
            if isinstance(item, LivedataError):
                raise item
            yield item


@dataclass
class Fill:
    """A fetch being stored. ``started`` resolves to the leader's tee once rows flow, or to
    None when the fill ended without fetching (another process or node had stored it);
    ``committed`` to the entry once it is on this host's disk (None: the disk refused),
    before it is offered to the cluster. Await both shielded: they are shared."""

    started: asyncio.Future[Tee | None]
    committed: asyncio.Future[Entry | None]
    header: EntryHeader | None = None  # once the last row is read
    origin: Status = Status.COALESCED  # how the entry came: fetched, or another's
    task: asyncio.Task[Entry | None] = field(init=False)

    def settle(self, entry: Entry | None) -> Entry | None:
        if not self.committed.done():
            self.committed.set_result(entry)
        return entry


class Fills:
    def __init__(
        self,
        planner: Planner,
        admission: Admission,
        sharing: Sharing,
        clock: Callable[[], float],
        error_ttl: float,
    ) -> None:
        self.planner = planner
        self.admission = admission
        self.sharing = sharing
        self.cluster = sharing.cluster
        self.clock = clock
        self.error_ttl = error_ttl
        self._running: dict[str, Fill] = {}
        # Threads blocked on another process's lock get a pool of their own: in anyio's
        # default one, 40 such waits would leave no thread to store the results that end them.
        self._lock_waiters = anyio.CapacityLimiter(1024)

    def running(self, key: str) -> Fill | None:
        return self._running.get(key)

    async def drain(self) -> None:
        """Let every running fill end (at shutdown): their statements are bounded by the
        source's timeout, and each one that ends commits an entry someone waited for."""
        while self._running:
            await asyncio.wait([fill.task for fill in list(self._running.values())])

    def start(
        self,
        plan: Plan,
        cache: ResultCache,
        replaces: float | None,
        caller: Caller,
        encoder: Encoder | None,
    ) -> Fill:
        """Fetch and store ``plan``'s result; ``caller`` pays. ``replaces``: the creation time
        of the entry being replaced (only a newer one will do). ``encoder``: the leader's
        format, teed to it; None when nobody listens (a refresh in the background)."""
        loop = asyncio.get_running_loop()
        fill = Fill(loop.create_future(), loop.create_future())
        fill.task = asyncio.ensure_future(self._run(fill, plan, cache, replaces, caller, encoder))
        self._running[plan.key] = fill
        fill.task.add_done_callback(lambda _: self._ended(plan.key, fill))
        return fill

    def _ended(self, key: str, fill: Fill) -> None:
        if self._running.get(key) is fill:
            del self._running[key]
        if not fill.started.done():
            fill.started.set_result(None)
        if fill.committed.done():
            return
        if fill.task.cancelled():
            fill.committed.cancel()
        elif (error := fill.task.exception()) is not None:
            fill.committed.set_exception(error)
            fill.committed.exception()  # retrieved: the waiters (if any) raise it themselves
        else:
            fill.settle(fill.task.result())

    async def _run(
        self,
        fill: Fill,
        plan: Plan,
        cache: ResultCache,
        replaces: float | None,
        caller: Caller,
        encoder: Encoder | None,
    ) -> Entry | None:
        """One fetch per key: on this host (a lock file), then in the cluster (a lease)."""
        try:
            async with host_lock(
                cache.locks, plan.key, self._lock_waiters, cache.store.write_failed
            ):
                found = self._committed(cache, plan, replaces)
                if found is not None:
                    return fill.settle(found)
                async with self.cluster.watching(plan.key) as announced:
                    lease = None
                    while lease is None:
                        found = await self.sharing.newest(cache, plan.key, replaces)
                        if found is not None:
                            fill.origin = Status.SHARED
                            return fill.settle(found)
                        failure = await self.cluster.remembered_error(plan.key)
                        if failure is not None:
                            raise _error_from(failure)
                        lease = await self.sharing.claim(plan.key)
                        if lease is None:  # another node fetches it: wait for its entry
                            await announced()
                try:
                    fill.origin = Status.MISS
                    entry = fill.settle(await self._fetch(fill, plan, cache, caller, encoder))
                    if entry is not None:
                        await self.sharing.offer(cache, entry, lease)
                    return entry
                finally:
                    await self.cluster.release(lease)
        except BaseException as exc:
            if not fill.started.done():
                fill.started.set_exception(exc)
                fill.started.exception()  # the leader may be gone; nobody else would look
            raise

    def _committed(self, cache: ResultCache, plan: Plan, replaces: float | None) -> Entry | None:
        """What another process of this host stored meanwhile, if it will do; the failure it
        remembered is raised."""
        now = self.clock()
        entry = cache.get(plan.key)
        if (
            entry is not None
            and (replaces is None or entry.created > replaces)
            and entry.fresh(now)
            and self.cluster.is_current(entry.header.tags, entry.header.generations, entry.created)
        ):
            return entry
        failure = cache.get_error(plan.key)
        if failure is not None and now < float(failure.header["fresh_until"]):
            raise _error_from(failure.header["error"])
        return None

    async def _fetch(
        self,
        fill: Fill,
        plan: Plan,
        cache: ResultCache,
        caller: Caller,
        encoder: Encoder | None,
    ) -> Entry | None:
        statement = self.planner.statement(plan)
        # Counted before the statement starts: an invalidation during the fetch makes this
        # entry stale from the start.
        generations = self.cluster.current_generations(plan.tags)
        try:
            stream = await self.admission.open(plan.target, statement, plan.caps, caller.id)
        except SourceError as exc:
            await self.remember(plan, cache, exc)
            raise
        version = secrets.token_hex(8)
        provisional = header_for(
            plan, stream.schema, version, self.clock(), generations=generations
        )
        fill.header = (
            provisional  # until the last row: what the leader's log line says if it leaves
        )
        tee = None if encoder is None else Tee()
        fill.started.set_result(tee)

        final: list[EntryHeader] = []

        def finish() -> EntryHeader:
            """The header once the last row is read (asked by the encoder, or after it)."""
            if not final:
                final.append(
                    header_for(
                        plan,
                        stream.schema,
                        version,
                        self.clock(),
                        stream.rows,
                        stream.truncated,
                        stream.source_ms,
                        generations,
                    )
                )
                fill.header = final[0]
            return final[0]

        def store() -> Entry | None:
            writer = EntryWriter(cache, plan.key, provisional)
            try:
                rows = writer.rows(stream.schema, stream)
                if encoder is None or tee is None:
                    for _ in rows:
                        pass
                else:
                    chunks = encoder.encode(Passing(stream.schema, rows), lambda: meta(finish()))
                    for block in blocks(chunks):
                        writer.body(encoder.name, block)
                        tee.put(block)
                header = finish()
                anyio.from_thread.run_sync(_end, tee)  # the leader's body is complete
                return writer.commit(header)
            except BaseException:
                writer.abort()
                raise

        try:
            return await anyio.to_thread.run_sync(store)
        except SourceError as exc:  # the source failed half-way through the rows
            await self.remember(plan, cache, exc)
            if tee is not None:
                tee.end(exc)
            raise
        finally:
            await _close(stream, tee)

    async def remember(self, plan: Plan, cache: ResultCache, error: SourceError) -> None:
        """A failed fetch: the source backs off if it is down, and identical requests get the
        same error for ``error_ttl`` seconds, on this host (as an error entry) and in the
        cluster."""
        self.admission.failed(plan.target.source, error)
        if self.error_ttl <= 0 or isinstance(error, SourceBusy):
            return  # overload passes; it says nothing lasting
        now = self.clock()
        remembered = {"code": error.code, "message": error.message, "details": error.details}
        cache.put_error(plan.key, remembered, {"created": now, "fresh_until": now + self.error_ttl})
        await self.cluster.remember_error(plan.key, remembered, self.error_ttl)


def _end(tee: Tee | None) -> None:
    if tee is not None:
        tee.end()


async def _close(stream: RowStream, tee: Tee | None) -> None:
    await stream.aclose()
    if tee is not None:
        tee.end()  # also when the fill failed before the leader's body began


def _error_from(error: Mapping[str, object]) -> LivedataError:
    cls = _REMEMBERED_ERRORS.get(str(error["code"]), QueryFailed)
    details = error.get("details")
    return cls(str(error["message"]), **(details if isinstance(details, dict) else {}))
