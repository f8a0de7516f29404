"""PostgreSQL through ADBC: ``$1`` parameters bound by the driver, results as Arrow.

The session is read-only and PostgreSQL itself enforces the statement timeout, both set as
libpq ``options`` at connect time, so no statement can turn them off for the next one by
accident. Autocommit keeps an idle pooled connection out of any transaction.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Literal
from urllib.parse import quote

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc_pg
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from adbc_driver_postgresql import StatementOptions
from pydantic import Field

from livedata.connectors.base import Connector, Cursor, ErrorTable, Fault
from livedata.connectors.config import ServerSource
from livedata.sql import Statement

_EXPLAIN = "EXPLAIN (FORMAT JSON)"


class PostgresSource(ServerSource):
    kind: Literal["postgres"]
    port: int = Field(default=5432, ge=1, le=65535)
    user: str = "postgres"


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(exc, "sqlstate", None) or None


def _message(exc: BaseException) -> str:
    """The server's own message, without the driver's prefixes and the query it echoes."""
    primary = dict(getattr(exc, "details", None) or ()).get(b"PG_DIAG_MESSAGE_PRIMARY")
    return bytes(primary).decode(errors="replace") if primary else str(exc)


# Errors while connecting never come here: each of them is "unavailable" (Connector._open).
ERRORS = ErrorTable(
    {
        "57014": Fault.TIMED_OUT,  # query_canceled, by statement_timeout
        "08": Fault.UNAVAILABLE,  # connection exceptions
        "57P01": Fault.UNAVAILABLE,  # admin_shutdown: the session was terminated
        "57P02": Fault.UNAVAILABLE,  # crash_shutdown: another server process crashed
        # libpq's own errors carry no SQLSTATE: the server closed the connection, or had before.
        adbc_driver_manager.OperationalError: Fault.UNAVAILABLE,
    },
    code=_sqlstate,
    reason=_message,
)


# Held by the session's role, each lets SQL reach past the database, read-only or not.
_DANGEROUS_ROLES = {
    "superuser": "is a superuser (reads server files with pg_read_file, runs programs with "
    "COPY TO PROGRAM)",
    "read_files": "may read server files (pg_read_server_files)",
    "write_files": "may write server files (pg_write_server_files)",
    "run_programs": "may run programs on the server (pg_execute_server_program)",
}
_PRIVILEGES = (
    "SELECT rolsuper AS superuser,"
    " pg_has_role(current_user, 'pg_read_server_files', 'USAGE') AS read_files,"
    " pg_has_role(current_user, 'pg_write_server_files', 'USAGE') AS write_files,"
    " pg_has_role(current_user, 'pg_execute_server_program', 'USAGE') AS run_programs"
    " FROM pg_roles WHERE rolname = current_user"
)


# Batches of about this size (the driver's default is 16 MiB): a few are in memory at once
# while the next are read ahead of the encoder.
BATCH_BYTES = 4 << 20


class PostgresConnector(Connector[adbc_pg.Connection]):
    kind = "postgres"
    config_model = PostgresSource
    dialect = "postgres"
    paramstyle = "dollar"
    errors = ERRORS

    def _connect(self) -> adbc_pg.Connection:
        config: PostgresSource = self.config
        options = (
            f"-c statement_timeout={math.ceil(config.statement_timeout * 1000)}"
            " -c default_transaction_read_only=on"
        )
        return adbc_pg.connect(connection_uri(config, options), autocommit=True)

    def excess_privileges(self) -> list[str]:
        roles = self.fetch(Statement(_PRIVILEGES, ())).to_pylist()[0]
        if roles["superuser"]:  # holds every other one too
            return [_DANGEROUS_ROLES["superuser"]]
        return [why for role, why in _DANGEROUS_ROLES.items() if roles[role]]

    def _execute(self, conn: adbc_pg.Connection, statement: Statement) -> Cursor:
        cursor = conn.cursor()
        try:
            cursor.adbc_statement.set_options(
                **{StatementOptions.BATCH_SIZE_HINT_BYTES.value: str(BATCH_BYTES)}
            )
            if statement.text.startswith(_EXPLAIN):  # the driver's COPY cannot wrap an EXPLAIN
                cursor.adbc_statement.set_options(**{StatementOptions.USE_COPY.value: "false"})
            cursor.execute(statement.text, statement.params)
            reader = _reader(cursor)
            if _undeclared_numeric(reader.schema):  # its scale is known only at the end
                table = _plain(reader.read_all())
                cursor.close()
                return Cursor.of(table)
        except BaseException:
            cursor.close()
            raise
        schema = _plain(reader.schema.empty_table()).schema
        return Cursor(schema, _converted(reader, schema), cursor.close)

    def estimate(self, statement: Statement) -> float:
        """The planner's total cost (EXPLAIN without ANALYZE: nothing runs)."""
        table = self.fetch(Statement(f"{_EXPLAIN} {statement.text}", statement.params))
        return float(orjson.loads(table.column(0)[0].as_py())[0]["Plan"]["Total Cost"])


def connection_uri(config: PostgresSource, options: str = "") -> str:
    """The libpq URI for ``config``; ``options`` are server settings for the session."""
    password = f":{quote(config.password.resolve(), safe='')}" if config.password else ""
    host = f"[{config.host}]" if ":" in config.host else config.host
    uri = (
        f"postgresql://{quote(config.user, safe='')}{password}@{host}:{config.port}/"
        f"{quote(config.database, safe='')}"
        # libpq counts whole seconds and treats anything below 2 as 2
        f"?connect_timeout={max(2, math.ceil(config.connect_timeout))}"
    )
    return f"{uri}&options={quote(options, safe='')}" if options else uri


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


def _reader(cursor: adbc_pg.Cursor) -> pa.RecordBatchReader:
    """The driver manager's own reader: unlike the plain pyarrow one that
    ``fetch_record_batch`` returns (apache/arrow-adbc#1523), it raises the driver's errors
    with their SQLSTATE, which tells a statement timeout from a lost connection."""
    results = getattr(cursor, "_results", None)
    reader = getattr(results, "reader", None)
    return cursor.fetch_record_batch() if reader is None else reader


def _converted(reader: pa.RecordBatchReader, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    for raw in reader:
        table = _plain(pa.Table.from_batches([raw], reader.schema))
        if table.schema != schema:
            raise ValueError(
                "a NUMERIC column holds NaN or Infinity, which a decimal cannot; "
                "cast it to float or text in the SQL"
            )
        yield from table.to_batches()


def _undeclared_numeric(schema: pa.Schema) -> bool:
    return any(
        (field.metadata or {}).get(b"POSTGRESQL:type") == b"numeric"
        and int((field.metadata or {}).get(b"POSTGRESQL:typmod", b"-1")) < 4
        for field in schema
    )


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
