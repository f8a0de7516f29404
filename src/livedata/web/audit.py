"""The audit log: one JSON line per request, written by a thread of its own.

Each line says which request (its id, the caller's own ``X-Request-Id`` when well-formed;
the caller's W3C ``traceparent`` when valid, else null), who asked (the caller id, never a
credential), for what (table or query and a digest of the converted parameters, never their
values), how it was answered (cache status, rows, source milliseconds, what it cost against
budgets), the status code and the duration. No other header is logged, so never an
Authorization header. The hot path and the error handlers fill in the same fields as the
route, so every request is counted.

A request only encodes its line and queues it; ``AuditWriter`` writes what has queued up in
few writes. Through ``logging`` (``Logger.info`` to a ``FileHandler``, a write and a flush per
line) a hit from memory took 10% more instructions, the writer's thread included (callgrind,
200 in-process hits: 336k each, now 302k). The queue is bounded: when the destination cannot
keep up, a request waits for room in a worker thread (a slow destination never loses a line)
and ``/metrics`` counts the waits. A destination that refuses a write (a full disk, a pipe
nobody reads) loses the lines it refused: they are counted, logged once per outage, and
/ready says why. Keeping them would fill the queue, block every request and never let the
process shut down; the next batch is tried again, so writing resumes once the destination
takes writes.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import queue
import select
import stat
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import anyio.to_thread
import orjson
from starlette.types import Scope

from livedata.results import Result, StoredResult
from livedata.status import Status

QUEUE_LINES = 10_000  # ~4 MB of lines waiting at most
# Seconds the writer lets lines gather before it writes them. Each batch takes the GIL from
# the event loop a few times. Woken for every line, hits from memory with lines to a file ran
# at 8,333 req/s against 11,517 with the log off; lingering 5 ms, 9,731; then, with lines
# handed over as lists, 50 ms against 5 ms gave 1.10x (wrk -c32, 10 interleaved rounds of 3 s,
# medians; every line written). A line reaches its destination up to 50 ms later; a drain
# (shutdown, a new destination) does not wait for the linger.
LINGER = 0.05

log = logging.getLogger("livedata.audit")


class AuditWriter:
    """Writes queued lines to its destination in batches, from its own thread. One per
    process: an app made later retargets it, so several apps in one process log once."""

    def __init__(self) -> None:
        # Lines waiting, and the drains waiting for them: lists the thread swaps for empty
        # ones, a batch at a time. A request appends (atomic under the GIL) and wakes the
        # thread only for the first line of a batch. Through a SimpleQueue, put and got line by
        # line, a line cost a hit from memory 3.4 us besides its encoding (1.4 us).
        self._lines: list[bytes] = []
        self._drains: list[threading.Event] = []
        self._wake: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._woken = False  # a wake is on its way for the lines now waiting
        self._hurry = threading.Event()  # a drain waits: write without lingering
        self._room = threading.Condition()  # told after each batch; requests wait on it
        self.on_full: Callable[[], None] = lambda: None  # a request found the queue full
        self.on_lost: Callable[[int], None] = lambda lines: None  # lines the destination refused
        self.listeners: list[Callable[[list[bytes]], None]] = []  # told of lines written
        self.problem: str | None = None  # why the last write failed; None once one succeeds
        self._destination: io.FileIO | None = None  # unbuffered: a failed write keeps nothing
        self._where = ""
        self._most = select.PIPE_BUF  # bytes a write may take without interleaving with others'
        self._lock = threading.Lock()  # the destination, against a write in progress
        threading.Thread(target=self._run, name="livedata-audit", daemon=True).start()

    async def write(self, line: bytes) -> None:
        """Queue one line; when the queue is full, wait for room rather than drop it. The
        wait is this request's, in a worker thread: blocking on the event loop would stall
        every request of the process. The thread runs to its end even if the request is
        cancelled meanwhile, so the line is still queued."""
        if len(self._lines) < QUEUE_LINES:
            self._queue(line)
            return
        self.on_full()
        await anyio.to_thread.run_sync(self._put_when_room, line)

    def _queue(self, line: bytes) -> None:
        self._lines.append(line)
        if not self._woken:
            self._woken = True
            self._wake.put(None)

    def _put_when_room(self, line: bytes) -> None:
        with self._room:
            self._room.wait_for(lambda: len(self._lines) < QUEUE_LINES)
        self._queue(line)

    def drain(self) -> None:
        """Wait until every line queued so far is written or lost (at shutdown)."""
        done = threading.Event()
        self._drains.append(done)
        self._hurry.set()
        self._wake.put(None)
        done.wait()

    def retarget(self, destination: str) -> None:
        """Lines queued so far go where they were meant to; the next ones to ``destination``
        ("stderr", a file, or "off": nowhere)."""
        self.drain()
        with self._lock:
            if self._destination is not None:
                self._destination.close()  # stderr's descriptor stays open: closefd=False
            self._destination, self._where, self.problem = None, destination, None
            if destination == "stderr":
                sys.stderr.flush()  # what was printed before comes first
                self._destination = open(sys.stderr.fileno(), "wb", buffering=0, closefd=False)  # noqa: SIM115  # closed by the next retarget
            elif destination != "off":
                self._destination = open(destination, "ab", buffering=0)  # noqa: SIM115  # closed by the next retarget
            # An append to a regular file is never interleaved with another, whatever its size;
            # a pipe's is when over PIPE_BUF. Hits from memory with lines to a file ran at
            # 9,400 req/s in 4 KB writes, ~2,000 a second each taking the GIL back from the
            # event loop, against 13,900 to /dev/null (wrk -c32; one write a batch now).
            regular = self._destination is not None and stat.S_ISREG(
                os.fstat(self._destination.fileno()).st_mode
            )
            self._most = sys.maxsize if regular else select.PIPE_BUF

    def _run(self) -> None:
        while True:
            self._wake.get()  # idle until a line or a drain comes
            while self._batch():  # busy: a batch a LINGER, until one finds nothing
                pass

    def _batch(self) -> bool:
        """Write what queued up over the last LINGER; False when nothing did (then nothing
        will be written until a request wakes the thread again)."""
        self._hurry.wait(LINGER)
        self._hurry.clear()  # before the swap: a drain that comes after it hurries the next
        # In this order: a line queued before a drain is in this batch, or in an earlier.
        drains, self._drains = self._drains, []
        lines, self._lines = self._lines, []
        if not lines and not drains:
            self._woken = False  # from now on a request's line wakes the thread...
            return bool(self._lines or self._drains)  # ...unless one came before it could
        try:
            with self._lock:
                written = self._write(lines) if lines else False
            if written:
                for listener in self.listeners:
                    listener(lines)
        finally:  # whatever happened, these lines are done with: shutdown may go on
            with self._room:
                self._room.notify_all()
            for done in drains:
                done.set()
        return True

    def _write(self, lines: list[bytes]) -> bool:
        """Write ``lines``; False (and the rest counted as lost) when the destination
        refuses a write."""
        if self._destination is None:
            return True
        done = 0
        try:
            for chunk in _atomic_chunks(lines, self._most):
                _write_all(self._destination, b"".join(chunk))
                done += len(chunk)
        except OSError as exc:
            self.on_lost(len(lines) - done)
            if self.problem is None:
                log.error(
                    "audit log: %s refuses writes (%s); lines are lost, and counted in "
                    "livedata_audit_lines_lost_total, until it takes them again",
                    self._where,
                    exc.strerror or exc,
                )
            self.problem = f"{self._where} refuses writes: {exc.strerror or exc}"
            return False
        if self.problem is not None:
            log.warning("audit log: %s takes writes again", self._where)
            self.problem = None
        return True


def _write_all(destination: io.FileIO, data: bytes) -> None:
    """An unbuffered write may take part of ``data`` (a disk filling up midway)."""
    view = memoryview(data)
    while view:
        view = view[destination.write(view) or 0 :]


def _atomic_chunks(lines: list[bytes], most: int) -> Iterator[list[bytes]]:
    """Whole lines, at most ``most`` bytes a write (unless one line is longer): the workers
    of ``--workers`` share stderr, and the kernel keeps only writes of ``PIPE_BUF`` bytes at
    most from interleaving in a pipe."""
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        if chunk and size + len(line) > most:
            yield chunk
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    yield chunk


_writer: AuditWriter | None = None


def configure(destination: str) -> AuditWriter | None:
    """Send audit lines to ``destination`` ("stderr", a file, or "off"); the process's
    writer, or None when off."""
    global _writer  # made on first use: importing livedata starts no thread
    if _writer is None:
        _writer = AuditWriter()
    _writer.retarget(destination)
    return None if destination == "off" else _writer


def params_digest(params: Mapping[str, Any]) -> str:
    """Equal for equal converted parameters, without writing them down."""
    canonical = orjson.dumps(params, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=8).hexdigest()


def record(scope: Scope) -> dict[str, Any]:
    """This request's audit fields, for the layers inside to fill (a throwaway when off)."""
    audit: dict[str, Any] = scope.get("state", {}).get("audit", {})
    return audit


