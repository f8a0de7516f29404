"""Authentication: every attack on a key or token gets the same 401; real credentials work.

The client must not learn which check failed (it would tell an attacker what to change
next), so bodies are compared byte for byte once the request id is taken out; the server's
log says why, and never repeats the credential.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable

import httpx
import jwt
import pytest

from tests.security.conftest import AUDIENCE, Credentials, Headers

BODY = {"table": "world_country_list", "limit": 1}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, object], claims: dict[str, object], signature: bytes) -> str:
    """A JWT assembled by hand: what an attacker sends, which no library would sign."""
    head = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    return head + "." + _b64(signature)


def _claims() -> dict[str, object]:
    now = int(time.time())
    return {"sub": "attacker", "aud": AUDIENCE, "exp": now + 600, "tables": ["*"]}


def _alg_none(c: Credentials) -> Headers:
    return c.bearer(_unsigned({"alg": "none", "kid": "rs", "typ": "JWT"}, _claims(), b""))


def _hs_signed_with_rs_public_key(c: Credentials) -> Headers:
    """Algorithm confusion: HS256 keyed with the RS256 public key, which anyone may have."""
    header = {"alg": "HS256", "kid": "rs", "typ": "JWT"}
    unsigned = _unsigned(header, _claims(), b"").rstrip(".")
    signature = hmac.new(c.public_pem["rs"], unsigned.encode(), hashlib.sha256).digest()
    return c.bearer(unsigned + "." + _b64(signature))


def _wrong_key(c: Credentials) -> Headers:
    """Signed by a key the server trusts, under another key's id."""
    algorithm, key = c.signing["rs-next"]
    token = jwt.encode(_claims(), key, algorithm=algorithm, headers={"kid": "rs"})
    return c.bearer(token)


def _tampered(c: Credentials) -> Headers:
    """A real token whose claims were edited after signing (widening its tables)."""
    head, _, signature = c.token(tables=["world_country_list"]).split(".")
    return c.bearer(".".join([head, _b64(json.dumps(_claims()).encode()), signature]))


