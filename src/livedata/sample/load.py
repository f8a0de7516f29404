"""Copy the bundled sample tables into a database server: the code base's only write path.

Connectors are read-only, so this opens its own writable connection. Tables are created from
DDL that sqlglot renders for the dialect, so each database gets its natural types (SQLite's
REAL and TEXT date, the others' DECIMAL(15, 2) and DATE), then filled by the driver's bulk
path. PostgreSQL and SQLite replace both tables in one transaction; MySQL commits DDL at once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi
import adbc_driver_sqlite.dbapi
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pymysql
from sqlglot import exp

from livedata.connectors.config import SourceBase
from livedata.connectors.mysql import MySQLSource
from livedata.connectors.postgres import PostgresSource, connection_uri
from livedata.connectors.sqlite import SQLiteSource
from livedata.errors import CatalogError, QueryFailed, SourceUnavailable

DATA = Path(__file__).parent / "data"
TABLES = ("world_country_list", "tpch_lineitem")
_SQL_TYPES = {
    pa.int32(): "INT",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.date32(): "DATE",
    pa.string(): "TEXT",
}
_MYSQL_BATCH_ROWS = 5_000  # PyMySQL folds each batch into a few multi-row INSERTs


def load_sample(name: str, config: SourceBase) -> dict[str, int]:
    """Create (replacing) the sample tables in source ``name``; return rows loaded per table."""
    if config.kind not in _LOADERS:
        raise CatalogError(
            f"Source {name!r} is {config.kind}; the sample loads into postgres, mysql or sqlite."
        )
    connect, ingest = _LOADERS[config.kind]
    tables = {table: pq.read_table(DATA / f"{table}.parquet") for table in TABLES}
    try:
        conn = connect(config)
    except Exception as exc:
        raise SourceUnavailable(
            f"Source {name!r} is unavailable (cannot connect); is it running?", source=name
        ) from exc
    try:
        with conn, conn.cursor() as cursor:
            for table, data in tables.items():
                for statement in _replace_table(table, data.schema, config.kind):
                    cursor.execute(statement)
                ingest(cursor, table, data)
            conn.commit()
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        raise QueryFailed(
            f"Loading the sample into {name!r} failed: {lines[0] if lines else type(exc).__name__}",
            source=name,
        ) from exc
    return {table: data.num_rows for table, data in tables.items()}


def _replace_table(table: str, schema: pa.Schema, dialect: str) -> list[str]:
    name = exp.Table(this=exp.to_identifier(table, quoted=True))
    columns = [
        exp.ColumnDef(
            this=exp.to_identifier(field.name, quoted=True),
            kind=exp.DataType.build(_sql_type(field.type)),
            constraints=[]
            if field.nullable
            else [exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())],
        )
        for field in schema
    ]
    drop = exp.Drop(tables=[name], kind="TABLE", exists=True)
    create = exp.Create(this=exp.Schema(this=name.copy(), expressions=columns), kind="TABLE")
    return [drop.sql(dialect), create.sql(dialect)]


def _sql_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_decimal(arrow_type):
        return f"DECIMAL({arrow_type.precision}, {arrow_type.scale})"
    return _SQL_TYPES[arrow_type]


def _connect_postgres(config: PostgresSource) -> Any:
    return adbc_driver_postgresql.dbapi.connect(connection_uri(config))


def _connect_mysql(config: MySQLSource) -> Any:
    return pymysql.connect(
        host=config.host,
        port=config.port,
        user=config.user,
        database=config.database,
        password=config.password.resolve() if config.password else "",
        connect_timeout=config.connect_timeout,
        charset="utf8mb4",
    )


def _connect_sqlite(config: SQLiteSource) -> Any:
    return adbc_driver_sqlite.dbapi.connect(str(config.path))


def _ingest_adbc(cursor: Any, table: str, data: pa.Table) -> None:
    cursor.adbc_ingest(table, data, mode="append")


def _ingest_sqlite(cursor: Any, table: str, data: pa.Table) -> None:
    # The driver cannot bind decimal128; the columns are REAL in SQLite anyway.
    for i, field in enumerate(data.schema):
        if pa.types.is_decimal(field.type):
            data = data.set_column(i, field.name, pc.cast(data.column(i), pa.float64()))
    _ingest_adbc(cursor, table, data)


def _ingest_mysql(cursor: Any, table: str, data: pa.Table) -> None:
    insert = exp.insert(
        exp.values([tuple(exp.var("%s") for _ in data.column_names)]),
        exp.Table(this=exp.to_identifier(table, quoted=True)),
        columns=[exp.to_identifier(column, quoted=True) for column in data.column_names],
    ).sql("mysql")
    for batch in data.to_batches(max_chunksize=_MYSQL_BATCH_ROWS):
        rows = zip(*(column.to_pylist() for column in batch.columns), strict=True)
        cursor.executemany(insert, list(rows))


_LOADERS: dict[str, tuple[Callable[[Any], Any], Callable[[Any, str, pa.Table], None]]] = {
    "postgres": (_connect_postgres, _ingest_adbc),
    "mysql": (_connect_mysql, _ingest_mysql),
    "sqlite": (_connect_sqlite, _ingest_sqlite),
}
