"""One source of each kind holding the sample tables, for the contract and HTTP suites.

PostgreSQL and MariaDB are the machine's own servers (database ``test``, started by .ci/run);
SQLite is a file this session writes; DuckDB loads the bundled Parquet files itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livedata.catalog import DuckDBSource, MySQLSource, PostgresSource, SecretRef, SQLiteSource
from livedata.connectors.base import Connector
from livedata.connectors.registry import create_connector
from livedata.sample.load import DATA, TABLES, load_sample

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
            PostgresSource(kind="postgres", database="test", connect_timeout=2),
            service="PostgreSQL on 127.0.0.1:5432 (database test, user postgres)",
        ),
        "mysql": Sample(
            "mysql",
            MySQLSource(kind="mysql", database="test", connect_timeout=2),
            service="MariaDB on 127.0.0.1:3306 (database test, user root)",
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
    connector = source.connector()
    try:
        connector.ping()
    finally:
        connector.close()
