"""What browsers see: the CORS allow-list, Vary, and the security headers, on the slow path
and on the hot path alike."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable

import httpx
import pytest

from tests.scrape import Scrape

APP = "https://app.example"
BODY = {"table": "world_country_list", "limit": 2}


@pytest.fixture(scope="module")
def url(serve: Callable[..., str]) -> str:
    return serve(cors_origins=f"{APP}, https://other.example")


def test_a_listed_origin_may_read_every_answer(url: str) -> None:
    for _ in range(3):  # a miss, a hit, a hit from the hot path
        response = httpx.post(f"{url}/query", json=BODY, headers={"Origin": APP})
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == APP
        assert "access-control-allow-credentials" not in response.headers
        assert "X-Request-Id" in response.headers["access-control-expose-headers"]
        vary = [v.strip() for v in response.headers["vary"].split(",")]
        assert {"Accept", "Accept-Encoding", "Authorization", "Cache-Control", "Origin"} <= set(
            vary
        )


@pytest.mark.parametrize(
    ("origin", "limit"),
    [(None, 3), (APP, 5), ("https://evil.example", 6)],
    ids=["no origin", "listed origin", "unlisted origin"],
)
def test_the_hot_lane_answers_with_the_full_stacks_headers(
    url: str, origin: str | None, limit: int
) -> None:
    """A repeat is answered from memory before any middleware; its headers are the ones the
    full stack gave the hit before it: CORS's per origin (an embedded dashboard's requests
    are cross-origin), Vary's Origin (so no shared cache hands it to a page of another
    origin), the security headers."""
    body = {"table": "world_country_list", "limit": limit}
    asked = {} if origin is None else {"Origin": origin}
    responses = [httpx.post(f"{url}/query", json=body, headers=asked) for _ in range(2)]
    encoded = Scrape(url).total("livedata_encode_duration_seconds_count")
    hot = httpx.post(f"{url}/query", json=body, headers=asked)
    assert Scrape(url).total("livedata_encode_duration_seconds_count") == encoded, "from memory"
    changing = {"x-request-id", "date", "age", "cache-control"}
    slow, hot_headers = ({k: v for k, v in r.headers.items() if k not in changing}
                         for r in (responses[1], hot))  # fmt: skip
    assert hot_headers == slow
    assert slow["cache-status"] == "livedata; hit"
    assert [v.strip() for v in slow["vary"].split(",")].count("Origin") == 1
    granted = hot.headers.get("access-control-allow-origin")
    assert granted == (APP if origin == APP else None)
    assert hot.headers["x-request-id"] != responses[1].headers["x-request-id"]


def test_a_remembered_body_grants_each_origin_its_own(url: str) -> None:
    """The hot lane keeps a body's CORS headers per origin: from another origin, or from
    none, the same body is sent with that one's grant, never the last asker's."""
    body = {"table": "world_country_list", "limit": 7}
    origins = [APP, "https://other.example", "https://evil.example", None, APP, None]
    many = [f"https://{n}.evil.example" for n in range(20)]  # more than it keeps headers for
    encoded = None
    for origin in origins + many + origins:  # a miss, then a hit that remembers, then memory
        asked = {} if origin is None else {"Origin": origin}
        response = httpx.post(f"{url}/query", json=body, headers=asked)
        granted = response.headers.get("access-control-allow-origin")
        assert granted == (origin if origin in (APP, "https://other.example") else None)
        assert "Origin" in response.headers["vary"]
        if encoded is None:
            encoded = Scrape(url).total("livedata_encode_duration_seconds_count")
    assert Scrape(url).total("livedata_encode_duration_seconds_count") == encoded, "from memory"


def test_an_unlisted_origin_gets_no_grant(url: str) -> None:
    response = httpx.post(f"{url}/query", json=BODY, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    assert "Origin" in response.headers["vary"]  # so no cache serves it to a listed origin


def test_preflight(url: str) -> None:
    asked = {
        "Origin": APP,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization",
    }
    response = httpx.options(f"{url}/query", headers=asked)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP
    assert "POST" in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-max-age"] == "600"
    refused = httpx.options(f"{url}/query", headers={**asked, "Origin": "https://evil.example"})
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers


def test_without_origins_configured_no_cors_at_all(base_url: str) -> None:
    response = httpx.post(f"{base_url}/query", json=BODY, headers={"Origin": APP})
    assert "access-control-allow-origin" not in response.headers
    assert httpx.options(f"{base_url}/query", headers={"Origin": APP}).status_code == 405


@pytest.mark.parametrize("path", ["/query", "/health", "/queries", "/nowhere"])
def test_security_headers_everywhere(url: str, path: str) -> None:
    for _ in range(3):
        if path == "/query":
            response = httpx.post(f"{url}{path}", json=BODY)
        else:
            response = httpx.get(f"{url}{path}")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert (
            response.headers["content-security-policy"]
            == "default-src 'none'; frame-ancestors 'none'"
        )


def test_the_docs_page_may_run_its_own_script_only(url: str) -> None:
    response = httpx.get(f"{url}/docs")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in policy
    assert "https:" not in policy, "every asset comes from this origin"
    assert "frame-ancestors 'none'" in policy
    inline = re.findall(rb"<script>(.*?)</script>", response.content, re.DOTALL)
    assert inline, "the docs page has its inline script"
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]


def test_credentials_with_any_origin_refuse_to_start(serve: Callable[..., str]) -> None:
    with pytest.raises(ValueError, match="list the origins instead"):
        serve(cors_origins="*", cors_allow_credentials=True)
