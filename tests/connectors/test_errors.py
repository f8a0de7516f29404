"""Every row of every connector's error table is reached, by a real error wherever one can be
caused on this machine.

Each case causes a fault and hands over the driver's exception: through the connector (the
cause of the error it raised), or from the driver on a connection the connector opened, where
the connector would hide the first failure by retrying on a fresh connection. The few faults
that cannot be caused here are built as the driver builds them, each case saying why
(``built=``). The last test checks that the cases cover every row of every table, so a new row
needs a cause.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import adbc_driver_manager
import duckdb
import pyarrow as pa
import pymysql
import pytest

from livedata.connectors import registry
from livedata.connectors.base import Connector, ErrorKey
from livedata.connectors.duckdb import DuckDBSource
from livedata.connectors.registry import create_connector
from livedata.connectors.sqlite import SQLiteSource
from livedata.errors import (
    LivedataError,
    QueryFailed,
    SourceUnavailable,
    StatementTimeout,
    UnsupportedType,
)
from livedata.sql import Statement
from tests.samples import KINDS, Sample

Cause = Callable[[Sample, Path], BaseException]


def raised(connector: Connector[Any], text: str) -> BaseException:
    """The driver's exception behind the error ``connector`` raises for ``text``."""
    try:
        with pytest.raises(LivedataError) as caught:
            connector.fetch(Statement(text, ()))
    finally:
        connector.close()
    assert caught.value.__cause__ is not None
    return caught.value.__cause__


def failure(step: Callable[[], object]) -> BaseException:
    """What ``step`` raises; it must raise."""
    try:
        step()
    except Exception as exc:
        return exc
    raise AssertionError("the step did not fail")


def on_its_connection(
    sample: Sample, before: Callable[[Connector[Any], Any], None]
) -> BaseException:
    """The driver's exception for a statement on a connection the connector opened, after
    ``before`` broke it: what the pool would meet on reusing it."""
    connector = sample.connector()
    conn = connector._open()
    try:
        before(connector, conn)
        return failure(lambda: run(connector, conn, "SELECT 1"))
    finally:
        connector._disconnect(conn)
        connector.close()


def run(connector: Connector[Any], conn: Any, text: str) -> list[Any]:
    """Run ``text`` on ``conn`` through the connector's own statement code."""
    cursor = connector._execute(conn, Statement(text, ()))
    try:
        return [row for batch in cursor.batches for row in batch.to_pylist()]
    finally:
        with contextlib.suppress(Exception):  # a failed statement may not close cleanly
            cursor.close()


def closed_port() -> int:
    with socket.socket() as sock:  # free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- Caused for real -------------------------------------------------------------------


def timed_out(sample: Sample, scratch: Path) -> BaseException:
    return raised(sample.connector(statement_timeout=0.2), sample.slow_sql)


def bad_sql(sample: Sample, scratch: Path) -> BaseException:
    return raised(sample.connector(), "SELEC 1")


def postgres_anonymous_record(sample: Sample, scratch: Path) -> BaseException:
    """The driver cannot read records the server sent (an array of them; a record column
    itself is refused by its type first): the connection is fine."""
    return raised(sample.connector(), "SELECT ARRAY[ROW(1, 'a')]")


def arrow_conversion(sample: Sample, scratch: Path) -> BaseException:
    """Arrow's own error, as livedata's conversion of a source's answer raises it."""
    try:
        pa.array(["0000-00-00"]).cast(pa.date32())
    except pa.ArrowInvalid as exc:
        return exc
    raise AssertionError("Arrow cast a zero date")


def duckdb_file_cut_short(sample: Sample, scratch: Path) -> BaseException:
    path = scratch / "shrinking.duckdb"
    with duckdb.connect(str(path)) as db:
        db.execute(
            "CREATE TABLE t AS SELECT range AS a, repeat('x', 100) || range AS b FROM range(500000)"
        )
    connector = create_connector("shrinking", DuckDBSource(kind="duckdb", path=str(path)))
    connector.fetch(Statement("SELECT count(*) FROM t", ()))  # open, its catalog read
    os.truncate(path, 300_000)  # the table's blocks are gone while the source is open
    return raised(connector, "SELECT sum(length(b)) FROM t")


def pg_session_terminated(sample: Sample, scratch: Path) -> BaseException:
    return raised(sample.connector(), "SELECT pg_terminate_backend(pg_backend_pid())")


def pg_connection_refused(sample: Sample, scratch: Path) -> BaseException:
    """SQLSTATE 08001 from the server itself: dblink cannot reach the server it names."""
    where = f"host=127.0.0.1 port={closed_port()} dbname=x connect_timeout=2"
    return raised(sample.connector(), f"SELECT * FROM dblink('{where}', 'SELECT 1') AS t(a int)")


def pg_connection_closed(sample: Sample, scratch: Path) -> BaseException:
    """libpq's own error, with no SQLSTATE: a statement on a connection the server ended."""

    def terminate(connector: Connector[Any], conn: Any) -> None:
        failure(lambda: run(connector, conn, "SELECT pg_terminate_backend(pg_backend_pid())"))

    return on_its_connection(sample, terminate)


