"""PostgreSQL through ADBC: ``$1`` parameters bound by the driver, results as Arrow.

The session is read-only and PostgreSQL itself enforces the statement timeout, both set as
libpq ``options`` at connect time, so no statement can turn them off for the next one by
accident. Autocommit keeps an idle pooled connection out of any transaction.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc_pg
import pyarrow as pa
import pyarrow.compute as pc

from livedata.catalog import PostgresSource
from livedata.connectors.base import Connector
from livedata.errors import LivedataError, QueryFailed, StatementTimeout
from livedata.sql import Statement

_UNAVAILABLE_SQLSTATES = ("57P01", "57P02", "57P03")  # admin shutdown, crash, cannot connect now


class PostgresConnector(Connector[adbc_pg.Connection]):
    dialect = "postgres"
    paramstyle = "dollar"

    def _connect(self) -> adbc_pg.Connection:
        config: PostgresSource = self.config
        password = f":{quote(config.password.resolve(), safe='')}" if config.password else ""
        host = f"[{config.host}]" if ":" in config.host else config.host
        options = (
            f"-c statement_timeout={math.ceil(config.statement_timeout * 1000)}"
            " -c default_transaction_read_only=on"
        )
        uri = (
            f"postgresql://{quote(config.user, safe='')}{password}@{host}:{config.port}/"
            f"{quote(config.database, safe='')}"
            # libpq counts whole seconds and treats anything below 2 as 2
            f"?connect_timeout={max(2, math.ceil(config.connect_timeout))}"
            f"&options={quote(options, safe='')}"
        )
        return adbc_pg.connect(uri, autocommit=True)

    def _execute(self, conn: adbc_pg.Connection, statement: Statement) -> pa.Table:
        with conn.cursor() as cursor:
            cursor.execute(statement.text, statement.params or None)
            table: pa.Table = cursor.fetch_arrow_table()
        return _plain(table)

    def _translate(self, exc: Exception) -> LivedataError:
        state = getattr(exc, "sqlstate", None) or ""
        if state == "57014":
            return StatementTimeout(
                f"Source {self.name!r} cancelled the query after "
                f"{self.config.statement_timeout:g} s.",
                source=self.name,
            )
        if (
            state.startswith("08")
            or state in _UNAVAILABLE_SQLSTATES
            or (not state and isinstance(exc, adbc_driver_manager.OperationalError))
        ):
            return self.unavailable("the connection failed")
        return QueryFailed(
            f"Source {self.name!r} rejected the query: {_message(exc)}", source=self.name
        )


def _plain(table: pa.Table) -> pa.Table:
    """Replace the driver's extension types with the plain ones the other connectors return.

    NUMERIC arrives as text: it becomes a decimal with the column's declared precision and
    scale, or, for a NUMERIC without them (``sum()`` of a decimal), the largest scale among
    its values. UUID becomes its canonical text, JSON its text.
    """
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        if isinstance(field.type, pa.UuidType):
            column = pa.array(
                [None if u is None else str(u) for u in column.to_pylist()], pa.string()
            )
        elif isinstance(field.type, pa.BaseExtensionType):
            metadata = field.metadata or {}
            column = pa.chunked_array([c.storage for c in column.chunks], field.type.storage_type)
            if metadata.get(b"POSTGRESQL:type") == b"numeric":
                column = _decimal(column, int(metadata.get(b"POSTGRESQL:typmod", b"-1")))
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


def _decimal(column: pa.ChunkedArray, typmod: int) -> pa.ChunkedArray:
    if typmod >= 4:
        precision, scale = (typmod - 4) >> 16, (typmod - 4) & 0xFFFF
    else:
        dot = pc.find_substring(column, ".")
        digits = pc.if_else(
            pc.less(dot, 0), 0, pc.subtract(pc.subtract(pc.utf8_length(column), dot), 1)
        )
        precision, scale = 38, (pc.max(digits).as_py() or 0)
    decimal = pa.decimal128 if precision <= 38 else pa.decimal256
    try:
        return pc.cast(column, decimal(precision, scale))
    except pa.ArrowInvalid:  # NaN, infinities, or more digits than Arrow holds: keep the text
        return column


def _message(exc: Exception) -> str:
    """The server's own message, without the driver's prefixes and the query echo."""
    details = dict(getattr(exc, "details", None) or ())
    primary = details.get(b"PG_DIAG_MESSAGE_PRIMARY")
    if primary:
        return bytes(primary).decode(errors="replace")
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
