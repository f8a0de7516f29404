"""The access file: who may call the service (API keys, embed-token keys) and what each may run.

It is a TOML file of its own, named by ``LIVEDATA_AUTH_FILE``, not part of the catalog: the
catalog says what data exists and is versioned with the app, while credentials belong to
the deployment, rotate on their own schedule and deserve tighter file permissions. It holds
no secret either: API keys are stored as digests, token keys are public keys, and a shared
HS256 secret is a ``{ env = ... }`` or ``{ file = ... }`` reference.

    [api_keys.dashboard]
    hash = "sha256:..."                  # printed by `livedata keys new dashboard`
    queries = ["countries_by_region"]    # ["*"]: every one; omitted: none
    tables = ["world_country_list"]
    restrictions = { region = "Europe" } # forced parameter values / row filters
    admin = false                        # /cache*, /metrics

    [tokens]
    audience = "livedata"
    [tokens.keys.embed-2026-11]          # the kid
    algorithm = "EdDSA"
    public_key = "keys/embed-2026-11.pub"
    [tokens.keys.embed-2026-11.ceiling]  # the most its tokens may grant
    queries = ["countries_by_region"]
    required_restrictions = ["region"]  # every token must force one

A token key's ceiling bounds what a leak of its signing key is worth: its tokens may grant no
more (``admin`` only when the ceiling says so), and a token asking for more is refused whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from livedata.auth.caller import Caller
from livedata.auth.keys import ID_PATTERN, is_digest
from livedata.catalog import Catalog, explain, read_toml
from livedata.connectors.config import SecretRef
from livedata.errors import AccessFileError, unknown_name

ALGORITHMS = ("HS256", "RS256", "ES256", "EdDSA")  # the allow-list; "none" is never accepted
Restriction = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Allowance(_Strict):
    """Allow-lists of named queries and tables, in a grant and in a ceiling alike."""

    queries: list[str] = Field(default_factory=list, description='Named queries; ["*"]: all.')
    tables: list[str] = Field(default_factory=list, description='Tables; ["*"]: all.')


class Grant(Allowance):
    """What a key or token lets its holder do; the same fields in the file and in token claims."""

    restrictions: dict[str, Restriction] = Field(
        default_factory=dict,
        description="Forced values: a named query's parameter, or an equality filter on a "
        "table's column. A query or table they cannot apply to is refused.",
    )
    admin: bool = Field(default=False, description="May manage the cache and read /metrics.")

    def caller(self, caller_id: str) -> Caller:
        return Caller(
            caller_id,
            queries=None if "*" in self.queries else frozenset(self.queries),
            tables=None if "*" in self.tables else frozenset(self.tables),
            restrictions=dict(self.restrictions),
            admin=self.admin,
        )


class Ceiling(Allowance):
    """The most a token signed with one key may grant, so a leaked key is worth no more.
    Omitted lists are empty, as in a grant."""

    required_restrictions: list[str] = Field(
        default_factory=list,
        description="Restrictions every token must carry, with any value (e.g. a tenant).",
    )
    admin: bool = Field(default=False, description="Its tokens may grant admin.")

    def excess(self, grant: Grant) -> str | None:
        """What ``grant`` asks beyond this ceiling, or None when it fits. Nothing is trimmed:
        a token asking for more is a mistake or a forgery, and either is refused."""
        for kind, asked, allowed in (
            ("queries", grant.queries, self.queries),
            ("tables", grant.tables, self.tables),
        ):
            beyond = [] if "*" in allowed else sorted(set(asked) - set(allowed))
            if beyond:
                return f"{kind} {beyond} are beyond its ceiling"
        missing = sorted(set(self.required_restrictions) - set(grant.restrictions))
        if missing:
            return f"its ceiling requires restrictions on {missing}"
        if grant.admin and not self.admin:
            return "admin is beyond its ceiling"
        return None


# What a key without a ``ceiling`` may grant: any query or table, never admin.
NO_CEILING = Ceiling(queries=["*"], tables=["*"])


class ApiKey(Grant):
    hash: str = Field(description='"sha256:<hex>" of the key, from `livedata keys new`.')

    @field_validator("hash")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not is_digest(value):
            raise ValueError('write the "sha256:..." line that `livedata keys new` printed')
        return value


class TokenKey(_Strict):
    """One key that signs embed tokens, found by the token's ``kid``."""

    algorithm: Literal["HS256", "RS256", "ES256", "EdDSA"]
    public_key: Path | None = Field(default=None, description="PEM file (RS256, ES256, EdDSA).")
    secret: SecretRef | None = Field(default=None, description="HS256 shared secret: env or file.")
    ceiling: Ceiling | None = Field(
        default=None, description="The most its tokens may grant; none: anything but admin."
    )

    @model_validator(mode="after")
    def _material(self) -> TokenKey:
        symmetric = self.algorithm == "HS256"
        if symmetric and (self.secret is None or self.public_key is not None):
            raise ValueError('HS256 takes `secret = { env = "VAR" }` (or file), no public_key')
        if not symmetric and (self.public_key is None or self.secret is not None):
            raise ValueError(f'{self.algorithm} takes `public_key = "file.pem"`, no secret')
        return self


