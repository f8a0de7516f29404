"""MySQL and MariaDB through PyMySQL, rows turned into Arrow one column at a time.

PyMySQL's decoders are switched off, so every value arrives as text and Arrow casts each
column to the type the server declared: Arrow's casts are faster than PyMySQL's Python
conversions, and a zero-row result still gets its schema. The session is read-only and the
server enforces the statement timeout (MariaDB's max_statement_time, MySQL's
max_execution_time).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Literal

import pyarrow as pa
import pymysql
from pydantic import Field
from pymysql.constants import FIELD_TYPE, FLAG

from livedata.connectors.base import Connector, Cursor, ErrorTable, Fault
from livedata.connectors.config import ServerSource
from livedata.errors import UnsupportedType
from livedata.sql import Statement


class MySQLSource(ServerSource):
    kind: Literal["mysql"]
    port: int = Field(default=3306, ge=1, le=65535)
    user: str = "root"


_ENCODERS = {k: v for k, v in pymysql.converters.conversions.items() if not isinstance(k, int)}
_T = FIELD_TYPE
_TYPES: dict[int, pa.DataType] = {
    **dict.fromkeys((_T.TINY, _T.SHORT, _T.LONG, _T.LONGLONG, _T.INT24, _T.YEAR), pa.int64()),
    **dict.fromkeys((_T.FLOAT, _T.DOUBLE), pa.float64()),
    **dict.fromkeys((_T.DATE, _T.NEWDATE), pa.date32()),
    **dict.fromkeys((_T.DATETIME, _T.TIMESTAMP), pa.timestamp("us")),
    _T.TIME: pa.duration("us"),  # -838:59:59 to 838:59:59: a duration, not a time of day
    _T.NULL: pa.null(),
    _T.JSON: pa.json_(),  # MySQL's; MariaDB's JSON is LONGTEXT on the wire, so text
}
_TYPE_NAMES = {code: name for name, code in vars(FIELD_TYPE).items() if isinstance(code, int)}
_BINARY_CHARSET = 63
_ACCOUNT = re.compile(r"'[^']*'@'[^']*'")  # "denied to user 'app'@'10.0.0.5'"


def _errno(exc: BaseException) -> int | None:
    """The server's (or the client library's) error number; PyMySQL's own error for a
    connection it has closed carries 0, no number."""
    code = exc.args[0] if isinstance(exc, pymysql.MySQLError) and exc.args else None
    return code if isinstance(code, int) and code else None


def _reason(exc: BaseException) -> str:
    """The server's message, without the account it names."""
    message = str(exc.args[1]) if _errno(exc) is not None and len(exc.args) > 1 else str(exc)
    return _ACCOUNT.sub("(the source's account)", message)


# Errors while connecting never come here: each of them is "unavailable" (Connector._open).
ERRORS = ErrorTable(
    {
        1969: Fault.TIMED_OUT,  # ER_STATEMENT_TIMEOUT: MariaDB's max_statement_time
        3024: Fault.TIMED_OUT,  # ER_QUERY_TIMEOUT: MySQL's max_execution_time
        1053: Fault.UNAVAILABLE,  # ER_SERVER_SHUTDOWN: the server is shutting down
        1927: Fault.UNAVAILABLE,  # ER_CONNECTION_KILLED (MariaDB)
        4031: Fault.UNAVAILABLE,  # ER_CLIENT_INTERACTION_TIMEOUT (MySQL): idle past wait_timeout
        2006: Fault.UNAVAILABLE,  # CR_SERVER_GONE_ERROR: writing to a connection the server closed
        2013: Fault.UNAVAILABLE,  # CR_SERVER_LOST: the connection broke during a query
        pymysql.InterfaceError: Fault.UNAVAILABLE,  # a connection PyMySQL closed after an error
    },
    code=_errno,
    reason=_reason,
)


# Global privileges that let SQL reach past the database, read-only transaction or not.
_DANGEROUS_PRIVILEGES = {
    "FILE": "has FILE (reads server files with LOAD_FILE, writes them with INTO OUTFILE)",
    "SUPER": "has SUPER (may change server settings, such as read_only)",
}
_PRIVILEGES = (
    "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES"
    " WHERE GRANTEE = CONCAT(\"'\", SUBSTRING_INDEX(CURRENT_USER(), '@', 1), \"'@'\","
    " SUBSTRING_INDEX(CURRENT_USER(), '@', -1), \"'\")"
)


