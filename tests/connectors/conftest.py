"""One sample source per connector kind, loaded once per session, for the contract suite.

PostgreSQL and MariaDB are the machine's own servers (database ``test``, started by .ci/run);
SQLite is a file this session writes; DuckDB loads the bundled Parquet files itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from livedata.catalog import DuckDBSource, MySQLSource, PostgresSource, SecretRef, SQLiteSource
from livedata.connectors.base import Connector
from livedata.connectors.registry import create_connector
from livedata.sample.load import DATA, TABLES, load_sample
from tests.conftest import require_service

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


@pytest.fixture(
    scope="session",
    params=[pytest.param(kind, id=kind) for kind in ("duckdb", "postgres", "mysql", "sqlite")],
)
def sample(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Sample:
    source = _samples(tmp_path_factory.mktemp("samples"))[request.param]
    if source.service is not None:
        require_service(source.service, lambda: _ping(source))
    if source.kind != "duckdb":
        loaded = load_sample(source.kind, source.config)
        assert loaded == {t: pq.read_metadata(DATA / f"{t}.parquet").num_rows for t in TABLES}
    return source


@pytest.fixture
def connector(sample: Sample) -> Iterator[Connector[Any]]:
    connector = sample.connector()
    yield connector
    connector.close()


def _ping(source: Sample) -> None:
    connector = source.connector()
    try:
        connector.ping()
    finally:
        connector.close()