def _wrong_api_key_secret(c: Credentials) -> Headers:
    key = c.api_keys["reader"]
    return c.bearer(key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB"))


ATTACKS: dict[str, Callable[[Credentials], Headers]] = {
    "no credentials": lambda c: {},
    "not bearer": lambda c: {"Authorization": "Basic dXNlcjpwYXNz"},
    "empty bearer": lambda c: {"Authorization": "Bearer"},
    "alg none": _alg_none,
    "hs/rs confusion": _hs_signed_with_rs_public_key,
    "wrong key": _wrong_key,
    "wrong hs secret": lambda c: c.bearer(c.token("hs").rsplit(".", 1)[0] + "." + _b64(b"\0" * 32)),
    "expired": lambda c: c.bearer(c.token(exp=int(time.time()) - 3600, tables=["*"])),
    "not yet valid": lambda c: c.bearer(c.token(nbf=int(time.time()) + 3600, tables=["*"])),
    "wrong audience": lambda c: c.bearer(c.token(aud="someone-else", tables=["*"])),
    "no audience": lambda c: c.bearer(c.token(aud=None, tables=["*"])),
    "no expiry": lambda c: c.bearer(c.token(exp=None, tables=["*"])),
    "no subject": lambda c: c.bearer(c.token(sub=None, tables=["*"])),
    "empty subject": lambda c: c.bearer(c.token(sub=" ", tables=["*"])),
    "lives too long": lambda c: c.bearer(c.token(exp=int(time.time()) + 400 * 86400)),
    "tampered claims": _tampered,
    "malformed grant claim": lambda c: c.bearer(c.token(tables="world_country_list")),
    "malformed token": lambda c: c.bearer("eyJhbGciOi.not-a-token"),
    "garbage": lambda c: c.bearer("x" * 300),
    "unknown key id": lambda c: c.bearer(c.token(headers={"kid": "retired"}, tables=["*"])),
    "no key id": lambda c: c.bearer(_unsigned({"alg": "RS256"}, _claims(), b"sig")),
    "wrong api key secret": _wrong_api_key_secret,
    "unknown api key id": lambda c: c.bearer("ld_nobody_" + "A" * 43),
}


def _without_request_id(response: httpx.Response) -> bytes:
    request_id = response.headers["x-request-id"]
    assert request_id.encode() in response.content
    return response.content.replace(request_id.encode(), b"<id>")


def test_every_attack_gets_one_and_the_same_401(
    auth_url: str, credentials: Credentials, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "livedata.auth")
    answers = {}
    sent = []
    for name, attack in ATTACKS.items():
        headers = attack(credentials)
        sent += [v.removeprefix("Bearer ") for v in headers.values()]
        response = httpx.post(f"{auth_url}/query", json=BODY, headers=headers)
        assert response.status_code == 401, (name, response.text)
        assert response.headers["www-authenticate"].startswith('Bearer realm="livedata"'), name
        answers[name] = (_without_request_id(response), response.headers["www-authenticate"])
    assert len(set(answers.values())) == 1, answers
    reasons = [r.getMessage() for r in caplog.records if "authentication failed" in r.message]
    assert len(reasons) == len(ATTACKS)
    assert len({r.split("failed: ")[1] for r in reasons}) > len(ATTACKS) // 2  # says why
    logged = "\n".join(reasons)
    assert not [s for s in sent if len(s) > 20 and s in logged]  # and never the credential


def test_a_token_in_the_url_is_refused_even_a_valid_one(
    auth_url: str, credentials: Credentials
) -> None:
    token = credentials.token(tables=["*"])
    reference = httpx.post(f"{auth_url}/query", json=BODY)
    for name in ("access_token", "token", "api_key"):
        in_url = httpx.post(f"{auth_url}/query", params={name: token}, json=BODY)
        both = httpx.post(
            f"{auth_url}/query", params={name: token}, json=BODY, headers=credentials.bearer(token)
        )
        for response in (in_url, both):
            assert response.status_code == 401
            assert _without_request_id(response) == _without_request_id(reference)


@pytest.mark.parametrize("kid", ["rs", "es", "ed", "hs", "rs-next"])
def test_each_allowed_algorithm_and_rotated_key_is_accepted(
    auth_url: str, credentials: Credentials, kid: str
) -> None:
    token = credentials.token(kid, tables=["world_country_list"])
    response = httpx.post(f"{auth_url}/query", json=BODY, headers=credentials.bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["rows"] == 1


def test_an_api_key_is_accepted(auth_url: str, credentials: Credentials) -> None:
    response = httpx.post(f"{auth_url}/query", json=BODY, headers=credentials.key("reader"))
    assert response.status_code == 200, response.text


def test_public_endpoints_need_no_credentials_but_reject_bad_ones(
    auth_url: str, credentials: Credentials
) -> None:
    pages = ("/", "/docs", "/static/livedata.js", "/static/swagger-ui.css")
    for path in ("/health", "/ready", "/openapi.json", *pages):
        assert httpx.get(f"{auth_url}{path}").status_code == 200, path
        bad = httpx.get(f"{auth_url}{path}", headers=ATTACKS["alg none"](credentials))
        assert bad.status_code == 401, path
    for path in ("/queries", "/cache", "/metrics", "/no-such-endpoint"):
        assert httpx.get(f"{auth_url}{path}").status_code == 401, path


def test_no_cached_body_reaches_a_request_without_credentials(
    auth_url: str, credentials: Credentials
) -> None:
    """The hit fast path answers repeated raw requests before FastAPI; it must never answer
    one that has not passed authentication."""
    body = {"table": "world_country_list", "limit": 2, "offset": 7}
    assert httpx.post(f"{auth_url}/query", json=body).status_code == 401
    for expected in ("livedata; fwd=miss; stored", "livedata; hit", "livedata; hit"):
        ok = httpx.post(f"{auth_url}/query", json=body, headers=credentials.key("reader"))
        assert ok.headers["cache-status"] == expected
    for _ in range(3):
        assert httpx.post(f"{auth_url}/query", json=body).status_code == 401
