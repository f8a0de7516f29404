"""A DuckDB database file holding the rows in one table: DuckDB's own compressed columnar
storage, written from Arrow and read back to Arrow by DuckDB."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from livedata.cache.formats.base import CacheFormat, require, scratch_file, through_file


class DuckDBFile(CacheFormat):
    name = "duckdb"
    description = "a DuckDB database file (one table)"
    lossless = False  # zones become the session's; dictionaries and large types are not kept

    # The study-only formats import their library on first use: every process that runs the
    # cache imports this module, and most never touch these formats.
    def dumps(self, table: pa.Table) -> bytes:
        duckdb = require("duckdb", "duckdb")

        def write(path: Path) -> None:
            with duckdb.connect(str(path)) as db:
                db.register("arrow_input", table)
                db.execute("CREATE TABLE result AS SELECT * FROM arrow_input")

        return through_file(".duckdb", write)

    def loads(self, data: memoryview) -> pa.Table:
        duckdb = require("duckdb", "duckdb")
        with scratch_file(".duckdb", data) as path, duckdb.connect(str(path), read_only=True) as db:
            return db.sql("SELECT * FROM result").to_arrow_table()
