"""The admin scope: cache management and metrics need it; probes and documents do not."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.security.conftest import Credentials, Headers

ADMIN_ONLY = [
    pytest.param("GET", "/cache", None, id="cache-list"),
    pytest.param("GET", "/cache/stats", None, id="cache-stats"),
    pytest.param("POST", "/cache/invalidate", {"all": True}, id="cache-invalidate"),
    pytest.param("POST", "/cache/purge", None, id="cache-purge"),
    pytest.param("GET", "/metrics", None, id="metrics"),
]


def _call(url: str, method: str, path: str, body: Any, headers: Headers) -> httpx.Response:
    return httpx.request(method, f"{url}{path}", json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY)
def test_admin_endpoints_need_the_admin_scope(
    auth_url: str, credentials: Credentials, method: str, path: str, body: Any
) -> None:
    everything = {"queries": ["*"], "tables": ["*"]}
    refused = {
        "no credentials": ({}, 401),
        "a key without admin": (credentials.key("reader"), 403),
        "a token without admin": (credentials.bearer(credentials.token(**everything)), 403),
    }
    for what, (headers, status) in refused.items():
        response = _call(auth_url, method, path, body, headers)
        assert response.status_code == status, what
    forbidden = _call(auth_url, method, path, body, credentials.key("reader")).json()["error"]
    assert forbidden["code"] == "forbidden"
    admin_token = credentials.bearer(credentials.token(admin=True))
    for headers in (credentials.key("ops"), admin_token):
        assert _call(auth_url, method, path, body, headers).status_code == 200


def test_ready_is_public_but_names_sources_to_admins_only(
    auth_url: str, credentials: Credentials
) -> None:
    assert httpx.get(f"{auth_url}/ready").json() == {"status": "ok"}
    reader = httpx.get(f"{auth_url}/ready", headers=credentials.key("reader")).json()
    assert "sources" not in reader
    ops = httpx.get(f"{auth_url}/ready", headers=credentials.key("ops")).json()
    assert ops["sources"] == {"sample": {"status": "ok"}}


def test_the_openapi_document_lists_401_and_403(auth_url: str, credentials: Credentials) -> None:
    paths = httpx.get(f"{auth_url}/openapi.json").json()["paths"]
    assert {"401", "403"} <= set(paths["/query"]["post"]["responses"])
    assert {"401", "403"} <= set(paths["/cache/stats"]["get"]["responses"])
    assert {"401", "403"} <= set(paths["/metrics"]["get"]["responses"])
    assert "401" in paths["/queries"]["get"]["responses"]
