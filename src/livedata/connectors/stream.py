"""A statement's rows on their way from the source: one owner, one reader, closed on every path.

A ``RowStream`` holds everything a running statement ties up: the connection (through the
driver's cursor), the source slot, the read-ahead thread, the row and byte caps, the timing
and the budget charge. It is read once (a second reader gets ``StreamConsumed``, as httpx's
``Response`` refuses a second read of its stream) and closed by its owner, whatever happened:
the client left, the source failed, a cap cut it. A result that several requests share is
never a stream: it is a committed cache entry (see ``livedata.results``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import anyio
import anyio.to_thread
import pyarrow as pa

from livedata.bounds import cap_bytes
from livedata.connectors.base import Cursor
from livedata.connectors.read_ahead import ReadAhead

READ_AHEAD_BATCHES = 2  # fetched batches waiting for the reader, at most
Charge = Callable[[float], Awaitable[None]]  # told the source milliseconds once the rows close


class StreamConsumed(RuntimeError):
    """A row stream was read a second time: a bug, since rows are read once."""


@dataclass(frozen=True)
class Caps:
    """What one result may hold: beyond ``rows`` rows (the statement asks for one more) or
    ``bytes`` bytes of Arrow data, it is cut and flagged truncated."""

    rows: int | None = None
    bytes: int | None = None


class RowStream:
    """Rows as the source delivers them, capped, counted and timed."""

    def __init__(
        self,
        cursor: Cursor,
        caps: Caps,
        release: Callable[[], None],
        charge: Charge | None = None,
    ) -> None:
        self.schema = cursor.schema
        self.caps = caps
        self.rows = 0
        self.bytes = 0
        self.truncated = False
        self._cursor = cursor
        self._release: Callable[[], None] | None = release
        self._charge = charge
        self._started = time.perf_counter()
        self._finished: float | None = None
        self._ahead: ReadAhead[pa.RecordBatch] | None = None
        self._taken = False
        self._drained = False  # the driver's batches ran to their end

    @property
    def source_ms(self) -> float:
        """Milliseconds the source has worked so far, final once the last batch is read."""
        return ((self._finished or time.perf_counter()) - self._started) * 1000

    @property
    def done(self) -> bool:
        """Every row has been read (or the caps ended the reading): the counts are final."""
        return self._finished is not None

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        if self._taken:
            raise StreamConsumed("a row stream is read once; share a stored result instead")
        self._taken = True
        return self._read()

    def _read(self) -> Iterator[pa.RecordBatch]:
        for batch in self._arriving():
            if self.caps.rows is not None and self.rows + batch.num_rows > self.caps.rows:
                # Only the one extra row the statement asked for is left: read on to the end,
                # so the connection goes back to the pool instead of being dropped.
                self.truncated = True
                batch = batch.slice(0, self.caps.rows - self.rows)
            left = None if self.caps.bytes is None else self.caps.bytes - self.bytes
            batch, cut = cap_bytes(batch, left)
            self.rows += batch.num_rows
            self.bytes += batch.nbytes
            if batch.num_rows:
                yield batch
            if cut:  # the rest would be cut too: stop reading (closing ends the statement)
                self.truncated = True
                break
        else:
            self._drained = True
        self._finished = time.perf_counter()

    def _arriving(self) -> Iterator[pa.RecordBatch]:
        """The driver's batches; from the third on, read by a thread ahead of the reader, so
        that fetching overlaps with whatever the reader does with each batch."""
        batches = iter(self._cursor.batches)
        first = list(itertools.islice(batches, 2))
        yield from first
        if len(first) == 2:
            self._ahead = ReadAhead(batches, READ_AHEAD_BATCHES)
            yield from self._ahead

    def read_all(self) -> pa.Table:
        return pa.Table.from_batches(list(self), self.schema)

    async def aclose(self) -> None:
        """End the statement (dropping its connection if rows are left), charge its source
        time, free the slot. Shielded: it also runs when the client left. Idempotent."""
        if self._release is None:
            return
        release, self._release = self._release, None
        try:
            with anyio.CancelScope(shield=True):
                if self._drained and self._ahead is None:
                    # After its last batch a cursor has nothing left to end: no blocking
                    # call, so no thread hop (one of four for a small result).
                    self._cursor.close()
                else:
                    await anyio.to_thread.run_sync(self._close)
                if self._charge is not None:
                    await self._charge(self.source_ms)
        finally:
            release()

    def _close(self) -> None:
        if self._ahead is not None:
            self._ahead.close()  # first: its thread may be using the connection
        self._cursor.close()
