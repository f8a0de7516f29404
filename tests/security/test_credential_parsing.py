"""What a caller sends is parsed strictly: one ``Authorization`` header, only RFC 9110
whitespace (SP, HTAB) around it, a b64token credential, numeric dates in range. Anything else
is a 400 (more than one header) or the one 401, always in the JSON error shape: never a 500,
never a success.

C0 control bytes and DEL never reach livedata: the HTTP server's parser refuses them first.
The C1 range (0x80-0x9f, e.g. NEL) and other latin-1 bytes do reach it, so they are here.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from livedata.auth.access import Tokens
from livedata.auth.tokens import date_problem
from tests.security.conftest import Credentials

BODY = {"table": "world_country_list", "limit": 1}
RawHeaders = list[tuple[str, bytes]]
Case = Callable[[Credentials], RawHeaders]


def _key(c: Credentials) -> bytes:
    return f"Bearer {c.api_keys['reader']}".encode()


def _token(c: Credentials) -> bytes:
    return f"Bearer {c.token('ed', tables=['world_country_list'])}".encode()


def _auth(*values: bytes) -> RawHeaders:
    return [("Authorization", value) for value in values]


def _post(
    url: str, headers: RawHeaders, method: str = "POST", path: str = "/query"
) -> httpx.Response:
    """Sent with http.client, which sends header bytes as given (httpx refuses leading or
    trailing whitespace in a value, which is what some of these cases are about)."""
    connection = http.client.HTTPConnection(httpx.URL(url).host, httpx.URL(url).port)
    try:
        connection.putrequest(method, path)
        body = json.dumps(BODY).encode()
        sizes = [("Content-Type", b"application/json"), ("Content-Length", b"%d" % len(body))]
        for name, value in [*headers, *sizes]:
            connection.putheader(name, value)
        connection.endheaders(body)
        answer = connection.getresponse()
        return httpx.Response(answer.status, headers=answer.getheaders(), content=answer.read())
    finally:
        connection.close()


def _error(response: httpx.Response) -> dict[str, object]:
    """The error object, after checking the body is exactly our error shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, object] = body["error"]
    assert set(error) == {"code", "message", "request_id", "details"}, error
    assert error["request_id"] == response.headers["x-request-id"]
    return error


def _without_request_id(response: httpx.Response) -> bytes:
    return response.content.replace(response.headers["x-request-id"].encode(), b"<id>")


DUPLICATES = [
    pytest.param(lambda c: _auth(_key(c), b"Bearer nonsense"), id="valid-key-then-garbage"),
    pytest.param(lambda c: _auth(_token(c), b"Basic dXNlcjpwYXNz"), id="valid-token-then-basic"),
    pytest.param(lambda c: _auth(b"Bearer nonsense", _key(c)), id="garbage-then-valid-key"),
    pytest.param(lambda c: _auth(_key(c), _key(c)), id="the-same-key-twice"),
    pytest.param(lambda c: _auth(_key(c), _token(c)), id="key-then-token"),
    pytest.param(lambda c: _auth(_key(c), b""), id="valid-key-then-empty"),
]


@pytest.mark.parametrize("headers", DUPLICATES)
def test_more_than_one_authorization_header_is_a_malformed_request(
    auth_url: str, credentials: Credentials, headers: Case
) -> None:
    """RFC 9110: Authorization is a singleton field. A proxy that checks the last one must
    not see a different caller than livedata, so livedata takes neither."""
    response = _post(auth_url, headers(credentials))
    assert response.status_code == 400, response.text
    error = _error(response)
    assert error["code"] == "malformed_header"
    assert error["details"] == {"header": "authorization", "count": 2}
    assert "www-authenticate" not in response.headers


def test_more_than_one_authorization_header_is_refused_on_public_paths_too(
    auth_url: str, credentials: Credentials
) -> None:
    response = _post(auth_url, _auth(_key(credentials), b"x"), "GET", "/health")
    assert response.status_code == 400, response.text
    assert _error(response)["code"] == "malformed_header"