class MySQLConnector(Connector[pymysql.Connection]):
    kind = "mysql"
    config_model = MySQLSource
    dialect = "mysql"
    paramstyle = "format"
    errors = ERRORS
    columns_sql = (
        "SELECT column_name, is_nullable = 'YES' AS nullable FROM information_schema.columns "
        "WHERE table_name = :table AND table_schema = COALESCE(:schema, DATABASE()) "
        "ORDER BY ordinal_position"
    )

    def _connect(self) -> pymysql.Connection:
        config: MySQLSource = self.config
        conn = pymysql.connect(
            host=config.host,
            port=config.port,
            user=config.user,
            database=config.database,
            password=config.password.resolve() if config.password else "",
            charset="utf8mb4",
            conv=_ENCODERS,
            autocommit=True,
            connect_timeout=config.connect_timeout,
            # The server stops a statement at statement_timeout; no answer long after that
            # means the server or the network is gone.
            read_timeout=config.statement_timeout + config.connect_timeout,
        )
        try:
            with conn.cursor() as cursor:
                cursor.execute("SET SESSION TRANSACTION READ ONLY")
                if "mariadb" in conn.get_server_info().lower():
                    cursor.execute(
                        "SET SESSION max_statement_time = %s", (config.statement_timeout,)
                    )
                else:
                    cursor.execute(
                        "SET SESSION max_execution_time = %s",
                        (math.ceil(config.statement_timeout * 1000),),
                    )
        except BaseException:
            conn.close()
            raise
        return conn

    def _execute(self, conn: pymysql.Connection, statement: Statement) -> Cursor:
        with conn.cursor() as cursor:
            cursor.execute(statement.text, statement.params)
            rows = cursor.fetchall()
            # The description leaves out what tells text from binary and signed from unsigned.
            fields = cursor._result.fields if cursor.description else []
        columns = zip(*rows, strict=True) if rows else ([] for _ in fields)
        return Cursor.of(
            pa.Table.from_arrays(
                [_column(field, values) for field, values in zip(fields, columns, strict=True)],
                names=[field.name for field in fields],
            )
        )

    def excess_privileges(self) -> list[str]:
        granted = self.fetch(Statement(_PRIVILEGES, ())).column(0).to_pylist()
        return [why for privilege, why in _DANGEROUS_PRIVILEGES.items() if privilege in granted]


def _column(field: Any, values: Sequence[Any]) -> pa.Array:
    arrow_type = _arrow_type(field)
    if arrow_type in (pa.string(), pa.binary(), pa.null(), pa.json_()):
        return pa.array(values, arrow_type)
    if arrow_type == pa.duration("us"):
        return pa.array([None if v is None else _microseconds(v) for v in values], arrow_type)
    try:
        return pa.array(values, pa.string()).cast(arrow_type)
    except pa.ArrowInvalid as exc:  # a zero date ("0000-00-00") has no Arrow value
        raise UnsupportedType.for_column(
            field.name,
            _TYPE_NAMES.get(field.type_code, str(arrow_type)),
            f"Arrow cannot hold one of its values ({exc})",
            "cast it to text, or map zero dates to NULL with NULLIF(col, 0)",
        ) from exc


def _microseconds(time: str) -> int:
    """A TIME value ("-838:59:59.500000") in microseconds; Arrow casts no text to a duration."""
    hours, minutes, seconds = time.removeprefix("-").split(":")
    whole, _, fraction = seconds.partition(".")
    value = ((int(hours) * 60 + int(minutes)) * 60 + int(whole)) * 10**6
    value += int(fraction.ljust(6, "0")[:6])
    return -value if time.startswith("-") else value


def _arrow_type(field: Any) -> pa.DataType:
    if field.type_code in (FIELD_TYPE.DECIMAL, FIELD_TYPE.NEWDECIMAL):
        # The display length counts the decimal point and, unless unsigned, the sign.
        precision = field.length - (field.scale > 0) - (not field.flags & FLAG.UNSIGNED)
        return (pa.decimal128 if precision <= 38 else pa.decimal256)(precision, field.scale)
    if field.type_code == FIELD_TYPE.LONGLONG and field.flags & FLAG.UNSIGNED:
        return pa.uint64()  # BIGINT UNSIGNED goes past int64
    if field.type_code in _TYPES:
        return _TYPES[field.type_code]
    return pa.binary() if field.charsetnr == _BINARY_CHARSET else pa.string()
