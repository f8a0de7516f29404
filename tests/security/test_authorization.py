"""Authorization: allow-lists and forced values are checked before the cache or the source.

"Without touching" is read where it happens: the cache's own counters and entries (from
``/cache/stats``, with an admin key) and PostgreSQL's count of executions of the query
(``pg_stat_statements``), before and after each refused request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from livedata.catalog import QueryConfig, TableConfig
from tests.security.conftest import Credentials, Headers, Postgres

MARKER = "security_tenant_rows"
SQL = f"""
WITH {MARKER} AS (
    SELECT alpha_3, region, population FROM world_country_list
    WHERE region = :region AND population >= :min_population
)
SELECT * FROM {MARKER} ORDER BY alpha_3
"""
STORED = "livedata; fwd=miss; stored"
PARAMS = {"region": {"type": "str"}, "min_population": {"type": "int", "default": 0}}


@dataclass
class Server:
    url: str
    credentials: Credentials
    postgres: Postgres

    def ask(self, body: dict[str, Any], headers: Headers) -> httpx.Response:
        return httpx.post(f"{self.url}/query", json=body, headers=headers, timeout=60)

    def as_tenant(self, region: str, **grant: Any) -> Headers:
        grant.setdefault("queries", ["tenant_rows"])
        grant.setdefault("tables", ["countries"])
        return self.credentials.bearer(
            self.credentials.token(restrictions={"region": region}, **grant)
        )

    def untouched(self) -> tuple[Any, int]:
        """What a refused request must leave as it was: the cache's counts, and the source's."""
        stats = httpx.get(f"{self.url}/cache/stats", headers=self.credentials.key("ops")).json()
        return (stats["entries"], stats["counters"]), self.postgres.executions(MARKER)


@pytest.fixture(scope="module")
def server(serve: Callable[..., str], credentials: Credentials, postgres: Postgres) -> Server:
    catalog = postgres.catalog(
        tenant_rows=QueryConfig.model_validate({"source": "pg", "sql": SQL, "params": PARAMS}),
        other=QueryConfig.model_validate({"source": "pg", "sql": "SELECT 1 AS one"}),
    ).model_copy(
        update={"tables": {"countries": TableConfig(source="pg", table="world_country_list")}}
    )
    return Server(serve(catalog, auth_file=credentials.access_file), credentials, postgres)


def test_an_allowed_request_runs_once_then_hits(server: Server) -> None:
    """The control: the refusals below are refusals, not a broken setup."""
    before = server.postgres.executions(MARKER)
    europe = server.as_tenant("Europe")
    first = server.ask({"query": "tenant_rows", "params": {"min_population": 1}}, europe)
    again = server.ask({"query": "tenant_rows", "params": {"min_population": 1}}, europe)
    assert first.status_code == 200, first.text
    assert {row[1] for row in first.json()["rows"]} == {"Europe"}
    assert again.headers["cache-status"] == "livedata; hit"
    assert server.postgres.executions_since(MARKER, before) == 1


REFUSED = {
    "another tenant's value": (
        {"query": "tenant_rows", "params": {"region": "Asia"}},
        403,
        "forbidden",
    ),
    "a query outside the allow-list": ({"query": "other"}, 404, "not_found"),
    "a table outside the allow-list": ({"table": "world_country_list"}, 404, "not_found"),
    "another tenant's rows of a table": (
        {"table": "countries", "filters": [{"column": "region", "op": "eq", "value": "Asia"}]},
        403,
        "forbidden",
    ),
    "a filter widening a restricted column": (
        {"table": "countries", "filters": [{"column": "region", "op": "ne", "value": "Asia"}]},
        403,
        "forbidden",
    ),
}


@pytest.mark.parametrize(("body", "status", "code"), REFUSED.values(), ids=REFUSED.keys())
def test_cross_tenant_requests_touch_neither_cache_nor_source(
    server: Server, body: dict[str, Any], status: int, code: str
) -> None:
    europe = server.as_tenant("Europe", queries=["tenant_rows"], tables=["countries"])
    warmed = server.postgres.executions(MARKER)
    if server.ask({"query": "tenant_rows"}, europe).headers["cache-status"] == STORED:
        server.postgres.executions_since(MARKER, warmed)  # its record lands before "before"
    before = server.untouched()
    response = server.ask(body, europe)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert server.untouched() == before


def test_a_hidden_name_is_answered_like_a_missing_one(server: Server) -> None:
    """404, and "did you mean" and the known names list only what the caller may run."""
    europe = server.as_tenant("Europe")
    hidden = server.ask({"query": "other"}, europe).json()["error"]
    missing = server.ask({"query": "othr"}, europe).json()["error"]
    assert hidden["message"] == "No query named 'other'. Known queries: tenant_rows."
    assert missing["message"] == "No query named 'othr'. Known queries: tenant_rows."
    assert hidden["details"]["did_you_mean"] == missing["details"]["did_you_mean"] == []


def test_a_restriction_that_cannot_apply_refuses_the_query(server: Server) -> None:
    """Fail closed: a tenant-restricted caller allowed a query with no tenant parameter
    gets 403, not every tenant's rows."""
    token = server.as_tenant("Europe", queries=["other"])
    before = server.untouched()
    response = server.ask({"query": "other"}, token)
    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"restriction": "region"}
    assert server.untouched() == before


def test_a_forced_value_may_be_repeated(server: Server) -> None:
    europe = server.as_tenant("Europe")
    response = server.ask({"query": "tenant_rows", "params": {"region": "Europe"}}, europe)
    assert response.status_code == 200
    assert {row[1] for row in response.json()["rows"]} == {"Europe"}


def test_a_table_is_filtered_on_the_restricted_column_even_when_not_selected(
    server: Server,
) -> None:
    europe = server.as_tenant("Europe")
    response = server.ask({"table": "countries", "columns": ["alpha_3"]}, europe)
    everything = server.ask(
        {"table": "countries", "columns": ["alpha_3"]}, server.credentials.key("reader")
    )
    europe_codes = {row[0] for row in response.json()["rows"]}
    assert response.json()["meta"]["rows"] == len(europe_codes) > 0
    assert europe_codes < {row[0] for row in everything.json()["rows"]}
    assert "FRA" in europe_codes
    assert "JPN" not in europe_codes


def test_listings_show_only_what_the_caller_may_run(server: Server) -> None:
    europe = server.as_tenant("Europe")
    listing = httpx.get(f"{server.url}/queries", headers=europe).json()
    assert (set(listing["queries"]), set(listing["tables"])) == ({"tenant_rows"}, {"countries"})
    document = httpx.get(f"{server.url}/openapi.json", headers=europe).json()
    variants = document["components"]["schemas"]["QueryBody"]["anyOf"]
    assert {v["title"] for v in variants} == {"tenant_rows", "countries"}
    assert document["security"] == [{"apiKey": []}, {"token": []}]
    assert document["paths"]["/health"]["get"]["security"] == []
    public = httpx.get(f"{server.url}/openapi.json").json()
    assert "anyOf" not in public["components"]["schemas"]["QueryBody"]
    assert "Params_tenant_rows" not in public["components"]["schemas"]
