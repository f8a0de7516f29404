"""DuckDB, embedded: one in-process database, a cursor per worker thread.

DuckDB has no server-side statement timeout, so a timer interrupts the cursor. After
loading, external access is disabled and the configuration locked: no request path can
read local files, attach databases or reach the network through this source.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any, Literal, Self

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, model_validator

from livedata.connectors.base import CAST, Connector, Cursor, ErrorTable, Fault
from livedata.connectors.config import SourceBase
from livedata.connectors.watchdog import Watchdog
from livedata.errors import UnsupportedType
from livedata.sql import Statement

WATCHDOG = Watchdog()


class DuckDBSource(SourceBase):
    kind: Literal["duckdb"]
    path: str = Field(
        default=":memory:", description="Database file, opened read-only; :memory: for none."
    )
    load: dict[str, Path] = Field(
        default_factory=dict,
        description="Tables to load at start-up from Parquet/CSV files (name = path), "
        "relative to the catalog file.",
    )

    @model_validator(mode="after")
    def _load_into_memory_only(self) -> DuckDBSource:
        if self.load and self.path != ":memory:":
            raise ValueError("`load` builds its own database; leave `path` out when using it")
        return self

    def resolve_paths(self, base: Path) -> Self:
        path = self.path if self.path == ":memory:" else str(base / self.path)
        load = {table: base / file for table, file in self.load.items()}
        return self.model_copy(update={"path": path, "load": load})


# DuckDB's exceptions carry no code: their classes say it all.
ERRORS = ErrorTable(
    {
        duckdb.InterruptException: Fault.TIMED_OUT,  # the watchdog's interrupt at the deadline
        duckdb.IOException: Fault.UNAVAILABLE,  # the database file cannot be read
    },
    lost="cannot read the database file",
)


class DuckDBConnector(Connector[duckdb.DuckDBPyConnection]):
    kind = "duckdb"
    config_model = DuckDBSource
    dialect = "duckdb"
    paramstyle = "qmark"
    errors = ERRORS

    def __init__(self, name: str, config: DuckDBSource) -> None:
        super().__init__(name, config)
        self._database: duckdb.DuckDBPyConnection | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._open_lock = threading.Lock()

    def _root(self) -> duckdb.DuckDBPyConnection:
        with self._open_lock:
            if self._database is None:
                self._database = self._open_database()
            return self._database

    def _open_database(self) -> duckdb.DuckDBPyConnection:
        config: DuckDBSource = self.config
        path = config.path
        if config.load:
            # Load into a private file, then reopen it read-only: an in-memory database
            # would stay writable for as long as it lives.
            self._scratch = tempfile.TemporaryDirectory(prefix="livedata-duckdb-")
            path = str(Path(self._scratch.name) / f"{self.name}.duckdb")
            with duckdb.connect(path) as db:
                for table, file in config.load.items():
                    reader = "read_csv" if file.suffix == ".csv" else "read_parquet"
                    db.execute(
                        f"CREATE TABLE {_quote(table)} AS SELECT * FROM {reader}(?)",  # noqa: S608  # quoted identifier from the catalog, path bound
                        [str(file)],
                    )
                    if reader == "read_parquet":  # its required columns stay NOT NULL
                        for field in pq.read_schema(file):
                            if not field.nullable:
                                column = f"{_quote(table)} ALTER COLUMN {_quote(field.name)}"
                                db.execute(f"ALTER TABLE {column} SET NOT NULL")
        db = duckdb.connect(path, read_only=path != ":memory:")
        db.execute("SET enable_external_access = false")
        db.execute("SET lock_configuration = true")
        return db

    def _connect(self) -> duckdb.DuckDBPyConnection:
        return self._root().cursor()

    def _execute(self, conn: duckdb.DuckDBPyConnection, statement: Statement) -> Cursor:
        # The deadline holds until the last batch is read: DuckDB computes batches on demand.
        # An interrupt that lands just after the statement ends is harmless: DuckDB ignores
        # it on an idle connection (checked with duckdb 2.0), so the next query is not hit.
        cancel = WATCHDOG.after(self.config.statement_timeout, conn.interrupt)
        try:
            relation = conn.sql(statement.text, params=list(statement.params))
            reader = relation.to_arrow_reader()
        except BaseException:
            cancel()
            raise

        def close() -> None:
            cancel()
            reader.close()

        schema = _typed_schema(reader.schema, [str(kind) for kind in relation.types])
        if schema.equals(reader.schema, check_metadata=True):
            return Cursor(reader.schema, iter(reader), close)
        return Cursor(schema, (_typed(batch, schema) for batch in reader), close)

    def estimate(self, statement: Statement) -> float:
        """DuckDB estimates rows, not cost: the sum of every operator's estimated rows."""
        table = self.fetch(Statement(f"EXPLAIN (FORMAT JSON) {statement.text}", statement.params))
        return float(
            sum(_estimated_rows(node) for node in orjson.loads(table.column(1)[0].as_py()))
        )

    def close(self) -> None:
        super().close()
        with self._open_lock:
            if self._database is not None:
                self._database.close()
                self._database = None
            if self._scratch is not None:
                self._scratch.cleanup()
                self._scratch = None


# DuckDB types whose Arrow form loses what they hold.
_LOSSY = {
    "BIT": "DuckDB exports its internal bytes",
    "TIME WITH TIME ZONE": "DuckDB exports the time without its offset",
}


def _typed_schema(schema: pa.Schema, kinds: list[str]) -> pa.Schema:
    """Refuse the types whose Arrow form is lossy or has no encoding (BIT, TIMETZ, BIGNUM,
    unions), before a row is read. DuckDB sends JSON and UUID columns (and a few others) as
    text. JSON is typed as JSON,
    so its values are served as JSON; the others name their DuckDB type, so a filter's value
    is cast to it (``livedata.filters``)."""
    fields = []
    for field, kind in zip(schema, kinds, strict=True):
        why = _LOSSY.get(kind)
        if why is None and (isinstance(field.type, pa.OpaqueType) or pa.types.is_union(field.type)):
            why = "Arrow receives it as a value JSON, CSV and Parquet cannot hold"
        if why is not None:
            raise UnsupportedType.for_column(field.name, kind, why, "cast it to text")
        if kind == "JSON":
            field = field.with_type(pa.json_())
        elif field.type == pa.string() and kind != "VARCHAR":
            field = field.with_metadata({CAST: kind.encode()})
        fields.append(field)
    return pa.schema(fields)


def _typed(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    columns = [
        pa.ExtensionArray.from_storage(field.type, column)
        if isinstance(field.type, pa.JsonType)
        else column
        for field, column in zip(schema, batch.columns, strict=True)
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _estimated_rows(node: dict[str, Any]) -> float:
    own = node.get("extra_info", {}).get("Estimated Cardinality", 0)
    return float(own) + sum(_estimated_rows(child) for child in node.get("children", []))


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
