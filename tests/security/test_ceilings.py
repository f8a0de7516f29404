"""A ceiling per token key: the most a token signed with that key may grant. A leaked signing
key is worth its ceiling and no more. A token asking for more is refused whole with the one
401, never trimmed to fit; a key without a ceiling may grant any query or table, never admin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from livedata.auth.credentials import Authenticator
from livedata.catalog import load_catalog
from livedata.settings import BUNDLED_CATALOG
from tests.security.conftest import CEILINGS, EVERYTHING, Credentials, write_access

QUERY = {"query": "countries_by_region", "params": {"region": "Europe"}}  # as EUROPE forces
TABLE = {"table": "world_country_list", "columns": ["name"], "limit": 1}
KEYS = [pytest.param("ed", id="tokens-keys"), pytest.param("rs-next", id="jwks")]
UNLIMITED = ["es", "ed", "hs", "rs-next"]  # the kids without a ceiling in the shared file


def _ask(url: str, body: dict[str, Any], token: str) -> httpx.Response:
    return httpx.post(f"{url}/query", json=body, headers={"Authorization": f"Bearer {token}"})


def _the_one_401(url: str, response: httpx.Response) -> None:
    reference = httpx.post(f"{url}/query", json=QUERY)
    assert response.status_code == 401, response.text

    def body(r: httpx.Response) -> bytes:
        return r.content.replace(r.headers["x-request-id"].encode(), b"<id>")

    assert body(response) == body(reference)
    assert response.headers["www-authenticate"] == reference.headers["www-authenticate"]


@pytest.mark.parametrize("kid", UNLIMITED)
def test_a_key_without_a_ceiling_cannot_mint_admin(
    auth_url: str, credentials: Credentials, kid: str
) -> None:
    """The finding: any configured key could sign a token granting admin."""
    token = credentials.token(kid, admin=True, **EVERYTHING)
    response = httpx.get(f"{auth_url}/cache/stats", headers=credentials.bearer(token))
    _the_one_401(auth_url, response)
    without_admin = credentials.bearer(credentials.token(kid, **EVERYTHING))
    assert httpx.post(f"{auth_url}/query", json=QUERY, headers=without_admin).status_code == 200


@pytest.fixture(scope="module")
def ceilings_url(serve: Callable[..., str], credentials: Credentials) -> str:
    """The bundled catalog behind an access file whose keys declare ceilings (hs and rs none)."""
    access, _ = write_access(credentials.access_file.parent, {}, CEILINGS, name="ceilings")
    return serve(auth_file=access)


EUROPE = {"region": "Europe"}
BASE = {"queries": ["countries_by_region"], "restrictions": EUROPE}


@pytest.mark.parametrize("kid", KEYS)
@pytest.mark.parametrize(
    ("body", "grant"),
    [
        pytest.param(QUERY, BASE, id="a-query"),
        pytest.param(
            TABLE, {"tables": ["world_country_list"], "restrictions": EUROPE}, id="a-table"
        ),
        pytest.param(QUERY, {**BASE, "restrictions": {**EUROPE, "min_population": 0}}, id="more"),
        pytest.param(QUERY, {**BASE, "admin": False}, id="admin-false"),
    ],
)
def test_a_grant_within_the_ceiling_is_accepted(
    ceilings_url: str, credentials: Credentials, kid: str, body: Any, grant: dict[str, Any]
) -> None:
    response = _ask(ceilings_url, body, credentials.token(kid, **grant))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("kid", KEYS)
@pytest.mark.parametrize(
    "widening",
    [
        pytest.param({"queries": ["countries_by_region", "country"]}, id="queries-one-more"),
        pytest.param({"queries": ["*"]}, id="queries-all"),
        pytest.param({"tables": ["tpch_lineitem"]}, id="tables-another"),
        pytest.param({"tables": ["*"]}, id="tables-all"),
        pytest.param({"restrictions": {}}, id="restrictions-required-missing"),
        pytest.param({"restrictions": {"min_population": 0}}, id="restrictions-other-only"),
        pytest.param({"admin": True}, id="admin"),
    ],
)
def test_a_grant_beyond_the_ceiling_is_refused_not_trimmed(
    ceilings_url: str, credentials: Credentials, kid: str, widening: dict[str, Any]
) -> None:
    """Each case is the accepted BASE grant widened in one field, so only the ceiling can be
    what refuses it; and the request asks only for what BASE allows, so trimming the grant
    to fit would have answered 200."""
    response = _ask(ceilings_url, QUERY, credentials.token(kid, **{**BASE, **widening}))
    _the_one_401(ceilings_url, response)


def test_admin_needs_a_ceiling_that_says_so(ceilings_url: str, credentials: Credentials) -> None:
    def stats(kid: str) -> httpx.Response:
        token = credentials.token(kid, admin=True, **EVERYTHING)
        return httpx.get(f"{ceilings_url}/cache/stats", headers=credentials.bearer(token))

    assert stats("es").status_code == 200  # admin = true in its ceiling
    _the_one_401(ceilings_url, stats("hs"))  # no ceiling: never admin
    _the_one_401(ceilings_url, stats("ed"))  # a ceiling without admin


def test_a_key_without_a_ceiling_grants_any_query_or_table(
    ceilings_url: str, credentials: Credentials
) -> None:
    for body in (QUERY, TABLE):
        response = _ask(ceilings_url, body, credentials.token("hs", **EVERYTHING))
        assert response.status_code == 200, response.text


def test_start_up_warns_of_each_key_without_a_ceiling(
    credentials: Credentials, caplog: pytest.LogCaptureFixture
) -> None:
    access, _ = write_access(credentials.access_file.parent, {}, CEILINGS, name="warned")
    caplog.set_level(logging.WARNING, "livedata.auth")
    Authenticator.from_file(access, load_catalog(BUNDLED_CATALOG))
    warned = [r.getMessage() for r in caplog.records if "no ceiling" in r.getMessage()]
    assert len(warned) == 2, warned
    assert "tokens.keys.hs" in warned[0] + warned[1]
    assert "tokens.keys.rs" in warned[0] + warned[1]
    assert all("never admin" in message for message in warned)
