"""PostgreSQL through ADBC: ``$1`` parameters bound by the driver, results as Arrow.

The session is read-only and PostgreSQL itself enforces the statement timeout, both set as
libpq ``options`` at connect time, so no statement can turn them off for the next one by
accident. Autocommit keeps an idle pooled connection out of any transaction.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc_pg
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from adbc_driver_postgresql import StatementOptions
from pydantic import Field

from livedata.connectors.base import CAST, Connector, Cursor, ErrorTable, Fault
from livedata.connectors.config import ServerSource
from livedata.errors import UnsupportedType
from livedata.sql import Statement

_EXPLAIN = "EXPLAIN (FORMAT JSON)"


class PostgresSource(ServerSource):
    kind: Literal["postgres"]
    port: int = Field(default=5432, ge=1, le=65535)
    user: str = "postgres"


_UNREADABLE = "livedata:unreadable"


def _sqlstate(exc: BaseException) -> str | None:
    """The server's SQLSTATE; for the driver's failure to read a value the server sent (an
    anonymous record), which carries none, a code of our own."""
    code = getattr(exc, "sqlstate", None) or None
    if code is None and "ReadRecord failed" in str(exc):
        return _UNREADABLE
    return code


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
        _UNREADABLE: Fault.UNREADABLE,  # the connection is fine: the driver misread a value
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
            shape = _shape(reader.schema.serialize().to_pybytes())
            if shape.whole:  # an undeclared numeric: its scale is known only at the end
                table = _plain(reader.read_all())
                cursor.close()
                return Cursor.of(table)
        except BaseException:
            cursor.close()
            raise
        return Cursor(shape.schema, _converted(reader, shape), cursor.close)

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
    scale, or, for a NUMERIC without them (``sum()`` of a decimal, arrays), the largest scale
    among its values. UUID becomes its canonical text; JSON stays Arrow's json type, so its
    values are served as JSON. Types the driver sends in PostgreSQL's binary form (inet,
    ranges, bit strings...) and money (integer cents, without the currency's scale) are
    refused by name.
    """
    columns = [
        _plain_column(field, column)
        for field, column in zip(table.schema, table.columns, strict=True)
    ]
    fields = [
        _field(field, column.type) for field, column in zip(table.schema, columns, strict=True)
    ]
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


_TEXT_TYPES = {"text", "varchar", "bpchar", "name", "char"}


def _field(raw: pa.Field, kind: pa.DataType) -> pa.Field:
    """The column's field; one that arrives as text but is no text type in PostgreSQL (a
    uuid, an enum) names that type, so a filter's value is cast to it (``filters``)."""
    source = (raw.metadata or {}).get(b"POSTGRESQL:type", b"").decode()
    if kind == pa.string() and source and source not in _TEXT_TYPES:
        return pa.field(raw.name, kind, metadata={CAST: source.encode()})
    return pa.field(raw.name, kind)


def _plain_column(field: pa.Field, column: pa.ChunkedArray) -> pa.ChunkedArray:
    metadata = field.metadata or {}
    if isinstance(field.type, pa.UuidType):
        return pa.chunked_array(
            [[None if u is None else str(u) for u in column.to_pylist()]], pa.string()
        )
    if isinstance(field.type, pa.JsonType):
        return column
    if isinstance(field.type, pa.OpaqueType) and field.type.type_name == "numeric":
        return _decimal(_storage(column), int(metadata.get(b"POSTGRESQL:typmod", b"-1")))
    if field.type in _INFINITIES:
        return _infinities(column, *_INFINITIES[field.type])
    if pa.types.is_list(field.type):  # arrays: their items as the same types at the top
        item = field.type.value_type
        if isinstance(item, pa.OpaqueType):  # numeric, the only opaque type _opaque lets by
            return _items(column, lambda values: _decimal(_storage(values), -1))
        if item in _INFINITIES:
            return _items(column, lambda values: _infinities(values, *_INFINITIES[item]))
    return column


def _refuse_unservable(schema: pa.Schema) -> None:
    """Refuse, before a row is read, the columns no conversion can serve."""
    for field in schema:
        kind = (field.metadata or {}).get(b"POSTGRESQL:type", b"").decode()
        if kind == "record":
            raise UnsupportedType.for_column(
                field.name,
                "record",
                "the driver cannot read anonymous records",
                "select its fields as columns",
            )
        if kind == "money" or _opaque(field.type):
            why = (
                "the driver sends it as integer cents"
                if kind == "money"
                else "the driver sends it in PostgreSQL's binary form"
            )
            fix = (
                "cast it to numeric" if kind == "money" else f"cast it to text ({field.name}::text)"
            )
            raise UnsupportedType.for_column(field.name, kind or str(field.type), why, fix)


