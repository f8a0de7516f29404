"""SQLite through the standard library, opened read-only; rows become Arrow column by column.

ADBC's SQLite driver fetches about 4x faster (0.13 s against 0.53 s for the 120,515 sample
lineitem rows), but it cannot stop a statement (its cancel is not implemented), it fails a
column whose values change type after its first batch, and it types every column of an
empty result as int64. The standard driver stops a statement at its deadline through a
progress handler, which, unlike a timer calling ``interrupt()``, cannot hit the next
statement on a pooled connection.

SQLite types values, not columns: a column's Arrow type is inferred from its values, dates
stay the ISO text SQLite stores, and a column with no non-null value (or no row) has type null.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Self

import pyarrow as pa
from pydantic import Field

from livedata.connectors.base import Connector, Cursor, ErrorTable, Fault
from livedata.connectors.config import SourceBase
from livedata.errors import UnsupportedType
from livedata.sql import Statement

_PROGRESS_STEPS = 10_000  # virtual machine steps between two deadline checks


class SQLiteSource(SourceBase):
    kind: Literal["sqlite"]
    path: Path = Field(description="Database file, opened read-only, relative to the catalog.")

    def resolve_paths(self, base: Path) -> Self:
        return self.model_copy(update={"path": base / self.path})


def _error_name(exc: BaseException) -> str | None:
    return getattr(exc, "sqlite_errorname", None)


# Keyed by SQLite's primary result codes; the driver names the extended one (SQLITE_IOERR_READ),
# which matches its primary's row.
ERRORS = ErrorTable(
    {
        "SQLITE_INTERRUPT": Fault.TIMED_OUT,  # the progress handler stopped it at the deadline
        "SQLITE_BUSY": Fault.UNAVAILABLE,  # a writer held its lock past the busy timeout
        "SQLITE_LOCKED": Fault.UNAVAILABLE,  # a conflict in a cache shared between connections
        "SQLITE_IOERR": Fault.UNAVAILABLE,
        "SQLITE_CORRUPT": Fault.UNAVAILABLE,
        "SQLITE_CANTOPEN": Fault.UNAVAILABLE,  # a file beside the database (its journal, its WAL)
        "SQLITE_NOTADB": Fault.UNAVAILABLE,
    },
    code=_error_name,
    lost="cannot read the database file",
)


class SQLiteConnector(Connector[sqlite3.Connection]):
    kind = "sqlite"
    config_model = SQLiteSource
    dialect = "sqlite"
    paramstyle = "qmark"
    errors = ERRORS
    # A result's column types are its values' (sqlite3 reports none): with no row, every
    # column would be of unknown type, and no typed filter would apply to it.
    probe_rows = 1000
    columns_sql = (
        'SELECT name AS column_name, "notnull" = 0 AS nullable '
        "FROM pragma_table_info(:table, :schema) ORDER BY cid"
    )

    def _connect(self) -> sqlite3.Connection:
        config: SQLiteSource = self.config
        conn = sqlite3.connect(
            f"{config.path.resolve().as_uri()}?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,  # the pool hands it between threads
        )
        conn.execute("PRAGMA query_only = ON")  # mode=ro still allows TEMP tables
        # mode=ro still lets SQL attach (and so create) other files, and change pragmas such
        # as query_only back: refuse both.
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.set_authorizer(_read_only)
        return conn

    def _execute(self, conn: sqlite3.Connection, statement: Statement) -> Cursor:
        deadline = time.monotonic() + self.config.statement_timeout
        conn.set_progress_handler(lambda: time.monotonic() > deadline, _PROGRESS_STEPS)
        try:
            cursor = conn.execute(statement.text, [_param(p) for p in statement.params])
            rows = cursor.fetchall()
        finally:
            conn.set_progress_handler(None, 0)
        names = [d[0] for d in cursor.description or ()]
        columns = zip(*rows, strict=True) if rows else ([] for _ in names)
        return Cursor.of(
            pa.Table.from_arrays(
                [_column(name, values) for name, values in zip(names, columns, strict=True)],
                names=names,
            )
        )


def _read_only(action: int, name: str | None, value: str | None, *_: object) -> int:
    """SQLite's authorizer: any pragma that sets a value is denied; reads pass. The argument
    of ``table_info`` names a table: it reads (how /queries learns what is NOT NULL)."""
    if action == sqlite3.SQLITE_PRAGMA and value is not None and name != "table_info":
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _param(value: Any) -> Any:
    """Dates as the ISO text SQLite's date functions read (Python's own adapters are deprecated)."""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return value.isoformat() if isinstance(value, dt.date) else value


def _column(name: str, values: Sequence[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        kinds = sorted({type(v).__name__ for v in values if v is not None})
        raise UnsupportedType.for_column(
            name, " and ".join(kinds), "its values mix types, and a column has one", "CAST it"
        ) from exc
