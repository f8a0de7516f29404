"""The real `livedata` command, run as a user would run it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.cli_server import LIVEDATA, CliServer
from tests.samples import TEST_DATABASE, Sample


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEDATA_CACHE_DIR", str(tmp_path / "cache"))


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LIVEDATA, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_query_prints_a_table() -> None:
    done = run(
        "query", "countries_by_region", "-p", "region=Europe", "-p", "min_population=60000000"
    )
    assert done.returncode == 0, done.stderr
    assert "Germany" in done.stdout
    assert "Spain" not in done.stdout
    assert "5 row(s) from sample" in done.stderr


def test_query_reports_a_bad_parameter() -> None:
    done = run("query", "countries_by_region", "-p", "region=Mars")
    assert done.returncode == 2  # a mistake on the command line, as any bad argument
    assert "error (invalid_parameter): Parameter 'region' must be one of" in done.stderr


def test_catalog_check_ok() -> None:
    done = run("catalog", "check")
    assert done.returncode == 0
    assert "catalog ok: 1 source(s), 2 table(s), 3 query(ies)" in done.stdout


def test_broken_catalog_exits_2_for_check_and_serve(tmp_path: Path) -> None:
    catalog = tmp_path / "bad.toml"
    catalog.write_text('[sources.db]\nkind = "postgres"\ndatabse = "x"\n')
    for command in (["catalog", "check"], ["serve", "--port", "0"]):
        done = run(*command, env={"LIVEDATA_CATALOG": str(catalog)})
        assert done.returncode == 2, command
        assert str(catalog) in done.stderr
        assert "databse: unknown field; did you mean 'database'?" in done.stderr


def test_serve_answers_the_readme_request(
    tmp_path: Path, cli_server: Callable[..., CliServer]
) -> None:
    server = cli_server(tmp_path / "cache")
    response = httpx.post(f"{server.url}/query", json={"table": "world_country_list"})
    assert response.status_code == 200
    assert len(response.json()["rows"]) == 249


def test_a_missing_secret_stops_start_up(tmp_path: Path) -> None:
    catalog = tmp_path / "secret.toml"
    catalog.write_text(
        '[sources.db]\nkind = "postgres"\ndatabase = "x"\n'
        'password = { env = "LIVEDATA_TEST_UNSET_SECRET" }\n'
    )
    done = run("catalog", "check", env={"LIVEDATA_CATALOG": str(catalog)})
    assert done.returncode == 2
    assert "sources.db.password: Environment variable LIVEDATA_TEST_UNSET_SECRET" in done.stderr


def test_sample_load_into_postgres(tmp_path: Path, sample_of: Callable[[str], Sample]) -> None:
    sample_of("postgres")  # PostgreSQL answers (or the test is skipped with the reason)
    catalog = tmp_path / "pg.toml"
    catalog.write_text(f'[sources.pg]\nkind = "postgres"\ndatabase = "{TEST_DATABASE}"\n')
    done = run("sample", "load", "--source", "pg", env={"LIVEDATA_CATALOG": str(catalog)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "world_country_list: 249 rows",
        "tpch_lineitem: 120515 rows",
    ]
    wrong = run("sample", "load", "--source", "nope", env={"LIVEDATA_CATALOG": str(catalog)})
    assert wrong.returncode == 2
    assert "no source 'nope'; known: pg" in wrong.stderr


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("LIVEDATA_CACHE_FORMAT", "csv", "does not keep every type"),
        ("LIVEDATA_CACHE_FORMAT", "arow", "Did you mean 'arrow'"),
        ("LIVEDATA_CACHE_SHARED_FORMAT", "pickle", "may run code when read"),
        ("LIVEDATA_CACHE_SHARED_FORMAT", "arrow-zstf", "Did you mean 'arrow-zstd'"),
        ("LIVEDATA_PORT", "abc", "valid integer"),
        ("LIVEDATA_CACHE_TTL", "-1", "greater than or equal to 0"),
    ],
)
def test_a_bad_setting_stops_start_up_naming_the_variable(
    variable: str, value: str, says: str
) -> None:
    done = run("serve", env={variable: value})
    assert done.returncode == 2
    message = " ".join(done.stderr.split())  # rich wraps long lines
    assert f"error: {variable}:" in message
    assert says in message
    assert "Traceback" not in done.stderr
