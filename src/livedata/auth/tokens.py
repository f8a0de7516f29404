"""Embed tokens: JWTs a builder's backend signs and hands to a browser.

Each verification key is found by the token's ``kid`` and accepts exactly one algorithm,
named next to it in the access file, never taken from the token: so ``alg: none``, an HS256
token "signed" with an RSA public key (algorithm confusion) or a token signed by a retired
key all fail the same way. ``exp``, ``aud`` and ``sub`` are required; ``iss`` too when the
access file names one. Rotation: add the new kid, sign with it, remove the old one once its
last tokens have expired.

Claims beyond the registered ones are the grant: ``queries``, ``tables``, ``restrictions``,
``admin``, as in an ``[api_keys.<id>]`` section. Each key's ``ceiling`` (in its
``[tokens.keys.<kid>]`` section, or a ``"ceiling"`` member of its JWKS entry) bounds that
grant, since whoever holds the signing key writes the claims.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from jwt.algorithms import get_default_algorithms
from pydantic import ValidationError

from livedata.auth.access import (
    ALGORITHMS,
    NO_CEILING,
    Ceiling,
    Grant,
    TokenKey,
    Tokens,
    check_grant,
)
from livedata.auth.caller import Caller
from livedata.catalog import Catalog, explain
from livedata.errors import AccessFileError, CatalogError, Unauthenticated

log = logging.getLogger("livedata.auth")

_REQUIRED = ["exp", "aud", "sub"]
_DATES = ("exp", "nbf", "iat")  # RFC 7519 NumericDates
_LAST_DATE = 253402300799  # 9999-12-31T23:59:59Z


@dataclass(frozen=True)
class VerificationKey:
    algorithm: str
    key: Any = field(repr=False)  # a parsed public key, or the HS256 secret as bytes
    where: str  # where the access file or JWKS file declares it, for messages
    ceiling: Ceiling | None = None


class TokenVerifier:
    def __init__(self, config: Tokens, keys: Mapping[str, VerificationKey]) -> None:
        self.config = config
        self.keys = dict(keys)

    @classmethod
    def from_config(cls, config: Tokens, catalog: Catalog) -> TokenVerifier:
        """Parse every key once, at start-up: a bad PEM, a missing secret or a ceiling naming
        an unknown query stops it there."""
        keys = {kid: _parse(kid, key) for kid, key in config.keys.items()}
        if config.jwks is not None:
            for kid, key in _jwks(config.jwks).items():
                if kid in keys:
                    raise AccessFileError(f"{config.jwks}: kid {kid!r} is also in [tokens.keys].")
                keys[kid] = key
        for key in keys.values():
            if key.ceiling is not None:
                check_grant(key.ceiling, catalog, f"{key.where} ceiling")
            else:
                log.warning(
                    "%s has no ceiling: its tokens may grant every query and table (never "
                    "admin). Give it one to bound what a leak of its signing key is worth.",
                    key.where,
                )
        return cls(config, keys)

    def verify(self, token: str, now: float) -> tuple[Caller, float]:
        """The caller the token names, and the time from which it is expired."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"malformed token ({type(exc).__name__})") from exc
        kid = header.get("kid")
        key = self.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise Unauthenticated(f"token names an unknown key id {kid!r}")
        if header.get("alg") != key.algorithm:
            raise Unauthenticated(f"token alg {header.get('alg')!r} is not {key.algorithm} ({kid})")
        config = self.config
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                audience=config.audience,
                issuer=config.issuer,
                options={
                    "require": [*_REQUIRED, *(["iss"] if config.issuer else [])],
                    # Dates are checked below, range first: PyJWT would accept "exp": "123"
                    # and leave 10**400 to whatever arithmetic comes next.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except Exception as exc:  # whatever breaks the verifier, the token is not valid
            raise Unauthenticated(f"token rejected: {type(exc).__name__}: {exc}") from exc
        if not isinstance(claims["sub"], str) or not claims["sub"].strip():
            raise Unauthenticated("token sub is empty: every holder would share one identity")
        problem = date_problem(claims, now, config)
        if problem is not None:
            raise Unauthenticated(problem)
        try:
            grant = Grant.model_validate({k: claims[k] for k in Grant.model_fields if k in claims})
        except ValidationError as exc:
            raise Unauthenticated(f"token grant claims are malformed: {exc.error_count()}") from exc
        excess = (key.ceiling or NO_CEILING).excess(grant)
        if excess is not None:
            raise Unauthenticated(f"token asks more than key {kid!r} may grant: {excess}")
        return grant.caller(f"token:{claims['sub']}"), claims["exp"] + config.leeway


def date_problem(claims: Mapping[str, Any], now: float, config: Tokens) -> str | None:
    """Why the token's dates make it invalid at ``now``, or None. Each NumericDate is checked
    to be a JSON number from 1970 to 9999 before any arithmetic: JSON allows 1 followed by 400
    zeros, which no float holds."""
    for name in _DATES:
        value = claims.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"token {name} is not a number"
        if not 0 <= value <= _LAST_DATE:  # False for NaN too
            return f"token {name} is not a date from 1970 to 9999"
    leeway = config.leeway
    if claims["exp"] <= now - leeway:
        return "token expired"
    if claims["exp"] > now + config.max_ttl + leeway:
        return f"token lives longer than max_ttl ({config.max_ttl:.0f} s)"
    for name in ("nbf", "iat"):
        if claims.get(name, 0) > now + leeway:
            return f"token is not valid yet ({name} is in the future)"
    return None


def issue(
    config: Tokens,
    kid: str,
    signing_key: str | bytes,
    subject: str,
    grant: Grant,
    ttl: float,
) -> str:
    """A token for a builder's backend to hand to a browser, signed with ``kid``'s key."""
    key = _signing_key(config, kid)
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "aud": config.audience,
        "iat": now,
        "exp": now + int(ttl),
        **grant.model_dump(exclude_defaults=True),
    }
    if config.issuer:
        claims["iss"] = config.issuer
    return jwt.encode(claims, signing_key, algorithm=key.algorithm, headers={"kid": kid})


