"""`livedata catalog check --connect`, run as a user would, against real PostgreSQL and
MariaDB: every problem a source shows is named at once (file, field, fix), exit code 2."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.samples import TEST_DATABASE, Sample
from tests.test_cli import run

SERVERS = {"postgres": 'kind = "postgres"', "mysql": 'kind = "mysql"'}
GOOD = """
[sources.db]
{kind}
database = "{database}"
connect_timeout = 2

[tables.world_country_list]
source = "db"
columns = ["alpha_3", "name"]
column_descriptions = {{ name = "English short name." }}

[queries.by_region]
source = "db"
sql = "SELECT name FROM world_country_list WHERE region = :region AND population >= :least"
[queries.by_region.params.region]
type = "enum"
values = ["Europe", "Asia"]
[queries.by_region.params.least]
type = "int"
min = 1000

[queries.by_codes]
source = "db"
sql = "SELECT name FROM world_country_list WHERE alpha_3 IN (:codes)"
[queries.by_codes.params.codes]
type = "list[str]"
pattern = "[A-Z]{{3}}"
"""
BROKEN = """
[sources.down]
{kind}
port = {closed_port}
database = "nothing_listens"
connect_timeout = 2

[tables.countries]
source = "db"
table = "world_country_lst"

[tables.lineitem]
source = "db"
table = "tpch_lineitem"
columns = ["l_orderkey", "l_shipmod"]

[tables.elsewhere]
source = "down"

[queries.reads_nothing]
source = "db"
sql = "SELECT * FROM no_such_table"

[queries.described]
source = "db"
sql = "SELECT name FROM world_country_list"
column_descriptions = {{ nmae = "English short name." }}
"""


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:  # bound, then closed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _catalog(tmp_path: Path, kind: str, text: str, closed_port: int = 0) -> Path:
    path = tmp_path / f"{kind}.toml"
    kind_line = SERVERS[kind]
    path.write_text(text.format(kind=kind_line, database=TEST_DATABASE, closed_port=closed_port))
    return path


@pytest.mark.integration
@pytest.mark.parametrize("kind", list(SERVERS))
def test_a_catalog_the_source_agrees_with_passes(
    tmp_path: Path, sample_of: Callable[[str], Sample], kind: str
) -> None:
    sample_of(kind)  # the server answers and holds the sample tables
    catalog = _catalog(tmp_path, kind, GOOD)
    done = run("catalog", "check", "--connect", "--catalog", str(catalog))
    assert done.returncode == 0, done.stderr
    assert "sources ok: 1 answered" in done.stdout


@pytest.mark.integration
@pytest.mark.parametrize("kind", list(SERVERS))
def test_every_problem_the_sources_show_is_named_at_once(
    tmp_path: Path, sample_of: Callable[[str], Sample], kind: str, closed_port: int
) -> None:
    sample_of(kind)
    catalog = _catalog(tmp_path, kind, GOOD + BROKEN, closed_port)
    loads = run("catalog", "check", "--catalog", str(catalog))
    assert loads.returncode == 0, loads.stderr  # without --connect nothing here shows
    done = run("catalog", "check", "--connect", "--catalog", str(catalog))
    assert done.returncode == 2, done.stdout
    message = " ".join(done.stderr.split())
    assert f"{catalog}: 5 problem(s) found by asking the sources" in message
    assert "sources.down: Source 'down' is unavailable (cannot connect" in message
    assert "(its 1 table(s) and 0 query(ies) were not checked)" in message
    assert f"port = {closed_port}" in message  # the fix says where it looked
    assert "tables.countries.table: reading 'world_country_lst'" in message
    assert "tables.lineitem.columns: 'l_shipmod' is not a column" in message
    assert "did you mean 'l_shipmode'?" in message
    assert "queries.reads_nothing.sql: it fails with no parameters" in message
    assert "queries.described.column_descriptions: 'nmae' is not a column of its result" in message
    assert "did you mean 'name'?" in message
    assert "by_region" not in message
    assert "by_codes" not in message
    assert "Traceback" not in done.stderr


@pytest.mark.integration
def test_a_parameter_type_the_sql_cannot_compare_is_found(
    tmp_path: Path, sample_of: Callable[[str], Sample]
) -> None:
    """PostgreSQL compares strictly: a date parameter against a bigint column fails there,
    and would fail every request; the check runs the query with a date to find out."""
    sample_of("postgres")
    catalog = _catalog(
        tmp_path,
        "postgres",
        GOOD
        + '\n[queries.since]\nsource = "db"\n'
        + 'sql = "SELECT name FROM world_country_list WHERE population >= :since"\n'
        + '[queries.since.params.since]\ntype = "date"\n',
    )
    done = run("catalog", "check", "--connect", "--catalog", str(catalog))
    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    assert "queries.since.sql: it fails with since='2000-01-01'" in message


def test_the_bundled_catalog_passes() -> None:
    done = run("catalog", "check", "--connect")
    assert done.returncode == 0, done.stderr
    assert "sources ok: 1 answered" in done.stdout
