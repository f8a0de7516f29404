"""A SQLite database file holding the rows in one table, written and read by the ADBC driver
(the same bulk paths as the SQLite connector). SQLite has five storage classes, so most Arrow
types come back as integers, doubles or text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from livedata.cache.formats.base import CacheFormat, require, scratch_file, through_file
from livedata.cache.formats.coerce import coerce, nested


class SQLite(CacheFormat):
    name = "sqlite"
    description = "a SQLite database file (ADBC bulk ingest and fetch)"
    lossless = False  # dates, timestamps, decimals as text; booleans as integers

    def dumps(self, table: pa.Table) -> bytes:
        sqlite = _driver()  # on first use: it imports pyarrow.dataset

        def write(path: Path) -> None:
            with sqlite.connect(str(path)) as conn, conn.cursor() as cursor:
                cursor.adbc_ingest("result", coerce(table, _unsupported))
                conn.commit()

        return through_file(".sqlite", write)

    def loads(self, data: memoryview) -> pa.Table:
        sqlite = _driver()
        with (
            scratch_file(".sqlite", data) as path,
            sqlite.connect(str(path)) as conn,
            conn.cursor() as cursor,
        ):
            cursor.execute("SELECT * FROM result")
            return cursor.fetch_arrow_table()


def _driver() -> Any:
    return require("adbc_driver_sqlite.dbapi", "adbc-driver-sqlite")


def _unsupported(kind: pa.DataType) -> bool:
    return bool(
        nested(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_time(kind)
        or pa.types.is_uint64(kind)
    )