def mysql_killed_itself(sample: Sample, scratch: Path) -> BaseException:
    """MariaDB answers its own KILL with ER_CONNECTION_KILLED before closing."""
    return raised(sample.connector(), "KILL CONNECTION_ID()")


def _kill(connector: Connector[Any], conn: Any) -> None:
    session = run(connector, conn, "SELECT CONNECTION_ID() AS id")[0]["id"]
    config = connector.config
    with pymysql.connect(host=config.host, port=config.port, user="root") as admin:
        admin.cursor().execute(f"KILL {int(session)}")


def mysql_connection_lost(sample: Sample, scratch: Path) -> BaseException:
    """CR_SERVER_LOST: the server closed the connection (here, KILL from another session)."""
    return on_its_connection(sample, _kill)


def mysql_connection_closed_by_pymysql(sample: Sample, scratch: Path) -> BaseException:
    """After CR_SERVER_LOST PyMySQL closes the connection; using it again is its own error."""

    def kill_and_fail(connector: Connector[Any], conn: Any) -> None:
        _kill(connector, conn)
        failure(lambda: run(connector, conn, "SELECT 1"))  # CR_SERVER_LOST

    return on_its_connection(sample, kill_and_fail)


def mysql_idle_past_wait_timeout(sample: Sample, scratch: Path) -> BaseException:
    """CR_SERVER_GONE_ERROR: the server dropped a connection idle past its wait_timeout."""

    def idle_out(connector: Connector[Any], conn: Any) -> None:
        session = run(connector, conn, "SELECT CONNECTION_ID() AS id")[0]["id"]
        run(connector, conn, "SET SESSION wait_timeout = 1")
        config = connector.config
        with pymysql.connect(host=config.host, port=config.port, user="root") as admin:
            cursor = admin.cursor()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # until the server has closed it
                cursor.execute(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s", (session,)
                )
                if cursor.fetchone()[0] == 0:
                    return
                time.sleep(0.05)
        raise AssertionError("the server kept the idle connection")

    return on_its_connection(sample, idle_out)


def sqlite_file(scratch: Path, wal: bool = False) -> Path:
    path = scratch / "file.sqlite"
    with sqlite3.connect(path) as db:
        if wal:
            db.execute("PRAGMA journal_mode = WAL")
        db.execute("CREATE TABLE t (a, b)")
        db.executemany("INSERT INTO t VALUES (?, ?)", [(i, "x" * 200) for i in range(5000)])
    db.close()
    return path


def read_sqlite(path: Path) -> BaseException:
    source = SQLiteSource(kind="sqlite", path=path)
    return raised(create_connector("file", source), "SELECT count(*), max(b) FROM t")


def sqlite_locked_by_a_writer(sample: Sample, scratch: Path) -> BaseException:
    """A writer holds its exclusive lock past the driver's busy timeout (5 s)."""
    path = sqlite_file(scratch)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN EXCLUSIVE")
        writer.execute("INSERT INTO t VALUES (-1, 'pending')")
        return read_sqlite(path)
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def sqlite_journal_unreadable(sample: Sample, scratch: Path) -> BaseException:
    """SQLITE_IOERR_READ: the rollback journal beside the file cannot be read."""
    path = sqlite_file(scratch)
    (scratch / "file.sqlite-journal").mkdir()
    return read_sqlite(path)


def sqlite_pages_corrupt(sample: Sample, scratch: Path) -> BaseException:
    path = sqlite_file(scratch)
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xa5" * 3996  # page 1, past the header: the schema is garbage
    path.write_bytes(data)
    return read_sqlite(path)


def sqlite_wal_unopenable(sample: Sample, scratch: Path) -> BaseException:
    path = sqlite_file(scratch, wal=True)
    (scratch / "file.sqlite-wal").mkdir()
    return read_sqlite(path)


def sqlite_not_a_database(sample: Sample, scratch: Path) -> BaseException:
    path = scratch / "file.sqlite"
    path.write_bytes(b"this is not a database\n" * 200)
    return read_sqlite(path)


# ---- Built as the driver builds them: faults this machine cannot cause ----------------


def pg_crash_of_another_process(sample: Sample, scratch: Path) -> BaseException:
    """As ADBC raises libpq's FATAL error (status IO) when another server process crashed."""
    return adbc_driver_manager.OperationalError(
        "IO: [libpq] Execution error [PGRES_FATAL_ERROR]: FATAL:  terminating connection "
        "because of crash of another server process\n. SQLSTATE: 57P02",
        status_code=adbc_driver_manager.AdbcStatusCode.IO,
        sqlstate="57P02",
    )


def mysql_error_packet(errno: int, sqlstate: str, message: str) -> Cause:
    """What PyMySQL raises for the server's error packet, through its own decoder."""

    def build(sample: Sample, scratch: Path) -> BaseException:
        packet = b"\xff" + errno.to_bytes(2, "little") + f"#{sqlstate}{message}".encode()
        return failure(lambda: pymysql.err.raise_mysql_exception(packet))

    return build


