"""A paging cursor pages only for the caller it was issued to, under the same restrictions:
another key, or the same subject holding another tenant, gets a 400, never a page."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.security.conftest import Credentials, Headers

FIRST = {
    "table": "world_country_list",
    "order_by": [{"column": "alpha_3"}],
    "limit": 5,
    "paginate": True,
}
GRANT = {"tables": ["world_country_list"], "queries": []}


def ask(url: str, body: dict[str, Any], headers: Headers) -> httpx.Response:
    return httpx.post(f"{url}/query", json=body, headers=headers, timeout=60)


def tenant(credentials: Credentials, region: str) -> Headers:
    """The same subject (token:tester) each time, holding one region."""
    return credentials.bearer(credentials.token(restrictions={"region": region}, **GRANT))


@pytest.mark.parametrize(
    ("owner", "other"),
    [
        pytest.param("reader", "ops", id="another-key"),
        pytest.param("Asia", "Europe", id="same-subject-other-tenant"),
    ],
)
def test_a_cursor_is_refused_to_any_other_caller(
    auth_url: str, credentials: Credentials, owner: str, other: str
) -> None:
    def headers(who: str) -> Headers:
        return credentials.key(who) if who in credentials.api_keys else tenant(credentials, who)

    first = ask(auth_url, FIRST, headers(owner))
    assert first.status_code == 200, first.text
    cursor = {"table": "world_country_list", "cursor": first.json()["meta"]["next"]}

    refused = ask(auth_url, cursor, headers(other))

    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_cursor"
    assert "another caller" in refused.json()["error"]["message"]
    assert ask(auth_url, cursor, headers(owner)).status_code == 200  # its own caller pages on


def test_a_cursor_needs_credentials_like_any_request(
    auth_url: str, credentials: Credentials
) -> None:
    first = ask(auth_url, FIRST, credentials.key("reader"))
    cursor = {"table": "world_country_list", "cursor": first.json()["meta"]["next"]}

    assert ask(auth_url, cursor, {}).status_code == 401