LONG = 100_000
MALFORMED = [
    pytest.param(lambda c: _auth(_key(c) + b"\xa0"), id="key-then-nbsp"),
    pytest.param(lambda c: _auth(_token(c) + b"\x85"), id="token-then-nel"),
    pytest.param(lambda c: _auth(_key(c) + b"\x85"), id="key-then-nel"),
    pytest.param(lambda c: _auth(_token(c) + b"\xa0"), id="token-then-nbsp"),
    pytest.param(lambda c: _auth(b"\xa0" + _key(c)), id="nbsp-then-key"),
    pytest.param(lambda c: _auth(_key(c).replace(b" ", b"\xa0")), id="nbsp-after-scheme"),
    pytest.param(lambda c: _auth(_key(c) + "\u2003".encode()), id="key-then-em-space-utf8"),
    pytest.param(lambda c: _auth(_key(c) + "\u3000".encode()), id="key-then-ideographic-space"),
    pytest.param(lambda c: _auth(_key(c).replace(b" ", b"\t")), id="tab-after-scheme"),
    pytest.param(lambda c: _auth(_key(c)[:20] + b"\x85" + _key(c)[20:]), id="nel-inside-key"),
    pytest.param(lambda c: _auth(_token(c)[:30] + b"\x9b" + _token(c)[30:]), id="csi-in-token"),
    pytest.param(lambda c: _auth(_key(c)[:20] + b"\t" + _key(c)[20:]), id="tab-inside-key"),
    pytest.param(lambda c: _auth(_key(c) + b"\x80"), id="key-then-c1-pad"),
    pytest.param(lambda c: _auth(_key(c) + b"\xff"), id="key-then-latin1-y"),
    pytest.param(lambda c: _auth(_key(c) + b" extra"), id="two-credentials"),
    pytest.param(lambda c: _auth(_key(c) + b"=="), id="key-with-padding"),
    pytest.param(lambda c: _auth(b""), id="empty"),
    pytest.param(lambda c: _auth(b"   "), id="only-spaces"),
    pytest.param(lambda c: _auth(b"Bearer \t "), id="scheme-then-whitespace"),
    pytest.param(lambda c: _auth(b"Bearer " + b"A" * LONG), id="very-long-garbage"),
    pytest.param(lambda c: _auth(_key(c) + b"A" * LONG), id="very-long-after-a-key"),
    pytest.param(lambda c: _auth(_token(c) + b"." + b"A" * LONG), id="very-long-token"),
    pytest.param(lambda c: _auth(b"Bearer " + b"=" * LONG), id="very-long-padding"),
]


@pytest.mark.parametrize("headers", MALFORMED)
def test_a_malformed_credential_gets_the_one_401(
    auth_url: str, credentials: Credentials, headers: Case
) -> None:
    reference = _post(auth_url, [])
    response = _post(auth_url, headers(credentials))
    assert response.status_code == 401, response.text
    assert _error(response)["code"] == "unauthenticated"
    assert _without_request_id(response) == _without_request_id(reference)
    assert response.headers["www-authenticate"] == reference.headers["www-authenticate"]


ACCEPTED = [
    pytest.param(lambda c: _auth(_key(c) + b" \t "), id="key-then-sp-and-htab"),
    pytest.param(lambda c: _auth(b"\t " + _key(c)), id="htab-and-sp-then-key"),
    pytest.param(lambda c: _auth(_token(c) + b"\t"), id="token-then-htab"),
    pytest.param(lambda c: _auth(_key(c).replace(b"Bearer", b"bEaReR")), id="scheme-any-case"),
    pytest.param(lambda c: _auth(_key(c).replace(b" ", b"   ")), id="spaces-after-scheme"),
]


@pytest.mark.parametrize("headers", ACCEPTED)
def test_rfc_9110_whitespace_and_any_scheme_case_are_accepted(
    auth_url: str, credentials: Credentials, headers: Case
) -> None:
    """The control for the cases above: strict is not stricter than the RFC."""
    response = _post(auth_url, headers(credentials))
    assert response.status_code == 200, response.text


