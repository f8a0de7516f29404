"""`GET /query?q=...`: the request in the URL, so HTTP caches can hold answers (issue 14)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from tests.scrape import Scrape
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


@pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "api-key"])
def test_repeated_gets_are_answered_from_memory(
    base_url: str, auth_url: str, credentials: Credentials, authenticated: bool
) -> None:
    """The JavaScript client's requests are GETs: their hits take the memory fast path too,
    and an authenticated caller's answer stays private there."""
    url, headers = (auth_url, credentials.key("reader")) if authenticated else (base_url, {})
    admin = credentials.key("ops") if authenticated else {}
    body = {"table": "world_country_list", "limit": 5, "offset": 7 + authenticated}
    answers = [httpx.get(f"{url}/query", params=in_url(body), headers=headers) for _ in range(2)]
    encoded = Scrape(url, admin).total("livedata_encode_duration_seconds_count")
    again = httpx.get(f"{url}/query", params=in_url(body), headers=headers)
    assert Scrape(url, admin).total("livedata_encode_duration_seconds_count") == encoded
    assert again.content == answers[0].content
    assert again.headers["cache-status"] == "livedata; hit"
    assert again.headers["etag"] == answers[0].headers["etag"]
    private = again.headers["cache-control"].startswith("private, max-age=")
    assert private == authenticated


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
