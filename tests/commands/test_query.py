"""`livedata query` as a shell tool, run as a user would: typed list parameters, shaping,
every output format byte for byte what the HTTP API sends, NULL apart from text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from tests.test_cli import run

CODES = ["FRA", "JPN"]


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(['codes=["FRA","JPN"]'], id="json-list"),
        pytest.param(["codes=FRA", "codes=JPN"], id="repeated"),
        pytest.param(['codes=["FRA"]', "codes=JPN"], id="both"),
    ],
)
def test_a_list_parameter_is_json_or_repeated(params: list[str]) -> None:
    done = run("query", "country", *(a for p in params for a in ("-p", p)), "-f", "csv")
    assert done.returncode == 0, done.stderr
    rows = done.stdout.splitlines()[1:]
    assert [row.split(",")[1] for row in rows] == ['"FRA"', '"JPN"']


def test_a_scalar_parameter_given_twice_is_refused() -> None:
    done = run("query", "countries_by_region", "-p", "region=Asia", "-p", "region=Europe")
    assert done.returncode == 2
    assert "region is given twice" in done.stderr


def test_broken_json_for_a_list_says_how_to_write_it() -> None:
    done = run("query", "country", "-p", 'codes=["FRA",')
    assert done.returncode == 2
    assert "write it as a JSON array" in " ".join(done.stderr.split())


def test_columns_filters_and_order() -> None:
    done = run(
        *("query", "world_country_list", "--table", "--columns", "alpha_3,population"),
        *("--filter", "region:eq:Europe", "--filter", "population:gt:60000000"),
        *("--order-by", "population:desc", "-f", "csv"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        '"alpha_3","population"',
        '"RUS",144478050',
        '"DEU",82927922',
        '"FRA",66987244',
        '"GBR",66488991',
        '"ITA",60431283',
    ]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(["--filter", "region:like:E%"], "OP one of eq ne", id="op"),
        pytest.param(["--filter", "region:eq"], "eq needs a value", id="value"),
        pytest.param(["--order-by", "population:down"], "COLUMN:desc", id="order"),
        pytest.param(["--columns", "populaton"], "Did you mean 'population'?", id="column"),
        pytest.param(["--format", "xml"], "'xml' is not one of", id="format"),
    ],
)
def test_a_bad_option_exits_2_saying_what_to_write(args: list[str], says: str) -> None:
    done = run("query", "world_country_list", "--table", *args)
    assert done.returncode == 2
    assert says in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


def test_null_is_shown_apart_from_text(tmp_path: Path) -> None:
    catalog = tmp_path / "nulls.toml"
    catalog.write_text(
        '[sources.m]\nkind = "duckdb"\n[queries.q]\nsource = "m"\n'
        "sql = \"SELECT 1 AS id, CAST(NULL AS VARCHAR) AS missing, '' AS empty\"\n"
    )
    done = run("query", "q", "-c", str(catalog))
    assert done.returncode == 0, done.stderr
    assert [cell.strip() for cell in done.stdout.splitlines()[2].split("|")] == ["1", "NULL", ""]
    mine = run("query", "q", "-c", str(catalog), "--null", "(null)")
    assert "(null)" in mine.stdout


def test_the_table_shows_every_type_as_the_api_encodes_it(tmp_path: Path) -> None:
    catalog = tmp_path / "types.toml"
    catalog.write_text(
        '[sources.m]\nkind = "duckdb"\n[queries.q]\nsource = "m"\n'
        "sql = \"SELECT 'infinity'::DATE AS d, INTERVAL 1 DAY AS i, "
        '[9007199254740993, 1] AS l, \'{\\"a\\": 1}\'::JSON AS j"\n'
    )
    done = run("query", "q", "-c", str(catalog))
    assert done.returncode == 0, done.stderr
    cells = [cell.strip() for cell in done.stdout.splitlines()[2].split("|")]
    assert cells == ["infinity", "P1D", '["9007199254740993",1]', '{"a": 1}']


def test_the_vertical_view_shows_one_block_per_row() -> None:
    done = run("query", "country", "-p", "codes=JPN", "-x")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("-[ RECORD 1 ]")
    assert "official_name | NULL" in lines
    assert "name          | Japan" in lines


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv", "arrow", "parquet"])
def test_each_format_is_the_bytes_the_api_sends(
    fmt: str, tmp_path: Path, serve: Callable[..., str]
) -> None:
    """The command's miss stores the entry; the server, on the same cache, answers the same
    request from it: both bodies must be the same bytes."""
    cache = tmp_path / "cache"
    out = tmp_path / f"out.{fmt}"
    args = ("query", "countries_by_region", "-p", "region=Europe", "-f", fmt, "-o", str(out))
    done = run(*args, env={"LIVEDATA_CACHE_DIR": str(cache)})
    assert done.returncode == 0, done.stderr
    url = serve(cache_dir=cache)
    body = {"query": "countries_by_region", "params": {"region": "Europe"}, "format": fmt}
    response = httpx.post(f"{url}/query", json=body, headers={"Accept-Encoding": "identity"})
    assert response.headers["cache-status"] == "livedata; hit"
    assert out.read_bytes() == response.content


def test_output_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    out = tmp_path / "rows.parquet"
    done = run("query", "world_country_list", "--table", "-f", "parquet", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert pq.read_table(out).num_rows == 249
    failed = tmp_path / "failed.json"
    done = run("query", "countries_by_region", "-p", "region=Mars", "-o", str(failed))
    assert done.returncode == 2
    assert list(tmp_path.iterdir()) == [out]  # no failed.json, no failed.json.part
