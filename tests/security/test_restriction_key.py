"""Restrictions are part of the cache key: the same request under two sets of forced values
never shares rows. Each case changes one restriction-bearing claim only, so dropping any of
them from the key (or from the rows' selection) fails its case."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.security.conftest import Credentials

STORED, HIT = "livedata; fwd=miss; stored", "livedata; hit"

CASES = [
    pytest.param(
        {"query": "countries_by_region", "params": {"min_population": 0}},
        {"region": "Europe"},
        {"region": "Asia"},
        id="query-parameter",
    ),
    pytest.param(
        {"query": "countries_by_region"},
        {"region": "Europe", "min_population": 0},
        {"region": "Europe", "min_population": 50_000_000},
        id="second-restriction-of-a-query",
    ),
    pytest.param(
        {"table": "world_country_list", "columns": ["name"], "order_by": [{"column": "name"}]},
        {"region": "Europe"},
        {"region": "Asia"},
        id="table-column",
    ),
    pytest.param(
        {"table": "world_country_list", "columns": ["name"]},
        {"region": "Europe", "sub_region": "Western Europe"},
        {"region": "Europe", "sub_region": "Northern Europe"},
        id="second-restriction-of-a-table",
    ),
]


@pytest.mark.parametrize(("body", "first", "second"), CASES)
def test_two_restrictions_never_share_rows(
    serve: Callable[..., str],
    credentials: Credentials,
    body: dict[str, Any],
    first: dict[str, Any],
    second: dict[str, Any],
) -> None:
    url = serve(auth_file=credentials.access_file)  # a cache of its own

    def ask(restrictions: dict[str, Any]) -> httpx.Response:
        grant = {"queries": ["*"], "tables": ["*"], "restrictions": restrictions}
        token = credentials.token(**grant)
        response = httpx.post(f"{url}/query", json=body, headers=credentials.bearer(token))
        assert response.status_code == 200, response.text
        return response

    a, b = ask(first), ask(second)
    assert (a.headers["cache-status"], b.headers["cache-status"]) == (STORED, STORED)
    assert a.json()["rows"] != b.json()["rows"]
    a_again, b_again = ask(first), ask(second)
    assert (a_again.headers["cache-status"], b_again.headers["cache-status"]) == (HIT, HIT)
    assert a_again.json()["rows"] == a.json()["rows"]
    assert b_again.json()["rows"] == b.json()["rows"]