def _opaque(kind: pa.DataType) -> bool:
    """Whether values of ``kind`` hold PostgreSQL's binary form (inet, ranges, bit...);
    numeric arrives opaque too, but as text."""
    if pa.types.is_list(kind):
        return _opaque(kind.value_type)
    return isinstance(kind, pa.OpaqueType) and kind.type_name != "numeric"


def _storage(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pa.chunked_array([c.storage for c in column.chunks], column.type.storage_type)


def _items(
    column: pa.ChunkedArray, convert: Callable[[pa.ChunkedArray], pa.ChunkedArray]
) -> pa.ChunkedArray:
    """A list column with ``convert`` applied to its items."""
    array = column.combine_chunks()
    values = convert(pa.chunked_array([array.values])).combine_chunks()
    return pa.chunked_array([pa.ListArray.from_arrays(array.offsets, values, mask=array.is_null())])


# The driver moves PostgreSQL's infinities (the largest and smallest values of its types) from
# PostgreSQL's epoch (2000) to Arrow's (1970) and so wraps them around; they become the Arrow
# type's own extremes, which DuckDB uses for its infinities too.
_INFINITIES = {
    pa.date32(): (pa.int32(), -(2**31) + 10_957 - 1, 2**31 - 1),
    **{
        pa.timestamp("us", tz): (pa.int64(), -(2**63) + 946_684_800_000_000 - 1, 2**63 - 1)
        for tz in (None, "UTC")
    },
}


def _infinities(
    column: pa.ChunkedArray, storage: pa.DataType, wrapped: int, highest: int
) -> pa.ChunkedArray:
    """``wrapped``: where +infinity lands; -infinity lands one above it."""
    raw = column.cast(storage)
    low = pc.min(raw).as_py()
    if low is None or low > wrapped + 1:
        return column
    raw = pc.if_else(pc.equal(raw, wrapped), pa.scalar(highest, storage), raw)
    raw = pc.if_else(pc.equal(raw, wrapped + 1), pa.scalar(-highest, storage), raw)
    return raw.cast(column.type)


def _reader(cursor: adbc_pg.Cursor) -> pa.RecordBatchReader:
    """The driver manager's own reader: unlike the plain pyarrow one that
    ``fetch_record_batch`` returns (apache/arrow-adbc#1523), it raises the driver's errors
    with their SQLSTATE, which tells a statement timeout from a lost connection."""
    results = getattr(cursor, "_results", None)
    reader = getattr(results, "reader", None)
    return cursor.fetch_record_batch() if reader is None else reader


@dataclass(frozen=True)
class _Shape:
    """What the batches of one schema the driver sends become."""

    schema: pa.Schema  # the plain one (``_plain``); the driver's own when ``whole``
    whole: bool  # an undeclared numeric: the result is read to its end first
    rewrites: bool  # some column's values change; without, only the fields do


# Working a schema's conversion out cost more instructions than reading the 249 rows of the
# sample table (callgrind, bench/README.md "small_miss.py"), and a dashboard sends the same
# few statements again and again, so it is done once per distinct schema. Keyed by the
# serialized schema: schemas compare equal whatever their fields' metadata, which says the
# PostgreSQL type.
@functools.lru_cache(maxsize=256)
def _shape(serialized: bytes) -> _Shape:
    raw = pa.ipc.read_schema(pa.py_buffer(serialized))
    _refuse_unservable(raw)
    if _undeclared_numeric(raw):  # its type is known only once every value is read
        return _Shape(raw, whole=True, rewrites=True)
    plain = _plain(raw.empty_table()).schema
    rewrites = any(_rewritten(r, p) for r, p in zip(raw, plain, strict=True))
    return _Shape(plain, whole=False, rewrites=rewrites)


def _rewritten(raw: pa.Field, plain: pa.Field) -> bool:
    """Whether ``_plain_column`` may change a column's values, not only its field."""
    item = raw.type.value_type if pa.types.is_list(raw.type) else raw.type
    return raw.type != plain.type or item in _INFINITIES


def _converted(reader: pa.RecordBatchReader, shape: _Shape) -> Iterator[pa.RecordBatch]:
    schema = shape.schema
    for raw in reader:
        if not shape.rewrites:
            yield pa.RecordBatch.from_arrays(raw.columns, schema=schema)
            continue
        table = _plain(pa.Table.from_batches([raw], reader.schema))
        if table.schema != schema:
            changed = next(f for f, g in zip(table.schema, schema, strict=True) if f != g)
            raise UnsupportedType.for_column(
                changed.name,
                "numeric",
                "it holds NaN or Infinity, which a decimal cannot",
                "cast it to float8 or text",
            )
        yield from table.to_batches()


def _undeclared_numeric(schema: pa.Schema) -> bool:
    return any(
        (field.metadata or {}).get(b"POSTGRESQL:type") == b"_numeric"
        or (
            (field.metadata or {}).get(b"POSTGRESQL:type") == b"numeric"
            and int((field.metadata or {}).get(b"POSTGRESQL:typmod", b"-1")) < 4
        )
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