def describe(result: Result, status: Status | None = None) -> dict[str, Any]:
    """The audit fields of an answered query (``status``: as it was answered, if not as it
    was obtained). Only a fetch costs: hits cost nothing."""
    status = result.status if status is None else status
    header = result.header if isinstance(result, StoredResult) else result.header()
    target = result.plan.target
    source_ms = header.source_ms if status.asked_source else 0.0
    return {
        target.kind: target.name,
        "source": target.source,
        "params_digest": params_digest(header.params),
        "cache": str(status),
        "rows": header.rows,
        "truncated": header.truncated,
        "source_ms": source_ms,
        "cost": {
            "queries": int(status.asked_source),
            "source_seconds": round(source_ms / 1000, 6),
        },
    }


class Template:
    """The audit lines of requests alike but for their id, trace, status and duration, what
    they share encoded once. The hot lane keeps one per remembered body: encoding each hit's
    whole line took 3.1 us, filling in a template 1.3 us (python -m timeit)."""

    def __init__(
        self, method: str, path: str, caller: str | None, fields: Mapping[str, Any]
    ) -> None:
        # What a field in ``fields`` would override (as in a dict) is never among them: the
        # layers note what a request asked for and how it went, never who or how long.
        shared = orjson.dumps({"method": method, "path": path, "caller": caller, **fields})
        self._shared = shared[1:-1]

    def line(
        self, request_id: str | None, traceparent: str | None, status: int, seconds: float
    ) -> bytes:
        return b'{"request_id":%b,"traceparent":%b,%b,"status":%d,"duration_ms":%b}\n' % (
            orjson.dumps(request_id),
            orjson.dumps(traceparent),
            self._shared,
            status,
            orjson.dumps(round(seconds * 1000, 3)),
        )


def template(scope: Scope, fields: Mapping[str, Any]) -> Template:
    """The template of lines like this request's, with ``fields`` for what it asked."""
    # No caller: authentication refused the request (or it never got that far).
    caller = getattr(scope["state"].get("caller"), "id", None)
    return Template(scope["method"], scope["path"], caller, fields)


def line(scope: Scope, status: int, seconds: float) -> bytes:
    """The request's audit line, from what the layers noted in its state."""
    state = scope["state"]
    fields = state["audit"]
    described = fields.pop("described", None)
    if described is not None:
        fields.update(described())
    made = template(scope, fields)
    return made.line(state.get("request_id"), state.get("traceparent"), status, seconds)
