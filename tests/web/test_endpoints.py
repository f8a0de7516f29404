"""GET /queries, /health, /ready, /openapi.json and /docs."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from livedata.catalog import load_catalog
from livedata.settings import BUNDLED_CATALOG


def test_queries_lists_the_catalog_with_types(client: httpx.Client) -> None:
    catalog = client.get("/queries").json()
    assert set(catalog["tables"]) == {"world_country_list", "tpch_lineitem"}
    region = catalog["queries"]["countries_by_region"]
    assert region["params"]["min_population"] == {
        "type": "int",
        "description": "Leave out countries with fewer inhabitants.",
        "default": 0,
        "min": 0,
        "required": False,
        "schema": {
            "type": "integer",
            "minimum": 0,
            "default": 0,
            "description": "Leave out countries with fewer inhabitants.",
        },
    }
    assert region["params"]["region"]["required"] is True
    ordered = ["eq", "ne", "lt", "le", "gt", "ge", "in", "is_null"]
    assert {"name": "population", "type": "int64", "ops": ordered} in region["columns"]
    revenue = catalog["queries"]["revenue_by_shipmode"]
    assert revenue["params"]["shipped_from"]["default"] == "1994-01-01"
    assert {"name": "revenue", "type": "decimal(38,4)", "ops": ordered} in revenue["columns"]


def test_queries_shows_only_the_columns_a_table_exposes(serve: Callable[..., str]) -> None:
    catalog = load_catalog(BUNDLED_CATALOG)
    narrow = catalog.tables["world_country_list"].model_copy(
        update={"table": "world_country_list", "columns": ["name", "alpha_3"]}
    )
    url = serve(catalog.model_copy(update={"tables": {"narrow": narrow}}))
    listed = httpx.get(f"{url}/queries").json()["tables"]["narrow"]["columns"]
    assert [c["name"] for c in listed] == ["name", "alpha_3"]


def test_health_and_ready(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {
        "status": "ok",
        "audit_log": "ok",
        "cache": "ok",
        "sources": {"sample": {"status": "ok"}},
    }


def test_openapi_documents_endpoints_errors_and_each_querys_parameters(
    client: httpx.Client,
) -> None:
    document = client.get("/openapi.json").json()
    assert {"/query", "/queries", "/health", "/ready"} <= set(document["paths"])
    responses = document["paths"]["/query"]["post"]["responses"]
    assert {"200", "400", "404", "406", "413", "415", "422", "502", "503", "504"} <= set(responses)
    schemas = document["components"]["schemas"]
    region = schemas["Params_countries_by_region"]
    assert region["required"] == ["region"]
    assert region["properties"]["region"]["enum"] == [
        "Africa",
        "Americas",
        "Asia",
        "Europe",
        "Oceania",
    ]
    assert region["properties"]["min_population"] == {
        "type": "integer",
        "minimum": 0,
        "default": 0,
        "description": "Leave out countries with fewer inhabitants.",
    }
    assert "ErrorBody" in schemas
    assert "QueryBody" in schemas


def test_docs_page(client: httpx.Client) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()