HUGE = 10**400  # a JSON number no float holds
DATES = [
    pytest.param({"exp": HUGE}, id="exp-1-and-400-zeros"),
    pytest.param({"exp": -HUGE}, id="exp-minus-huge"),
    pytest.param({"exp": float("inf")}, id="exp-infinity"),
    pytest.param({"exp": float("nan")}, id="exp-nan"),
    pytest.param({"exp": 1e300}, id="exp-1e300"),
    pytest.param({"exp": True}, id="exp-true"),
    pytest.param({"exp": "{soon}"}, id="exp-a-string"),
    pytest.param({"exp": -1}, id="exp-before-1970"),
    pytest.param({"nbf": HUGE}, id="nbf-huge"),
    pytest.param({"nbf": -HUGE}, id="nbf-minus-huge"),
    pytest.param({"nbf": "0"}, id="nbf-a-string"),
    pytest.param({"nbf": float("nan")}, id="nbf-nan"),
    pytest.param({"iat": HUGE}, id="iat-huge"),
    pytest.param({"iat": -HUGE}, id="iat-minus-huge"),
    pytest.param({"iat": "{now}"}, id="iat-a-string"),
    pytest.param({"iat": float("-inf")}, id="iat-minus-infinity"),
    pytest.param({"iat": [1]}, id="iat-a-list"),
]


@pytest.mark.parametrize("dates", DATES)
def test_a_signed_token_with_an_out_of_range_date_gets_the_one_401(
    auth_url: str, credentials: Credentials, dates: dict[str, object]
) -> None:
    """Correctly signed, so only the range check stands between these and arithmetic."""
    now = int(time.time())
    claims = {
        name: value.format(soon=now + 60, now=now) if isinstance(value, str) else value
        for name, value in dates.items()
    }
    for kid in ("ed", "hs"):
        token = credentials.token(kid, tables=["world_country_list"], **claims)
        reference = _post(auth_url, [])
        response = _post(auth_url, _auth(f"Bearer {token}".encode()))
        assert response.status_code == 401, (kid, response.text)
        assert _without_request_id(response) == _without_request_id(reference)


@pytest.mark.parametrize(
    "offsets",
    [
        pytest.param({"iat": 0}, id="iat-now"),
        pytest.param({"iat": None, "nbf": 0}, id="nbf-now-no-iat"),
        pytest.param({"exp": 60.5, "iat": -0.5}, id="fractional-dates"),
    ],
)
def test_numeric_dates_in_range_are_accepted(
    auth_url: str, credentials: Credentials, offsets: dict[str, float | None]
) -> None:
    """The control: a NumericDate may be any JSON number, fractions too (RFC 7519 2).
    Offsets are seconds from now; None leaves the claim out."""
    now = time.time()
    claims = {name: None if o is None else now + o for name, o in offsets.items()}
    token = credentials.token("ed", tables=["world_country_list"], **claims)
    response = _post(auth_url, _auth(f"Bearer {token}".encode()))
    assert response.status_code == 200, response.text


LEEWAY, MAX_TTL, NOW = 30, 600, 1_800_000_000
BOUNDS = Tokens(audience="a", keys={}, jwks=Path("unused.json"), leeway=LEEWAY, max_ttl=MAX_TTL)


@pytest.mark.parametrize(
    ("claims", "problem"),
    [
        pytest.param({"exp": NOW + 1}, None, id="exp-ahead"),
        pytest.param({"exp": NOW - LEEWAY + 0.5}, None, id="exp-within-leeway"),
        pytest.param({"exp": NOW - LEEWAY}, "expired", id="exp-at-leeway"),
        pytest.param({"exp": NOW + MAX_TTL + LEEWAY}, None, id="exp-at-max-ttl"),
        pytest.param({"exp": NOW + MAX_TTL + LEEWAY + 1}, "max_ttl", id="exp-past-max-ttl"),
        pytest.param({"exp": NOW + 1, "nbf": NOW + LEEWAY}, None, id="nbf-within-leeway"),
        pytest.param({"exp": NOW + 1, "nbf": NOW + LEEWAY + 1}, "nbf", id="nbf-ahead"),
        pytest.param({"exp": NOW + 1, "iat": NOW + LEEWAY + 1}, "iat", id="iat-ahead"),
        pytest.param({"exp": NOW + 1, "iat": 0}, None, id="iat-1970"),
        pytest.param({"exp": 253402300800}, "1970 to 9999", id="exp-year-10000"),
        pytest.param({"exp": NOW + 1, "nbf": -1e-9}, "1970 to 9999", id="nbf-before-1970"),
        pytest.param({"exp": NOW + 1, "iat": None}, "not a number", id="iat-null"),
    ],
)
def test_date_rules_at_their_bounds(claims: dict[str, object], problem: str | None) -> None:
    """The bounds the server cannot show without a clock of its own: leeway on every side."""
    found = date_problem(claims, NOW, BOUNDS)
    assert found is None if problem is None else (found is not None and problem in found)
