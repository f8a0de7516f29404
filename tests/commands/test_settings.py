"""Settings refuse mistakes: an unknown LIVEDATA_* name or a value outside its type stops
every command that reads them, with exit code 2, the variable, and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import run

COMMANDS = [
    pytest.param(["serve", "--port", "0"], id="serve"),
    pytest.param(["catalog", "check"], id="catalog-check"),
    pytest.param(["query", "world_country_list", "--table", "--limit", "1"], id="query"),
    pytest.param(["cache", "stats"], id="cache-stats"),
]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_misspelled_setting_stops_start_up_with_did_you_mean(command: list[str]) -> None:
    done = run(*command, env={"LIVEDATA_CACHE_TTLL": "0"})
    assert done.returncode == 2, done.stderr
    assert "error: LIVEDATA_CACHE_TTLL: no such setting; did you mean LIVEDATA_CACHE_TTL?" in (
        done.stderr
    )
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        pytest.param(
            "LIVEDATA_LOG_LEVEL",
            "verbose",
            "Input should be 'debug', 'info', 'warning' or 'error' (got 'verbose')",
            id="log-level",
        ),
        pytest.param("LIVEDATA_ACCESS_LOG", "maybe", "valid boolean", id="bool"),
        pytest.param("LIVEDATA_CORS_ORIGINS", "app.example.com", "not an origin", id="origin"),
        pytest.param("LIVEDATA_REDIS_URL", "http://db:6379", "must start with", id="redis"),
        pytest.param("LIVEDATA_HOST", " ", "must not be empty", id="host"),
        pytest.param("LIVEDATA_CACHE_MAX_BYTES", "1GB", "valid integer", id="size"),
    ],
)
def test_a_value_outside_its_type_names_the_variable_and_what_it_takes(
    variable: str, value: str, says: str
) -> None:
    done = run("serve", "--port", "0", env={variable: value})
    assert done.returncode == 2
    assert f"error: {variable}: " in done.stderr
    assert says in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


def test_every_problem_is_named_at_once() -> None:
    done = run(
        "catalog",
        "check",
        env={"LIVEDATA_PORTT": "1", "LIVEDATA_LOG_LEVEL": "loud", "LIVEDATA_CACHE_TTL": "-1"},
    )
    assert done.returncode == 2
    assert "3 problems in the environment" in done.stderr
    for variable in ("LIVEDATA_PORTT", "LIVEDATA_LOG_LEVEL", "LIVEDATA_CACHE_TTL"):
        assert f"  {variable}: " in done.stderr


def test_a_redis_url_is_never_echoed() -> None:
    done = run("catalog", "check", env={"LIVEDATA_REDIS_URL": "http://user:s3cret@db"})
    assert done.returncode == 2
    assert "s3cret" not in done.stderr


def test_an_override_must_name_an_entry_of_the_catalog() -> None:
    done = run("catalog", "check", env={"LIVEDATA_SOURCES__SAMPL__MAX_ROWS": "3"})
    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    assert "LIVEDATA_SOURCES__SAMPL__MAX_ROWS: overrides sources.sampl, which" in message
    assert "does not define; did you mean LIVEDATA_SOURCES__SAMPLE__...?" in message


def test_an_override_of_an_existing_entry_applies() -> None:
    done = run(
        "query",
        "world_country_list",
        "--table",
        "--limit",
        "1",
        env={"LIVEDATA_TABLES__WORLD_COUNTRY_LIST__COLUMNS": '["alpha_3", "name"]'},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split() == ["alpha_3", "|", "name"]


def test_the_test_suites_own_variable_is_not_a_setting_yet_allowed() -> None:
    done = run("catalog", "check", env={"LIVEDATA_TEST_DATABASE": "elsewhere"})
    assert done.returncode == 0, done.stderr


def test_a_secret_the_catalog_names_may_use_the_prefix(tmp_path: Path) -> None:
    catalog = tmp_path / "secret.toml"
    catalog.write_text(
        '[sources.db]\nkind = "postgres"\ndatabase = "x"\n'
        'password = { env = "LIVEDATA_SHOP_PASSWORD" }\n'
    )
    done = run("catalog", "check", "-c", str(catalog), env={"LIVEDATA_SHOP_PASSWORD": "pw"})
    assert done.returncode == 0, done.stderr


def test_kubernetes_service_links_are_named_with_their_fix() -> None:
    done = run("catalog", "check", env={"LIVEDATA_SERVICE_HOST": "10.0.0.7"})
    assert done.returncode == 2
    assert "enableServiceLinks: false" in " ".join(done.stderr.split())
