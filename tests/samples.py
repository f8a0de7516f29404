"""One source of each kind holding the sample tables, for the contract and HTTP suites.

PostgreSQL and MariaDB are the machine's own servers (database ``test``, started by .ci/run);
SQLite is a file this session writes; DuckDB loads the bundled Parquet files itself.
``LIVEDATA_TEST_DATABASE`` names another database on both servers (made when missing), so
two test sessions on one machine do not load the sample into the same tables at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livedata.connectors.base import Connector
from livedata.connectors.config import SecretRef
from livedata.connectors.duckdb import DuckDBSource
from livedata.connectors.mysql import MySQLSource
from livedata.connectors.postgres import PostgresSource
from livedata.connectors.registry import create_connector
from livedata.connectors.sqlite import SQLiteSource
from livedata.sample.load import DATA, TABLES, load_sample

TEST_DATABASE = os.environ.get("LIVEDATA_TEST_DATABASE", "test")
PG_DSN = f"host=127.0.0.1 port=5432 dbname={TEST_DATABASE} user=postgres"
PASSWORD_ENV = "LIVEDATA_TEST_PASSWORD"  # noqa: S105  # a variable's name, not a password
# Left alone, each runs well past 10 s; DuckDB does the self-join in under 1 s, so it gets more.
_SELF_JOIN = (
    "SELECT count(*) FROM tpch_lineitem a, tpch_lineitem b"
    " WHERE a.l_orderkey <= 3000 AND a.l_comment < b.l_comment"
)
_RANGE_JOIN = "SELECT sum(a.range * b.range) FROM range(100000) a, range(100000) b"


@dataclass(frozen=True)
class Sample:
    """A source holding the sample tables, and what the contract needs to know about it."""

    kind: str
    config: Any
    slow_sql: str = _SELF_JOIN
    service: str | None = None  # the server it needs, if any

    def connector(self, **changes: Any) -> Connector[Any]:
        return create_connector(self.kind, self.config.model_copy(update=changes))

    def unreachable(self, port: int, missing: Path) -> Connector[Any]:
        """This source with nothing behind it: a closed port (with a password), or no file."""
        if isinstance(self.config, PostgresSource | MySQLSource):
            return self.connector(port=port, password=SecretRef(env=PASSWORD_ENV))
        if self.kind == "sqlite":
            return self.connector(path=missing)
        return self.connector(path=str(missing), load={})


def _samples(scratch: Path) -> dict[str, Sample]:
    return {
        "duckdb": Sample(
            "duckdb",
            DuckDBSource(kind="duckdb", load={t: DATA / f"{t}.parquet" for t in TABLES}),
            slow_sql=_RANGE_JOIN,
        ),
        "postgres": Sample(
            "postgres",
            PostgresSource(kind="postgres", database=TEST_DATABASE, connect_timeout=2),
            service=f"PostgreSQL on 127.0.0.1:5432 (database {TEST_DATABASE}, user postgres)",
        ),
        "mysql": Sample(
            "mysql",
            MySQLSource(kind="mysql", database=TEST_DATABASE, connect_timeout=2),
            service=f"MariaDB on 127.0.0.1:3306 (database {TEST_DATABASE}, user root)",
        ),
        "sqlite": Sample("sqlite", SQLiteSource(kind="sqlite", path=scratch / "sample.sqlite")),
    }


KINDS = ("duckdb", "postgres", "mysql", "sqlite")


def sample_loader(
    scratch: Path, require: Callable[[str, Callable[[], object]], None]
) -> Callable[[str], Sample]:
    """``get(kind)``: that kind's sample source, its server checked and loaded on first use."""
    samples = _samples(scratch)
    loaded: set[str] = set()

    def get(kind: str) -> Sample:
        sample = samples[kind]
        if kind not in loaded:
            if sample.service is not None:
                require(sample.service, lambda: _ping(sample))
            if kind != "duckdb":
                load_sample(kind, sample.config)
            loaded.add(kind)
        return sample

    return get


def _ping(source: Sample) -> None:
    _create_database(source.kind)
    connector = source.connector()
    try:
        connector.ping()
    finally:
        connector.close()


def _create_database(kind: str) -> None:
    """The test database on its server, with the extensions the cache tests count with."""
    if kind == "postgres":
        import psycopg

        with psycopg.connect(PG_DSN.replace(TEST_DATABASE, "postgres"), autocommit=True) as db:
            exists = db.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (TEST_DATABASE,)
            ).fetchone()
            if exists is None:
                db.execute(f'CREATE DATABASE "{TEST_DATABASE}"')
        with psycopg.connect(PG_DSN, autocommit=True) as db:
            db.execute("SET client_min_messages = warning")
            for extension in ("pg_stat_statements", "dblink"):
                db.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")
    elif kind == "mysql":
        import pymysql

        with pymysql.connect(host="127.0.0.1", user="root") as db, db.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{TEST_DATABASE}`")