def sqlite_shared_cache_conflict(sample: Sample, scratch: Path) -> BaseException:
    """As the sqlite3 module raises SQLITE_LOCKED: the class, the message, the code and name."""
    exc = sqlite3.OperationalError("database table is locked")
    exc.sqlite_errorcode = sqlite3.SQLITE_LOCKED  # type: ignore[attr-defined]
    exc.sqlite_errorname = "SQLITE_LOCKED"  # type: ignore[attr-defined]
    return exc


def case(
    kind: str, row: ErrorKey | None, error: type[LivedataError], cause: Cause, built: str = ""
) -> Any:
    """``built``: why this fault cannot be caused here, for the few built as the driver would."""
    name = "no-row" if row is None else row.__name__ if isinstance(row, type) else str(row)
    if row is None and error is UnsupportedType:
        name = "arrow-conversion"
    return pytest.param(kind, row, error, cause, id=f"{kind}-{name}{'-built' if built else ''}")


MYSQL_TIMEOUT = mysql_error_packet(
    3024, "HY000", "Query execution was interrupted, maximum statement execution time exceeded"
)
MYSQL_SHUTDOWN = mysql_error_packet(1053, "08S01", "Server shutdown in progress")
MYSQL_IDLE = mysql_error_packet(
    4031, "HY000", "The client was disconnected by the server because of inactivity."
)
CASES = [
    case("duckdb", duckdb.InterruptException, StatementTimeout, timed_out),
    case("duckdb", duckdb.IOException, SourceUnavailable, duckdb_file_cut_short),
    case("duckdb", None, QueryFailed, bad_sql),
    case("postgres", "57014", StatementTimeout, timed_out),
    case("postgres", "08", SourceUnavailable, pg_connection_refused),
    case("postgres", "57P01", SourceUnavailable, pg_session_terminated),
    case(
        "postgres",
        "57P02",
        SourceUnavailable,
        pg_crash_of_another_process,
        built="only a crash of the machine's shared server, which every other session uses",
    ),
    case("postgres", adbc_driver_manager.OperationalError, SourceUnavailable, pg_connection_closed),
    case("postgres", None, QueryFailed, bad_sql),
    case("mysql", 1969, StatementTimeout, timed_out),
    case("mysql", 3024, StatementTimeout, MYSQL_TIMEOUT, built="MySQL's; MariaDB says 1969"),
    case(
        "mysql",
        1053,
        SourceUnavailable,
        MYSQL_SHUTDOWN,
        built="only a shutdown of the machine's shared server, which every other session uses",
    ),
    case("mysql", 1927, SourceUnavailable, mysql_killed_itself),
    case(
        "mysql",
        4031,
        SourceUnavailable,
        MYSQL_IDLE,
        built="MySQL 8.0.24+; MariaDB closes an idle connection without it (2006 follows)",
    ),
    case("mysql", 2006, SourceUnavailable, mysql_idle_past_wait_timeout),
    case("mysql", 2013, SourceUnavailable, mysql_connection_lost),
    case("mysql", pymysql.InterfaceError, SourceUnavailable, mysql_connection_closed_by_pymysql),
    case("mysql", None, QueryFailed, bad_sql),
    case("sqlite", "SQLITE_INTERRUPT", StatementTimeout, timed_out),
    case("sqlite", "SQLITE_BUSY", SourceUnavailable, sqlite_locked_by_a_writer),
    case(
        "sqlite",
        "SQLITE_LOCKED",
        SourceUnavailable,
        sqlite_shared_cache_conflict,
        built="needs a cache shared between connections or two statements on one connection; "
        "the connector opens private caches and runs one statement per connection",
    ),
    case("sqlite", "SQLITE_IOERR", SourceUnavailable, sqlite_journal_unreadable),
    case("sqlite", "SQLITE_CORRUPT", SourceUnavailable, sqlite_pages_corrupt),
    case("sqlite", "SQLITE_CANTOPEN", SourceUnavailable, sqlite_wal_unopenable),
    case("sqlite", "SQLITE_NOTADB", SourceUnavailable, sqlite_not_a_database),
    case("sqlite", None, QueryFailed, bad_sql),
    case("postgres", "livedata:unreadable", UnsupportedType, postgres_anonymous_record),
    # Never blamed on the source: the source answered, livedata could not convert it.
    *(case(kind, None, UnsupportedType, arrow_conversion) for kind in KINDS),
]


@pytest.mark.parametrize(("kind", "row", "error", "cause"), CASES)
def test_a_driver_error_reaches_its_row(
    sample_of: Callable[[str], Sample],
    tmp_path: Path,
    kind: str,
    row: ErrorKey | None,
    error: type[LivedataError],
    cause: Cause,
) -> None:
    sample = sample_of(kind)
    exc = cause(sample, tmp_path)
    connector = sample.connector()
    try:
        assert connector.errors.row(exc) == row, repr(exc)
        assert type(connector.translate(exc)) is error
    finally:
        connector.close()


def test_every_row_of_every_table_has_a_case() -> None:
    cases = {(p.values[0], p.values[1]) for p in CASES if p.values[1] is not None}
    rows = {
        (kind, key)
        for kind in registry.kinds()
        for key in registry.connector_class(kind).errors.rows
    }
    assert cases == rows