def signing_secret(config: Tokens, kid: str) -> str | None:
    """The shared secret of an HS256 key (signing and verifying are the same key)."""
    secret = _signing_key(config, kid).secret
    return None if secret is None else secret.resolve()


def _signing_key(config: Tokens, kid: str) -> TokenKey:
    key = config.keys.get(kid)
    if key is None:
        raise AccessFileError(f"no [tokens.keys.{kid}]; known: {', '.join(config.keys) or 'none'}")
    return key


def _parse(kid: str, key: TokenKey) -> VerificationKey:
    where = f"tokens.keys.{kid}"
    if key.secret is not None:
        try:
            secret = key.secret.resolve().encode()
        except CatalogError as exc:
            raise AccessFileError(f"{where}.secret: {exc.message}") from exc
        if len(secret) < 32:  # RFC 7518 3.2: at least the hash's size
            raise AccessFileError(f"{where}.secret: use 32 bytes or more (openssl rand -hex 32)")
        return VerificationKey("HS256", secret, where, key.ceiling)
    assert key.public_key is not None
    try:
        pem = key.public_key.read_bytes()
        parsed = get_default_algorithms()[key.algorithm].prepare_key(pem)
    except OSError as exc:
        raise AccessFileError(f"{where}.public_key: cannot read {key.public_key}") from exc
    except (jwt.PyJWTError, ValueError) as exc:
        raise AccessFileError(
            f"{where}.public_key: {key.public_key} is not a {key.algorithm} public key (PEM)"
        ) from exc
    if hasattr(parsed, "private_bytes"):
        raise AccessFileError(f"{where}.public_key: this is a private key; give the public one")
    return VerificationKey(key.algorithm, parsed, where, key.ceiling)


def _checked(key: VerificationKey) -> VerificationKey:
    """The rules ``[tokens.keys]`` entries follow, for keys from a JWKS file too."""
    if isinstance(key.key, bytes) and len(key.key) < 32:  # RFC 7518 3.2
        raise AccessFileError(f"{key.where}: an HS256 secret needs 32 bytes or more")
    if hasattr(key.key, "private_bytes"):
        raise AccessFileError(f"{key.where}: this is a private key; publish the public one")
    return key


def _ceiling(path: Path, kid: str, jwk: Mapping[str, Any]) -> Ceiling | None:
    """A JWKS entry's ``"ceiling"`` member: RFC 7517 lets a JWK carry members of its own."""
    if "ceiling" not in jwk:
        return None
    try:
        return Ceiling.model_validate(jwk["ceiling"])
    except ValidationError as exc:
        raise AccessFileError(
            f"the ceiling of kid {kid!r} in {explain(path, exc, Ceiling)}"
        ) from exc


def _jwks(path: Path) -> dict[str, VerificationKey]:
    try:
        document = json.loads(path.read_text())
        keys = {}
        for data in document["keys"]:
            kid, alg = data.get("kid"), data.get("alg")
            if not isinstance(kid, str) or alg not in ALGORITHMS:
                raise AccessFileError(
                    f"{path}: every key needs a kid and an alg among {', '.join(ALGORITHMS)}"
                )
            where = f"{path}: kid {kid!r}"
            parsed = jwt.PyJWK(data, alg).key
            ceiling = _ceiling(path, kid, data)
            keys[kid] = _checked(VerificationKey(alg, parsed, where, ceiling))
    except (OSError, ValueError, KeyError, TypeError, jwt.PyJWTError) as exc:
        raise AccessFileError(f"{path}: not a readable JWKS file ({type(exc).__name__})") from exc
    return keys
