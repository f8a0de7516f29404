"""Least privilege at the source: SQL cannot reach past the database.

Embedded sources are closed by the connector itself (DuckDB: external access off and the
configuration locked; SQLite: no attached files, no pragma changes). Server sources are
closed by their accounts' grants, which the connector reads and warns about at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest

from livedata.connectors.base import Connector
from livedata.connectors.sources import Sources
from livedata.errors import QueryFailed
from livedata.sql import Statement
from tests.samples import Sample

SELECT_ONLY = "livedata_select_only"  # an account that may read the sample and nothing else
ESCAPES = {
    "duckdb": [
        "SELECT * FROM read_csv('/etc/hostname')",
        "SELECT * FROM 'https://example.com/data.parquet'",
        "ATTACH '{scratch}/probe.duckdb' AS probe",
        "COPY (SELECT 1) TO '{scratch}/probe.csv'",
        "INSTALL httpfs",
        "SET enable_external_access = true",
    ],
    "sqlite": [
        "ATTACH DATABASE '{scratch}/probe.db' AS probe",
        "PRAGMA query_only = OFF",
        "SELECT load_extension('mod_spatialite')",
    ],
}


@pytest.mark.parametrize(
    ("kind", "text"), [(kind, text) for kind, texts in ESCAPES.items() for text in texts]
)
def test_embedded_sql_cannot_reach_past_the_database(
    sample_of: Callable[[str], Sample], tmp_path: Path, kind: str, text: str
) -> None:
    connector = sample_of(kind).connector()
    try:
        with pytest.raises(QueryFailed):
            connector.fetch(Statement(text.format(scratch=tmp_path), ()))
        assert list(tmp_path.iterdir()) == []  # nothing attached, created or written
    finally:
        connector.close()


@pytest.fixture(scope="module")
def select_only(sample_of: Callable[[str], Sample]) -> Iterator[dict[str, Connector[Any]]]:
    """Connectors for the sample's PostgreSQL and MariaDB, as an account granted SELECT only."""
    postgres, mysql = sample_of("postgres"), sample_of("mysql")
    with psycopg.connect(
        host=postgres.config.host, port=postgres.config.port, dbname=postgres.config.database,
        user=postgres.config.user, autocommit=True,
    ) as db:  # fmt: skip
        if db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (SELECT_ONLY,)).fetchone():
            db.execute(f"DROP OWNED BY {SELECT_ONLY}")
        else:
            db.execute(f"CREATE ROLE {SELECT_ONLY} LOGIN")
        db.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {SELECT_ONLY}")
    with pymysql.connect(
        host=mysql.config.host, port=mysql.config.port, user=mysql.config.user, autocommit=True
    ) as db, db.cursor() as cursor:  # fmt: skip
        cursor.execute(f"CREATE USER IF NOT EXISTS '{SELECT_ONLY}'@'%'")
        cursor.execute(f"GRANT SELECT ON {mysql.config.database}.* TO '{SELECT_ONLY}'@'%'")
    connectors = {
        "postgres": postgres.connector(user=SELECT_ONLY),
        "mysql": mysql.connector(user=SELECT_ONLY),
    }
    yield connectors
    for connector in connectors.values():
        connector.close()


@pytest.mark.parametrize(("kind", "named"), [("postgres", "is a superuser"), ("mysql", "has FILE")])
def test_an_account_that_can_reach_past_the_database_is_named(
    sample_of: Callable[[str], Sample], kind: str, named: str
) -> None:
    connector = sample_of(kind).connector()  # the tests' own account: the server's admin
    try:
        assert any(why.startswith(named) for why in connector.excess_privileges())
    finally:
        connector.close()


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_a_select_only_account_has_no_excess_privileges(
    select_only: dict[str, Connector[Any]], kind: str
) -> None:
    connector = select_only[kind]
    assert connector.excess_privileges() == []
    assert connector.fetch(Statement("SELECT 1 AS one", ())).num_rows == 1


@pytest.mark.anyio
async def test_start_up_warns_of_an_account_with_excess_privileges(
    sample_of: Callable[[str], Sample],
    select_only: dict[str, Connector[Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = sample_of("postgres").connector()
    sources = Sources(
        {"admin": admin, "reader": select_only["postgres"]},
        {"admin": admin.config, "reader": select_only["postgres"].config},
    )
    with caplog.at_level(logging.WARNING, logger="livedata.sources"):
        await sources.warn_of_privileges()
    admin.close()
    warned = [r.getMessage() for r in caplog.records if r.name == "livedata.sources"]
    assert len(warned) == 1
    assert warned[0].startswith("source 'admin': its account is a superuser")
