"""`GET /query?q=...`: the request in the URL, so HTTP caches can hold answers (issue 14)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from tests.security.conftest import Credentials

REGION = {"query": "countries_by_region", "params": {"region": "Asia"}, "limit": 7}


def in_url(body: dict[str, Any]) -> dict[str, str]:
    """The canonical form: keys sorted, no spaces (the JavaScript client's)."""
    return {"q": orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()}


@pytest.fixture(scope="module")
def small_bodies_url(serve: Callable[..., str]) -> str:
    return serve(max_body_bytes=1000)


def test_get_answers_as_post_does(base_url: str) -> None:
    posted = httpx.post(f"{base_url}/query", json=REGION)
    got = httpx.get(f"{base_url}/query", params=in_url(REGION))
    assert got.status_code == 200
    assert got.json()["rows"] == posted.json()["rows"]
    assert got.headers["etag"] == posted.headers["etag"]
    assert got.headers["cache-status"] == "livedata; hit"
    assert got.headers["cache-control"].startswith("max-age=")  # a shared cache may keep it
    again = httpx.get(
        f"{base_url}/query", params=in_url(REGION), headers={"if-none-match": got.headers["etag"]}
    )
    assert again.status_code == 304


def test_an_authenticated_answer_is_private(auth_url: str, credentials: Credentials) -> None:
    body = {"table": "world_country_list", "limit": 3}
    got = httpx.get(f"{auth_url}/query", params=in_url(body), headers=credentials.key("reader"))
    assert got.status_code == 200
    assert got.headers["cache-control"].startswith("private, max-age=")


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        pytest.param({}, 400, "malformed_body", id="no-q"),
        pytest.param({"q": "{not json"}, 400, "malformed_body", id="not-json"),
        pytest.param({"q": '{"table": "nowhere"}'}, 404, "not_found", id="unknown-table"),
        pytest.param({"q": "[" + " " * 2000 + "]"}, 413, "body_too_large", id="too-long"),
    ],
)
def test_mistakes_in_the_url_are_clear_errors(
    small_bodies_url: str, params: dict[str, str], status: int, code: str
) -> None:
    response = httpx.get(f"{small_bodies_url}/query", params=params)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
