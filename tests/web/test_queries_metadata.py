"""GET /queries as metadata: column descriptions, each parameter's JSON Schema (checked
against what POST /query enforces), and its ETag."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import jsonschema_rs
import pytest

from livedata.catalog import QueryConfig, load_catalog
from livedata.settings import BUNDLED_CATALOG

SHAPES = {
    "source": "sample",
    "sql": """
        SELECT name AS country FROM world_country_list
        WHERE alpha_3 IN (:codes) AND population >= :people AND area_km2 <= :area
          AND name <> :word AND region = :region AND :day >= DATE '1900-01-01' AND :flag
    """,
    "column_descriptions": {"country": "English short name."},
    "params": {
        "codes": {"type": "list[str]", "pattern": "[A-Z]{3}", "min_length": 1, "max_length": 3},
        "people": {"type": "int", "min": 0, "max": 10**10, "default": 0},
        "area": {"type": "float", "min": 0.5, "max": 1e8},
        "word": {"type": "str", "min_length": 2, "max_length": 5, "pattern": "[a-z]+"},
        "region": {"type": "enum", "values": ["Asia", "Europe"]},
        "day": {"type": "date"},
        "flag": {"type": "bool"},
    },
}
VALID = {"codes": ["FRA"], "area": 1e7, "word": "ab", "region": "Europe", "day": "2024-01-31"}
VALID["flag"] = True


@pytest.fixture(scope="module")
def url(serve: Callable[..., str]) -> str:
    catalog = load_catalog(BUNDLED_CATALOG)
    countries = catalog.tables["world_country_list"].model_copy(
        update={"column_descriptions": {"alpha_3": "ISO 3166-1 alpha-3 code."}}
    )
    return serve(
        catalog.model_copy(
            update={
                "tables": {"world_country_list": countries},
                "queries": {"shapes": QueryConfig.model_validate(SHAPES)},
            }
        )
    )


def test_a_described_column_the_allow_list_hides_stays_hidden(serve: Callable[..., str]) -> None:
    """Narrowing `columns` (in the file or by a LIVEDATA_TABLES__...__COLUMNS override) needs
    no change to the descriptions: those of hidden columns are not shown (they stopped
    start-up, so an override of the bundled table's columns could not start)."""
    catalog = load_catalog(BUNDLED_CATALOG)
    narrowed = catalog.tables["world_country_list"].model_copy(
        update={"columns": ["alpha_3", "name"]}
    )
    url = serve(catalog.model_copy(update={"tables": {"world_country_list": narrowed}}))
    table = httpx.get(f"{url}/queries", timeout=30).json()["tables"]["world_country_list"]
    assert [c["name"] for c in table["columns"]] == ["alpha_3", "name"]
    assert table["columns"][0]["description"] == "ISO 3166-1 alpha-3 code."
    assert "Inhabitants" not in str(table)  # the hidden population column's description


def test_columns_carry_their_catalog_description_and_declared_nullable(url: str) -> None:
    """A named query's columns carry no ``nullable``: no source can tell, and it is not
    guessed (tests/web/test_sources.py checks every source kind's tables)."""
    listed = httpx.get(f"{url}/queries", timeout=30).json()
    columns = {c["name"]: c for c in listed["tables"]["world_country_list"]["columns"]}
    assert columns["alpha_3"]["description"] == "ISO 3166-1 alpha-3 code."
    assert "description" not in columns["name"]
    assert columns["alpha_3"]["nullable"] is False
    assert columns["region"]["nullable"] is True
    assert listed["queries"]["shapes"]["columns"] == [
        {"name": "country", "type": "string", "ops": columns["name"]["ops"]}
        | {"description": "English short name."}
    ]


@pytest.mark.parametrize(
    ("param", "refused", "accepted"),
    [
        pytest.param("people", "many", 7, id="type"),
        pytest.param("people", -1, 0, id="minimum"),
        pytest.param("people", 10**10 + 1, 10**10, id="maximum"),
        pytest.param("area", 0.4, 0.5, id="float-minimum"),
        pytest.param("word", "a", "ab", id="minLength"),
        pytest.param("word", "abcdef", "abcde", id="maxLength"),
        pytest.param("word", "AB", "ab", id="pattern"),
        pytest.param("region", "Africa", "Asia", id="enum"),
        pytest.param("day", "31/01/2024", "2024-01-31", id="format-date"),
        pytest.param("flag", "maybe", False, id="boolean"),
        pytest.param("codes", ["fr"], ["FRA"], id="items-pattern"),
        pytest.param("codes", [], ["FRA"], id="minItems"),
        pytest.param("codes", ["FRA", "JPN", "DEU", "ITA"], ["FRA", "JPN", "DEU"], id="maxItems"),
    ],
)
def test_each_parameters_schema_refuses_and_accepts_what_the_server_does(
    url: str, param: str, refused: Any, accepted: Any
) -> None:
    listed = httpx.get(f"{url}/queries", timeout=30).json()["queries"]["shapes"]["params"]
    schema = jsonschema_rs.validator_for(listed[param]["schema"], validate_formats=True)
    assert not schema.is_valid(refused)
    assert schema.is_valid(accepted)
    for value, status in ((refused, 422), (accepted, 200)):
        body = {"query": "shapes", "params": {**VALID, param: value}}
        response = httpx.post(f"{url}/query", json=body, timeout=30)
        assert response.status_code == status, response.text


def test_a_parameters_schema_carries_its_default(url: str) -> None:
    listed = httpx.get(f"{url}/queries", timeout=30).json()["queries"]["shapes"]["params"]
    assert listed["people"]["schema"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 10**10,
        "default": 0,
    }


def test_queries_is_revalidated_by_its_strong_etag(url: str) -> None:
    first = httpx.get(f"{url}/queries", timeout=30)
    tag = first.headers["ETag"]
    assert tag.startswith('"')
    assert first.headers["Vary"] == "Authorization"
    assert first.headers["Cache-Control"] == "no-cache"  # anonymous: the same for everyone
    again = httpx.get(f"{url}/queries", headers={"If-None-Match": tag}, timeout=30)
    assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", tag)
    other = httpx.get(f"{url}/queries", headers={"If-None-Match": '"other"'}, timeout=30)
    assert (other.status_code, other.content) == (200, first.content)
