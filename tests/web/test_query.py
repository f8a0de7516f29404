"""POST /query against the out-of-the-box service (bundled catalog, embedded DuckDB)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from livedata.settings import BUNDLED_CATALOG

COUNTRIES = pq.read_table(BUNDLED_CATALOG.parent / "data" / "world_country_list.parquet")


def post(client: httpx.Client, body: Any, **headers: str) -> httpx.Response:
    return client.post("/query", json=body, headers=headers)


def test_the_readme_request_returns_every_country(client: httpx.Client) -> None:
    response = post(client, {"table": "world_country_list"})
    assert response.status_code == 200
    body = response.json()
    assert [c["name"] for c in body["columns"]] == COUNTRIES.schema.names
    assert {"name": "population", "type": "int64"} in body["columns"]
    assert len(body["rows"]) == COUNTRIES.num_rows == 249
    codes = {row[1] for row in body["rows"]}
    assert set(COUNTRIES.column("alpha_3").to_pylist()) == codes
    assert body["meta"]["rows"] == 249
    assert body["meta"]["table"] == "world_country_list"
    assert body["meta"]["source"] == "sample"
    assert body["meta"]["truncated"] is False
    assert set(body["meta"]["timings_ms"]) == {"source"}
    assert body["meta"]["fresh_until"] > body["meta"]["fetched_at"]
    assert response.headers["x-request-id"]


def test_named_query_converts_parameters_and_applies_defaults(client: httpx.Client) -> None:
    body = post(
        client,
        {
            "query": "countries_by_region",
            "params": {"region": "Europe", "min_population": "60000000"},
        },
    ).json()
    assert [row[0] for row in body["rows"]] == ["RUS", "DEU", "FRA", "GBR", "ITA"]
    assert body["meta"]["params"] == {"region": "Europe", "min_population": 60_000_000}
    default = post(client, {"query": "countries_by_region", "params": {"region": "Oceania"}})
    assert default.json()["meta"]["params"]["min_population"] == 0


def test_list_parameter(client: httpx.Client) -> None:
    body = post(client, {"query": "country", "params": {"codes": ["JPN", "FRA"]}}).json()
    assert [row[1] for row in body["rows"]] == ["FRA", "JPN"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {
                "columns": ["alpha_3", "population"],
                "limit": 2,
                "order_by": [{"column": "population", "desc": True}],
            },
            [["CHN", 1411778724], ["IND", 1352617328]],
            id="columns-order-limit",
        ),
        pytest.param(
            {"columns": ["alpha_3"], "order_by": [{"column": "alpha_3"}], "limit": 2, "offset": 1},
            [["AFG"], ["AGO"]],
            id="offset",
        ),
        pytest.param(
            {
                "columns": ["alpha_3"],
                "filters": [{"column": "alpha_2", "op": "in", "value": ["FR", "DE"]}],
                "order_by": [{"column": "alpha_3"}],
            },
            [["DEU"], ["FRA"]],
            id="in",
        ),
        pytest.param(
            {
                "columns": ["alpha_3"],
                "filters": [{"column": "name", "op": "contains", "value": "Zealand"}],
            },
            [["NZL"]],
            id="contains",
        ),
        pytest.param(
            {"columns": ["alpha_3"], "filters": [{"column": "region", "op": "is_null"}]},
            [["ATA"]],
            id="is_null",
        ),
        pytest.param(
            {
                "columns": ["alpha_3"],
                "filters": [
                    {"column": "population", "op": "ge", "value": "1000000000"},
                    {"column": "alpha_3", "op": "ne", "value": "IND"},
                ],
            },
            [["CHN"]],
            id="ge-ne-and",
        ),
        pytest.param(
            {
                "columns": ["alpha_3"],
                "filters": [
                    {"column": "area_km2", "op": "lt", "value": 1},
                    {"column": "population", "op": "gt", "value": 0},
                ],
            },
            [],
            id="lt-gt-empty",
        ),
        pytest.param(
            {
                "columns": ["alpha_3"],
                "filters": [{"column": "name", "op": "eq", "value": "x' OR '1'='1"}],
            },
            [],
            id="injection-is-a-value",
        ),
    ],
)
def test_table_shaping(client: httpx.Client, body: dict[str, Any], expected: list[Any]) -> None:
    response = post(client, {"table": "world_country_list", **body})
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == expected


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        pytest.param(
            {"table": "world_country_lst"},
            404,
            "not_found",
            "Did you mean 'world_country_list'",
            id="unknown-table",
        ),
        pytest.param(
            {"query": "countries_by_regoin"},
            404,
            "not_found",
            "Did you mean 'countries_by_region'",
            id="unknown-query",
        ),
        pytest.param(
            {"query": "countries_by_region", "params": {"region": "Atlantis"}},
            422,
            "invalid_parameter",
            "'region' must be one of Africa",
            id="enum",
        ),
        pytest.param(
            {"query": "countries_by_region", "params": {"region": "Asia", "min_population": -1}},
            422,
            "invalid_parameter",
            "'min_population' must be at least 0",
            id="min",
        ),
        pytest.param(
            {
                "query": "countries_by_region",
                "params": {"region": "Asia", "min_population": "many"},
            },
            422,
            "invalid_parameter",
            "must be an integer",
            id="int",
        ),
        pytest.param(
            {"query": "countries_by_region"},
            422,
            "invalid_parameter",
            "'region' is required",
            id="required",
        ),
        pytest.param(
            {"query": "countries_by_region", "params": {"region": "Asia", "x": 1}},
            422,
            "invalid_parameter",
            "Unknown parameter(s) 'x'",
            id="unknown-param",
        ),
        pytest.param(
            {"query": "country", "params": {"codes": ["fra"]}},
            422,
            "invalid_parameter",
            "'codes[0]' must match the pattern",
            id="pattern",
        ),
        pytest.param(
            {"query": "revenue_by_shipmode", "params": {"shipped_from": "31/01/1995"}},
            422,
            "invalid_parameter",
            "must be a date as YYYY-MM-DD",
            id="date",
        ),
        pytest.param(
            {"table": "world_country_list", "columns": ["populaton"]},
            422,
            "invalid_option",
            "Did you mean 'population'",
            id="unknown-column",
        ),
        pytest.param(
            {"table": "world_country_list", "order_by": [{"column": "x;drop"}]},
            422,
            "invalid_option",
            "No column named 'x;drop'",
            id="order-by-column",
        ),
        pytest.param(
            {
                "table": "world_country_list",
                "filters": [{"column": "population", "op": "gt", "value": "lots"}],
            },
            422,
            "invalid_option",
            "filters[0].value must be an integer",
            id="filter-type",
        ),
        pytest.param(
            {
                "table": "world_country_list",
                "filters": [{"column": "population", "op": "contains", "value": "1"}],
            },
            422,
            "invalid_option",
            "'contains' does not apply to column 'population' (int64); it takes eq, ne, lt",
            id="contains-type",
        ),
        pytest.param(
            {"table": "world_country_list", "sql": "select 1"},
            422,
            "invalid_option",
            "sql: Extra inputs are not permitted",
            id="unknown-field",
        ),
        pytest.param(
            {"table": "world_country_list", "query": "country"},
            422,
            "invalid_option",
            'exactly one of "table" or "query"',
            id="table-and-query",
        ),
        pytest.param(
            {"table": "world_country_list", "limit": -1},
            422,
            "invalid_option",
            "limit",
            id="negative-limit",
        ),
        pytest.param(
            {"table": "world_country_list", "params": {"a": 1}},
            422,
            "invalid_parameter",
            "Tables take no",
            id="params-on-table",
        ),
        pytest.param([1, 2], 422, "invalid_option", "does not match", id="not-an-object"),
        pytest.param(
            {"table": "world_country_list", "columns": ["name", "alpha_3", "name"]},
            422,
            "invalid_option",
            "names 'name' more than once",
            id="column-twice",
        ),
        pytest.param(
            {
                "query": "countries_by_region",
                "params": {"region": "Asia", "min_population": 10**30},
            },
            422,
            "invalid_parameter",
            "must be an integer between",
            id="int-beyond-64-bits",
        ),
        pytest.param(
            {
                "table": "world_country_list",
                "filters": [{"column": "population", "op": "eq", "value": 1e308}],
            },
            422,
            "invalid_option",
            "must be an integer between",
            id="filter-int-beyond-64-bits",
        ),
        *(
            pytest.param(
                {
                    "table": "tpch_lineitem",
                    "filters": [{"column": "l_extendedprice", "op": "eq", "value": value}],
                },
                422,
                "invalid_option",
                "must be a decimal number",
                id=f"decimal-{value}",
            )
            for value in ("NaN", "sNaN", "Infinity", "1e999999")
        ),
        pytest.param(
            {"table": "world_country_list", "format": "xml"},
            422,
            "invalid_option",
            "format",
            id="unknown-format",
        ),
    ],
)
def test_client_mistakes_answer_4xx_with_a_fix(
    client: httpx.Client, body: Any, status: int, code: str, says: str
) -> None:
    response = post(client, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert says in error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


def test_malformed_json_is_400(client: httpx.Client) -> None:
    response = client.post(
        "/query", content=b'{"table": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_body"


def test_wrong_content_type_is_415(client: httpx.Client) -> None:
    response = client.post(
        "/query", content=b'{"table": "world_country_list"}', headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]["message"]


def test_body_over_the_limit_is_413(client: httpx.Client) -> None:
    response = post(client, {"table": "world_country_list", "columns": ["x" * 1000] * 100})
    assert response.status_code == 413
    assert response.json()["error"]["details"] == {"limit": 65536}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("PUT", "/query", 405, id="put-query"),
        pytest.param("GET", "/nowhere", 404, id="unknown-path"),
    ],
)
def test_http_errors_use_the_same_shape(
    client: httpx.Client, method: str, path: str, status: int
) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"code", "message", "request_id", "details"}


def test_uncached_large_results_stream(serve: Callable[..., str]) -> None:
    with httpx.stream(
        "POST", f"{serve(cache_ttl=0)}/query", json={"table": "tpch_lineitem"}
    ) as response:
        assert response.status_code == 200
        assert response.headers["cache-status"] == "livedata; fwd=bypass"
        assert "content-length" not in response.headers
        body = b"".join(response.iter_bytes())
    assert body.endswith(b"}")
    assert b'"rows":120515' in body


@pytest.mark.parametrize("max_age", ["\u00b2", "1e3", "-5", "99999999999999999999"])
def test_an_odd_max_age_is_ignored_not_a_500(client: httpx.Client, max_age: str) -> None:
    response = client.post(
        "/query",
        json={"table": "world_country_list", "limit": 1},
        headers={"Cache-Control": f"max-age={max_age}".encode("latin-1")},  # as it is read
    )
    assert response.status_code == 200
