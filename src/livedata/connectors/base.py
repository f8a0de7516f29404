"""The connector interface: run one statement, return Arrow; translate every driver error.

Connectors are blocking on purpose: the service runs them in worker threads, at most the
source's ``max_concurrent_queries`` at once, so a driver never blocks the event loop and a
connector needs no async code. Each connector owns a small pool of connections.

A connector is a plug-in: its class names its source kind, its config model, its SQL dialect
and parameter style, and its driver's errors as a table (``ErrorTable``) that one function
here reads, so no connector has an if-chain of its own for them.
"""

from __future__ import annotations

import contextlib
import enum
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import pyarrow as pa

from livedata.connectors.config import SourceBase
from livedata.errors import (
    LivedataError,
    QueryFailed,
    SourceUnavailable,
    StatementTimeout,
    UnsupportedType,
)
from livedata.sql import ParamStyle, Statement

Conn = TypeVar("Conn")
# Field metadata a connector sets when the Arrow type does not say the source's type (a
# PostgreSQL uuid arrives as text): the type a filter's bound value is cast to.
CAST = b"livedata:cast"
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


class Fault(enum.Enum):
    """What a driver error means, whatever the driver."""

    TIMED_OUT = "timed out"  # the source cancelled the statement at statement_timeout
    UNAVAILABLE = "unavailable"  # the source or the connection is gone: the connection is dropped
    REJECTED = "rejected"  # the source refused this statement: its SQL, data or permissions
    UNREADABLE = "unreadable"  # the source answered; the driver cannot read a value it sent


def _no_code(exc: BaseException) -> None:
    return None


ErrorKey = str | int | type[BaseException]


@dataclass(frozen=True)
class ErrorTable:
    """One driver's errors as data: which of them are a timeout or a lost source.

    ``code`` reads the driver's own code from an exception (a SQLSTATE, an error number, an
    error name), None when it carries none. An error with a code matches the row keyed by it;
    a text code also matches a row keyed by its start, the longest first (the SQLSTATE class
    "08"; "SQLITE_IOERR" for the extended "SQLITE_IOERR_READ"). An error without a code
    matches the row keyed by its class or its nearest base class. No row: the source
    rejected the statement, and ``reason`` gives the database's own words for it.
    """

    rows: Mapping[ErrorKey, Fault]
    code: Callable[[BaseException], str | int | None] = _no_code
    reason: Callable[[BaseException], str] = str
    lost: str = "the connection failed"  # why the source is unavailable, as the 503 says

    def row(self, exc: BaseException) -> ErrorKey | None:
        """The key of the row ``exc`` matches; None when none does."""
        code = self.code(exc)
        if code is None:
            return next((cls for cls in type(exc).__mro__ if cls in self.rows), None)
        if isinstance(code, str):
            starts = (code[:n] for n in range(len(code), 0, -1))
            return next((start for start in starts if start in self.rows), None)
        return code if code in self.rows else None

    def fault(self, exc: BaseException) -> Fault:
        key = self.row(exc)
        return Fault.REJECTED if key is None else self.rows[key]


class Connector(ABC, Generic[Conn]):
    """A source of Arrow tables. Subclasses name what the class attributes below say and
    implement ``_connect`` and ``_execute``."""

    kind: ClassVar[str]  # the source kind it serves, as catalogs write it
    config_model: ClassVar[type[SourceBase]]  # what a source of this kind is configured with
    dialect: ClassVar[str]  # sqlglot's name for its SQL
    paramstyle: ClassVar[ParamStyle]  # how its driver takes bound values
    errors: ClassVar[ErrorTable]  # what its driver's errors mean
    # One row per column of the table :table in the schema :schema (NULL: the connection's
    # own), in the source's SQL: its name (column_name) and whether it may hold NULL as the
    # table declares it (nullable). Result columns say nothing of it: drivers report every
    # one nullable. This is the SQL standard's information_schema, which PostgreSQL and
    # DuckDB answer as written.
    columns_sql: ClassVar[str] = (
        "SELECT column_name, is_nullable = 'YES' AS nullable FROM information_schema.columns "
        "WHERE table_name = CAST(:table AS TEXT) AND table_schema = COALESCE(CAST(:schema AS "
        "TEXT), current_schema()) ORDER BY ordinal_position"
    )
    # Rows the schema probe reads: none where a result reports its column types even empty.
    probe_rows: ClassVar[int] = 0

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
                    error = self.translate(exc)
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
            error = self.translate(exc)
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

    def translate(self, exc: BaseException) -> LivedataError:
        """The error a client sees for driver exception ``exc``, by this connector's table.
        Arrow's own errors come from livedata's conversion of what the source answered:
        like a value the driver cannot read, never blamed on the source."""
        if isinstance(exc, pa.ArrowException) and self.errors.row(exc) is None:
            return self.unreadable(str(exc))
        fault = self.errors.fault(exc)
        if fault is Fault.TIMED_OUT:
            return self.timed_out()
        if fault is Fault.UNAVAILABLE:
            return self.unavailable(self.errors.lost)
        if fault is Fault.UNREADABLE:
            return self.unreadable(self.errors.reason(exc))
        return self.rejected(self.errors.reason(exc))

    def unreadable(self, why: str) -> UnsupportedType:
        """The error for a result the source sent that livedata cannot convert."""
        return UnsupportedType(
            f"Source {self.name!r} answered, but livedata cannot convert its result ({why}). "
            "Cast the column to text in the catalog's SQL.",
            source=self.name,
        )

    def _disconnect(self, conn: Conn) -> None:
        with contextlib.suppress(Exception):  # closing a dead connection may fail; nothing to do
            conn.close()  # type: ignore[attr-defined]  # every DB-API connection has close()