class Tokens(_Strict):
    audience: str = Field(description="Required `aud` of every token.")
    issuer: str | None = Field(default=None, description="Required `iss`, when set.")
    leeway: float = Field(default=0, ge=0, le=300, description="Seconds of clock skew allowed.")
    max_ttl: float = Field(
        default=86400, gt=0, description="Tokens expiring further ahead than this are refused."
    )
    keys: dict[str, TokenKey] = Field(default_factory=dict, description="Verification keys by kid.")
    jwks: Path | None = Field(default=None, description="A JWKS file; each key needs kid and alg.")

    @model_validator(mode="after")
    def _some_key(self) -> Tokens:
        if not self.keys and self.jwks is None:
            raise ValueError('add [tokens.keys.<kid>] or `jwks = "file"` to verify tokens')
        return self


class AccessFile(_Strict):
    api_keys: dict[str, ApiKey] = Field(default_factory=dict)
    tokens: Tokens | None = None


def load_access(path: Path, catalog: Catalog) -> AccessFile:
    """Read and check the access file; AccessFileError names the field and the fix."""
    raw = read_toml(path, AccessFileError, "no such access file; fix LIVEDATA_AUTH_FILE")
    try:
        access = AccessFile.model_validate(raw)
    except ValidationError as exc:
        raise AccessFileError(explain(path, exc, AccessFile)) from exc
    if not access.api_keys and access.tokens is None:
        raise AccessFileError(
            f"{path}: grants nothing; add [api_keys.<id>] or [tokens], or unset LIVEDATA_AUTH_FILE."
        )
    for key_id, key in access.api_keys.items():
        if not ID_PATTERN.fullmatch(key_id):
            raise AccessFileError(f"{path}: api_keys.{key_id}: ids are letters, digits or '-'.")
        check_grant(key, catalog, f"{path}: api_keys.{key_id}")
    return _relative_to(access, path.parent)


def check_grant(grant: Allowance, catalog: Catalog, where: str) -> None:
    """A typo in an allow-list would silently deny; say so at start-up instead."""
    for kind, names, known in (
        ("query", grant.queries, catalog.queries),
        ("table", grant.tables, catalog.tables),
    ):
        for name in names:
            if name != "*" and name not in known:
                problem = unknown_name(AccessFileError, kind, name, known)
                raise AccessFileError(f"{where}: {problem.message}")


def _relative_to(access: AccessFile, base: Path) -> AccessFile:
    tokens = access.tokens
    if tokens is None:
        return access
    keys = {kid: _key_relative_to(key, base) for kid, key in tokens.keys.items()}
    jwks = None if tokens.jwks is None else base / tokens.jwks
    return access.model_copy(
        update={"tokens": tokens.model_copy(update={"keys": keys, "jwks": jwks})}
    )


def _key_relative_to(key: TokenKey, base: Path) -> TokenKey:
    if key.public_key is not None:
        return key.model_copy(update={"public_key": base / key.public_key})
    if key.secret is not None and key.secret.file is not None:
        secret = key.secret.model_copy(update={"file": base / key.secret.file})
        return key.model_copy(update={"secret": secret})
    return key
