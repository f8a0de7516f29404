"""Authenticated hits on the memory fast path: still authenticated, expired credentials
refused, the rate limit applied per caller, and each caller given only its own answers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from livedata.auth import credentials as credentials_module
from livedata.auth.credentials import Authenticator
from livedata.catalog import load_catalog
from livedata.errors import Unauthenticated
from livedata.settings import Settings
from tests.cache.traffic import Clock
from tests.scrape import Scrape
from tests.security.conftest import Credentials, Headers

BODY = {"table": "world_country_list", "limit": 4, "offset": 11}


def _reads_from_cache(url: str, admin: Headers) -> float:
    """Bodies the slow path got from the cache (encoded or read back); the fast path gets
    none, so a count that stays put across hits says the fast path answered them."""
    return Scrape(url, admin).total("livedata_encode_duration_seconds_count")


CALLERS: dict[str, Callable[[Credentials], Headers]] = {
    "api key": lambda c: c.key("reader"),
    "embed token": lambda c: c.bearer(c.token("hs", tables=["*"])),
}


@pytest.mark.parametrize("caller", CALLERS.values(), ids=CALLERS.keys())
def test_authenticated_repeats_are_answered_from_memory(
    serve: Callable[..., str], credentials: Credentials, caller: Callable[[Credentials], Headers]
) -> None:
    url = serve(auth_file=credentials.access_file)
    headers = caller(credentials)
    first = [httpx.post(f"{url}/query", json=BODY, headers=headers) for _ in range(2)]
    before = _reads_from_cache(url, credentials.key("ops"))
    repeats = [httpx.post(f"{url}/query", json=BODY, headers=headers) for _ in range(3)]
    assert _reads_from_cache(url, credentials.key("ops")) == before
    assert [r.headers["cache-status"] for r in first + repeats] == [
        "livedata; fwd=miss; stored",
        *["livedata; hit"] * 4,
    ]
    assert {r.content for r in first + repeats} == {first[0].content}
    assert len({r.headers["etag"] for r in first + repeats}) == 1
    # The same raw request with bad credentials is refused, not given the remembered body.
    assert httpx.post(f"{url}/query", json=BODY).status_code == 401
    wrong = {"Authorization": headers["Authorization"][:-3] + "AAA"}
    assert httpx.post(f"{url}/query", json=wrong, headers=wrong).status_code == 401


def test_a_token_that_expires_is_refused_on_the_fast_path(
    serve: Callable[..., str], credentials: Credentials
) -> None:
    expiry = int(time.time()) + 60
    headers = credentials.bearer(credentials.token("hs", exp=expiry, tables=["*"]))
    clock = Clock()
    clock.now = time.time()  # after signing: an iat ahead of the clock is refused
    url = serve(auth_file=credentials.access_file, clock=clock)
    for _ in range(3):  # a miss, a hit, a hit from memory with the credential remembered
        assert httpx.post(f"{url}/query", json=BODY, headers=headers).status_code == 200
    clock.now = expiry
    refused = httpx.post(f"{url}/query", json=BODY, headers=headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthenticated"


def test_the_rate_limit_holds_per_caller_on_the_fast_path(
    serve: Callable[..., str], credentials: Credentials
) -> None:
    other = credentials.bearer(credentials.token("hs", tables=["*"]))
    clock = Clock()
    clock.now = time.time()  # after signing: an iat ahead of the clock is refused
    url = serve(auth_file=credentials.access_file, rate_limit=1, rate_limit_burst=4, clock=clock)
    reader = credentials.key("reader")
    answers = [httpx.post(f"{url}/query", json=BODY, headers=reader) for _ in range(5)]
    assert [r.status_code for r in answers] == [200, 200, 200, 200, 429]
    assert answers[3].headers["cache-status"] == "livedata; hit"
    assert answers[4].json()["error"]["details"]["caller"] == "key:reader"
    # Another caller has a bucket of its own.
    assert httpx.post(f"{url}/query", json=BODY, headers=other).status_code == 200


def _hs_tokens(credentials: Credentials, count: int, **claims: Any) -> list[str]:
    return [f"Bearer {credentials.token('hs', sub=f's{i}', **claims)}" for i in range(count)]


def test_remembered_credentials_are_bounded_and_expire(
    credentials: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(credentials_module, "MEMO_SIZE", 2)
    expiry = int(time.time()) + 60
    tokens = _hs_tokens(credentials, 3, exp=expiry, tables=["*"])
    clock = Clock()
    clock.now = time.time()  # after signing: an iat ahead of the clock is refused
    catalog = load_catalog(Settings().catalog)
    authenticator = Authenticator.from_file(credentials.access_file, catalog, clock)
    assert authenticator is not None
    callers = [authenticator.authenticate(token) for token in tokens]
    assert [c.id for c in callers if c is not None] == ["token:s0", "token:s1", "token:s2"]
    assert len(authenticator._verified) == 2  # the bound is the point
    assert authenticator.authenticate(tokens[2]) is callers[2]  # remembered
    clock.now = expiry
    with pytest.raises(Unauthenticated) as refused:
        authenticator.authenticate(tokens[2])
    assert refused.value.reason == "token expired"
