"""Fixtures for the security suites: key material made here, an access file, and servers that
require credentials.

Every signing key is generated for the session; the server gets the public halves (PEM files
and a JWKS file) and, for HS256, a secret file, exactly as a deployment would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from livedata.auth.keys import new_key
from tests.cache.conftest import Postgres, postgres  # noqa: F401  # fixture

AUDIENCE = "livedata-test"
Headers = dict[str, str]


@dataclass(frozen=True)
class Credentials:
    """What a builder's backend holds: private keys, the HS256 secret and API keys."""

    access_file: Path
    signing: Mapping[str, tuple[str, Any]]  # kid -> (algorithm, private key or secret)
    public_pem: Mapping[str, bytes]  # kid -> PEM of the public key (asymmetric kids)
    api_keys: Mapping[str, str]  # id -> key

    def token(
        self, kid: str = "rs", headers: Mapping[str, Any] | None = None, **claims: Any
    ) -> str:
        """Signed as a builder's backend would; a claim given as None is left out."""
        algorithm, key = self.signing[kid]
        now = int(time.time())
        payload = {"sub": "tester", "aud": AUDIENCE, "iat": now, "exp": now + 600, **claims}
        payload = {k: v for k, v in payload.items() if v is not None}
        header = {"kid": kid, **(headers or {})}
        return jwt.encode(payload, key, algorithm=algorithm, headers=header)

    def private_pem(self, kid: str) -> bytes:
        """What the builder's backend keeps; the server never sees it."""
        return bytes(
            self.signing[kid][1].private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def bearer(self, credential: str) -> Headers:
        return {"Authorization": f"Bearer {credential}"}

    def key(self, key_id: str) -> Headers:
        return self.bearer(self.api_keys[key_id])


def _pem(private: Any) -> bytes:
    return bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


TOKEN_KEYS = {
    "rs": {"algorithm": "RS256", "public_key": "rs.pub"},
    "es": {"algorithm": "ES256", "public_key": "es.pub"},
    "ed": {"algorithm": "EdDSA", "public_key": "ed.pub"},
    "hs": {"algorithm": "HS256", "secret": {"file": "hs.secret"}},
}
JWKS_KID = "rs-next"  # the next key of a rotation, published in a JWKS file


def _section(header: str, fields: Mapping[str, Any]) -> list[str]:
    lines = [f"[{header}]"]
    for name, value in fields.items():
        if isinstance(value, Mapping):  # an inline table
            value = "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + " }"
        else:
            value = json.dumps(value)
        lines.append(f"{name} = {value}")
    return lines


def write_access(
    directory: Path,
    api_keys: Mapping[str, Mapping[str, Any]],
    ceilings: Mapping[str, Mapping[str, Any]] | None = None,
    name: str = "access",
    **tokens: Any,
) -> tuple[Path, dict[str, str]]:
    """``name``.toml with these API key sections, every token key (each with its ceiling, if
    any; the JWKS key's goes into its JWKS entry) and ``tokens`` settings; returns the keys."""
    ceilings = ceilings or {}
    lines, keys = [], {}
    for key_id, grant in api_keys.items():
        key, stored = new_key(key_id)
        keys[key_id] = key
        lines += _section(f"api_keys.{key_id}", {"hash": stored, **grant})
    lines += _section("tokens", {"audience": AUDIENCE, "jwks": f"{name}.jwks.json", **tokens})
    for kid, key_fields in TOKEN_KEYS.items():
        lines += _section(f"tokens.keys.{kid}", key_fields)
        if kid in ceilings:
            lines += _section(f"tokens.keys.{kid}.ceiling", ceilings[kid])
    jwk = json.loads((directory / f"{JWKS_KID}.jwk").read_text())
    if JWKS_KID in ceilings:
        jwk["ceiling"] = ceilings[JWKS_KID]
    (directory / f"{name}.jwks.json").write_text(json.dumps({"keys": [jwk]}))
    path = directory / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path, keys


EVERYTHING = {"queries": ["*"], "tables": ["*"]}
DASHBOARD = {  # a dashboard backend's key: two names, and always one tenant
    "queries": ["countries_by_region"],
    "tables": ["world_country_list"],
    "required_restrictions": ["region"],
}
# Ceilings for an access file of their own (`write_access(..., CEILINGS)`); hs and rs: none.
CEILINGS = {"ed": DASHBOARD, JWKS_KID: DASHBOARD, "es": {**EVERYTHING, "admin": True}}


@pytest.fixture(scope="session")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> Credentials:
    directory = tmp_path_factory.mktemp("access")
    private = {
        "rs": ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "es": ("ES256", ec.generate_private_key(ec.SECP256R1())),
        "ed": ("EdDSA", ed25519.Ed25519PrivateKey.generate()),
        JWKS_KID: ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    }
    public_pem = {kid: _pem(key) for kid, (_, key) in private.items()}
    for kid in ("rs", "es", "ed"):
        (directory / f"{kid}.pub").write_bytes(public_pem[kid])
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private[JWKS_KID][1].public_key()))
    jwk = {**jwk, "kid": JWKS_KID, "alg": "RS256", "use": "sig"}
    (directory / f"{JWKS_KID}.jwk").write_text(json.dumps(jwk))
    secret = "a-shared-secret-of-thirty-two-bytes-or-more"  # noqa: S105  # made for this test
    (directory / "hs.secret").write_text(secret + "\n")
    access, keys = write_access(
        directory,
        {"reader": EVERYTHING, "ops": {**EVERYTHING, "admin": True}},
        ceilings={"rs": {**EVERYTHING, "admin": True}},  # the others have none
    )
    signing: dict[str, tuple[str, Any]] = {**private, "hs": ("HS256", secret)}
    return Credentials(access, signing, public_pem, keys)


@pytest.fixture(scope="session")
def auth_url(serve: Callable[..., str], credentials: Credentials) -> str:
    """The bundled catalog behind the access file."""
    return serve(auth_file=credentials.access_file)
