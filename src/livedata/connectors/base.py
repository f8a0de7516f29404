"""The connector interface: run one statement, return Arrow; translate every driver error.

Connectors are blocking on purpose: the service runs them in worker threads, at most the
source's ``max_concurrent_queries`` at once, so a driver never blocks the event loop and a
connector needs no async code. Each connector owns a small pool of connections.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import pyarrow as pa

from livedata.errors import LivedataError, QueryFailed, SourceUnavailable, StatementTimeout
from livedata.sql import ParamStyle, Statement

Conn = TypeVar("Conn")
T = TypeVar("T")


@dataclass
class Cursor:
    """What a driver yields for one statement: its schema, its batches as they arrive, and
    ``close``, which ends the statement early or after the last batch."""

    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    close: Callable[[], None] = lambda: None

    @classmethod
    def of(cls, table: pa.Table) -> Cursor:
        """For drivers that only give whole results."""
        return cls(table.schema, iter(table.to_batches()))


class Connector(ABC, Generic[Conn]):
    """A source of Arrow tables. Subclasses implement ``_connect``, ``_execute``, ``_translate``."""

    dialect: ClassVar[str]
    paramstyle: ClassVar[ParamStyle]

    def __init__(self, name: str, config: Any) -> None:
        self.name = name
        self.config = config
        self._idle: queue.LifoQueue[Conn] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._closed = False

    def stream(self, statement: Statement) -> Cursor:
        """Run ``statement``; its rows arrive batch by batch while the caller reads them, on
        a connection held until the last one, and every driver error is translated. A cursor
        closed before its end drops its connection, since the driver may still be sending
        rows on it.

        A pooled connection that the server dropped since its last use (restart, idle
        timeout) costs one retry on a fresh connection, not a 503: statements are read-only,
        so running one again is safe.
        """
        try:
            pooled = self._idle.get_nowait()
        except queue.Empty:
            pass
        else:
            try:
                return self._start(pooled, statement)
            except SourceUnavailable:
                pass
        return self._start(self._open(), statement)

    def fetch(self, statement: Statement) -> pa.Table:
        """The whole result at once; raise only LivedataError."""
        cursor = self.stream(statement)
        try:
            return pa.Table.from_batches(list(cursor.batches), cursor.schema)
        finally:
            cursor.close()

    def estimate(self, statement: Statement) -> float | None:
        """The source's own cost estimate for ``statement``, without running it; None when
        the source has no way to estimate. Units are the source's (not money)."""
        return None

    def ping(self) -> None:
        """Raise SourceUnavailable unless the source answers a trivial query."""
        self.fetch(Statement("SELECT 1", ()))

    def excess_privileges(self) -> list[str]:
        """What the source's account may do beyond reading tables, which the read-only session
        does not stop (reading server files, running programs). The operator is warned at
        start-up: only the database's own grants close these."""
        return []

    def close(self) -> None:
        with self._lock:
            self._closed = True
        while True:
            try:
                self._disconnect(self._idle.get_nowait())
            except queue.Empty:
                return

    def _start(self, conn: Conn, statement: Statement) -> Cursor:
        driver = self._guard(conn, lambda: self._execute(conn, statement))
        done = False

        def end(error: LivedataError | None) -> None:
            nonlocal done
            done = True
            with contextlib.suppress(Exception):  # a failed statement may not close cleanly
                driver.close()
            if error is None:
                self._release(conn)
            else:
                self._finish(conn, error)

        def batches() -> Iterator[pa.RecordBatch]:
            while not done:
                try:
                    batch = next(driver.batches, None)
                except LivedataError as exc:
                    end(exc)
                    raise
                except Exception as exc:
                    error = self._translate(exc)
                    end(error)
                    raise error from exc
                if batch is None:
                    end(None)
                    return
                yield batch

        def close() -> None:
            if not done:
                end(self.unavailable("abandoned"))  # drops the connection

        return Cursor(driver.schema, batches(), close)

    def _guard(self, conn: Conn, step: Callable[[], T]) -> T:
        """Run one step of a statement on ``conn``, translating what the driver raises."""
        try:
            return step()
        except LivedataError as exc:
            self._finish(conn, exc)
            raise
        except Exception as exc:
            error = self._translate(exc)
            self._finish(conn, error)
            raise error from exc

    def _finish(self, conn: Conn, error: LivedataError) -> None:
        if isinstance(error, SourceUnavailable):
            self._disconnect(conn)  # a broken connection never goes back to the pool
        else:
            self._release(conn)

    def _open(self) -> Conn:
        try:
            return self._connect()
        except LivedataError:
            raise
        except Exception as exc:
            raise self.unavailable("cannot connect") from exc

    def _release(self, conn: Conn) -> None:
        with self._lock:
            # One idle connection per query slot, and one for readiness pings: more came
            # from a burst and would only hold server resources.
            if not self._closed and self._idle.qsize() <= self.config.max_concurrent_queries:
                self._idle.put(conn)
                return
        self._disconnect(conn)

    def unavailable(self, why: str) -> SourceUnavailable:
        """The 503 error for this source: names it, never its address or credentials."""
        return SourceUnavailable(
            f"Source {self.name!r} is unavailable ({why}); try again later.", source=self.name
        )

    def timed_out(self) -> StatementTimeout:
        """The error for a statement the source cancelled at the configured timeout."""
        return StatementTimeout(
            f"Source {self.name!r} cancelled the query after {self.config.statement_timeout:g} s.",
            source=self.name,
        )

    def rejected(self, message: str) -> QueryFailed:
        """The error for SQL the source refused, with the first line of the database's reason."""
        lines = message.strip().splitlines()
        return QueryFailed(
            f"Source {self.name!r} rejected the query: {lines[0] if lines else 'no reason given'}",
            source=self.name,
        )

    @abstractmethod
    def _connect(self) -> Conn:
        """Open one connection, read-only, with the statement timeout set in the database."""

    @abstractmethod
    def _execute(self, conn: Conn, statement: Statement) -> Cursor:
        """Start one statement on ``conn``; may raise driver exceptions, also while the
        batches are read."""

    @abstractmethod
    def _translate(self, exc: Exception) -> LivedataError:
        """Map a driver exception to SourceUnavailable, StatementTimeout or QueryFailed."""

    def _disconnect(self, conn: Conn) -> None:
        with contextlib.suppress(Exception):  # closing a dead connection may fail; nothing to do
            conn.close()  # type: ignore[attr-defined]  # every DB-API connection has close()
