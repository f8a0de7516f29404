"""A broken catalog stops start-up with a message naming the file, the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from livedata.catalog import load_catalog
from livedata.connectors import registry
from livedata.connectors.duckdb import DuckDBSource
from livedata.connectors.postgres import PostgresSource
from livedata.connectors.sqlite import SQLiteSource
from livedata.errors import CatalogError

GOOD = """
[sources.db]
kind = "postgres"
database = "test"
password = { env = "DB_PASSWORD" }

[tables.orders]
source = "db"

[queries.by_country]
source = "db"
sql = "SELECT * FROM orders WHERE country = :country"
[queries.by_country.params.country]
type = "str"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        pytest.param(
            'kind = "postgres"',
            'kind = "oracle"',
            "sources.db: unknown source kind 'oracle'; use one of duckdb, postgres, mysql, sqlite",
            id="unknown-kind",
        ),
        pytest.param(
            'kind = "postgres"\n',
            "",
            'sources.db: every source needs `kind = "..."`, one of duckdb, postgres, mysql, sqlite',
            id="no-kind",
        ),
        pytest.param(
            'database = "test"',
            'databse = "test"',
            "sources.db.postgres.databse: unknown field; did you mean 'database'?",
            id="typo-with-suggestion",
        ),
        pytest.param(
            'database = "test"',
            'database = "test"\nbudget = { per_caller = { querys = 10 } }',
            "sources.db.postgres.budget.per_caller.querys: unknown field; did you mean 'queries'? "
            "allowed here: queries, source_seconds",
            id="typo-in-a-source-part",
        ),
        pytest.param(
            'kind = "postgres"\ndatabase = "test"',
            'kind = "duckdb"\nlaod = { orders = "orders.parquet" }',
            "sources.db.duckdb.laod: unknown field; did you mean 'load'?",
            id="typo-in-another-kind",
        ),
        pytest.param(
            'kind = "postgres"\ndatabase = "test"',
            'kind = "sqlite"\npath = "x.db"\nstatement_timeout = 0',
            "sources.db.sqlite.statement_timeout: Input should be greater than 0",
            id="bad-value-in-a-source",
        ),
        pytest.param(
            'password = { env = "DB_PASSWORD" }',
            'password = "hunter2"',
            "plain-text secret(s) at sources.db.password",
            id="plain-text-secret",
        ),
        pytest.param(
            '[tables.orders]\nsource = "db"',
            '[tables.orders]\nsource = "dbx"',
            "tables.orders.source: unknown source 'dbx'; defined sources: db",
            id="unknown-source",
        ),
        pytest.param(
            ":country",
            ":countri",
            "queries.by_country.params: the SQL uses :countri",
            id="undeclared-param",
        ),
        pytest.param(
            "SELECT * FROM", "DELETE FROM", "must be exactly one SELECT", id="not-a-select"
        ),
        pytest.param(
            'type = "str"',
            'type = "string"',
            "unknown parameter type 'string'",
            id="unknown-param-type",
        ),
        pytest.param("[sources.db]", "[sources.db", "not valid TOML", id="toml-syntax"),
    ],
)
def test_broken_catalog_names_file_field_and_fix(
    tmp_path: Path, old: str, new: str, says: str
) -> None:
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(CatalogError) as caught:
        load_catalog(path, environ={})
    assert str(path) in caught.value.message
    assert says in caught.value.message


def test_environment_overrides_any_field(tmp_path: Path) -> None:
    catalog = load_catalog(
        write(tmp_path, GOOD),
        environ={
            "LIVEDATA_SOURCES__DB__HOST": "db.internal",
            "LIVEDATA_SOURCES__DB__PORT": "6543",
            "LIVEDATA_PORT": "1",
            "HOME": "/root",
        },
    )
    source = catalog.sources["db"]
    assert isinstance(source, PostgresSource)
    assert (source.host, source.port) == ("db.internal", 6543)


def test_secrets_resolve_only_from_env_or_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    text = GOOD.replace('{ env = "DB_PASSWORD" }', f'{{ file = "{secret}" }}')
    source = load_catalog(write(tmp_path, text), environ={}).sources["db"]
    assert isinstance(source, PostgresSource)
    assert source.password is not None
    assert source.password.resolve() == "s3cret"
    assert "s3cret" not in repr(source)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no such catalog file; set LIVEDATA_CATALOG"):
        load_catalog(tmp_path / "nope.toml", environ={})


def test_a_missing_driver_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "CONNECTORS", dict(registry.CONNECTORS))
    registry.register("oracle", "livedata_no_such_module:OracleConnector", "livedata-oracle")
    path = write(tmp_path, GOOD.replace('kind = "postgres"', 'kind = "oracle"'))
    with pytest.raises(CatalogError) as caught:
        load_catalog(path, environ={})
    assert caught.value.message == (
        f"{path}: the file is not valid (1 problem(s)):\n"
        "  sources.db: source kind 'oracle' needs the livedata-oracle package: "
        "pip install livedata-oracle"
    )


def test_file_paths_are_relative_to_the_catalog(tmp_path: Path) -> None:
    text = """
[sources.embedded]
kind = "duckdb"
load = { orders = "data/orders.parquet" }

[sources.file]
kind = "sqlite"
path = "data/shop.sqlite"
"""
    sources = load_catalog(write(tmp_path, text), environ={}).sources
    embedded, file = sources["embedded"], sources["file"]
    assert isinstance(embedded, DuckDBSource)
    assert isinstance(file, SQLiteSource)
    assert embedded.load == {"orders": tmp_path / "data" / "orders.parquet"}
    assert file.path == tmp_path / "data" / "shop.sqlite"
