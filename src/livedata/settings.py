"""Service settings: declared once here with a default and a help text, read once at start-up.

Every field can be set with an environment variable ``LIVEDATA_<FIELD>`` (for example
``LIVEDATA_PORT=8080``). What the service serves (sources, tables, queries) lives in the
catalog file instead; see ``livedata.catalog``.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

BUNDLED_CATALOG = Path(__file__).parent / "sample" / "catalog.toml"
ENV_PREFIX = "LIVEDATA_"
_ORIGIN = re.compile(r"https?://[^/\s?#]+")
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class LogLevel(StrEnum):
    """How much the server logs (uvicorn's levels that livedata documents)."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def _default_cache_dir() -> Path:
    """Per user, as the XDG base directory spec says: $XDG_CACHE_HOME or ~/.cache."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "livedata"


class Settings(BaseSettings):
    """Process-wide settings; the README's settings table is checked against these fields."""

    # Unknown LIVEDATA_* names are refused at start-up by ``livedata.environ``, which also
    # knows the catalog's override names; the model itself reads only its own fields.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    catalog: Path = Field(
        default=BUNDLED_CATALOG,
        description="Catalog file (TOML) with the sources, tables and queries to serve. "
        "Defaults to the bundled sample catalog (embedded DuckDB, no external service).",
    )
    host: str = Field(
        default="127.0.0.1",
        description="Address to listen on. Loopback by default: nothing is exposed by accident.",
    )
    port: int = Field(default=5000, ge=0, le=65535, description="TCP port to listen on.")
    auth_file: Path | None = Field(
        default=None,
        description="Access file (TOML): API keys and embed-token keys, and what each may run. "
        "Unset: no authentication, and only a loopback address may be served.",
    )

    @field_validator("auth_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # `LIVEDATA_AUTH_FILE= livedata serve`

    allow_public_without_auth: bool = Field(
        default=False,
        description="Serve a non-loopback address without an access file (only behind a proxy "
        "that authenticates).",
    )
    max_body_bytes: int = Field(
        default=64 * 1024, gt=0, description="Largest request body accepted (413 beyond)."
    )
    log_level: LogLevel = Field(
        default=LogLevel.INFO, description="Log level: debug, info, warning, error."
    )
    access_log: bool = Field(
        default=False,
        description="uvicorn's line per request; off by default, it costs hits much throughput.",
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="Directory of the result cache, shared by every worker process.",
    )
    cache_max_bytes: int = Field(
        default=1 << 30, ge=0, description="Size bound of the cache; least recently used go first."
    )
    cache_memory_bytes: int = Field(
        default=64 << 20,
        ge=0,
        description="Memory for the hit fast path: recently served cached bodies, per process.",
    )
    cache_format: str = Field(
        default="arrow", description="On-disk format of cached results (see docs/cache-formats.md)."
    )
    cache_ttl: float = Field(
        default=60.0,
        ge=0,
        description="Seconds a result stays fresh unless the query, table "
        "or source says otherwise; 0 disables caching.",
    )
    cache_stale_while_revalidate: float = Field(
        default=0.0,
        ge=0,
        description="Seconds after expiry during which a stale result is "
        "answered at once while one background refresh runs.",
    )
    cache_stale_if_error: float = Field(
        default=3600.0,
        ge=0,
        description="Seconds after expiry during which a stale result is "
        "answered when the source fails.",
    )
    cache_error_ttl: float = Field(
        default=5.0,
        ge=0,
        description="Seconds a failure is remembered: identical requests get "
        "it without asking the source again, and a failing source is left alone.",
    )
    cache_revalidate_interval: float = Field(
        default=10.0,
        ge=0,
        description="Least seconds between two client-forced revalidations "
        "(Cache-Control: no-cache) of one entry, so one browser cannot turn the cache off.",
    )
    cache_maintenance_interval: float = Field(
        default=30.0,
        gt=0,
        description="Seconds between two background rounds of cache upkeep in each server "
        "process: hit counts written to the shared index, expired entries removed, the size "
        "bound enforced.",
    )
    max_request_depth: int = Field(
        default=6,
        ge=2,
        description="Deepest nesting of arrays and objects in a request body (422 beyond).",
    )
    max_request_items: int = Field(
        default=1000,
        ge=1,
        description="Most items in any one array or object of a request body: columns, "
        "filters, order_by, an `in` list, a list parameter (422 beyond).",
    )
    rate_limit: float = Field(
        default=0.0,
        ge=0,
        description="Requests per second each caller may make to POST /query on average "
        "(token bucket); 0 turns rate limiting off.",
    )
    rate_limit_burst: float = Field(
        default=20.0,
        ge=1,
        description="Requests a caller may make at once before the rate applies.",
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis shared by every process and host (redis://host:6379/0): rate "
        "limits, budgets, and, for a cluster, one source query per key (leases), invalidation "
        "everywhere at once (generations) and the revalidation throttle; unset: each process "
        "counts and coordinates for itself.",
    )
    cache_shared_url: str | None = Field(
        default=None,
        description="Shared cache tier on S3-compatible object storage (s3://bucket/prefix), "
        "under each node's own disk cache; endpoint and credentials from the standard "
        "AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION (or the "
        "AWS_SHARED_CREDENTIALS_FILE). Unset: each node caches for itself.",
    )
    cache_shared_format: str = Field(
        default="arrow-zstd",
        description="Format of the shared tier's objects, turned into LIVEDATA_CACHE_FORMAT on "
        "the way to a node's disk: compressed, since they cross a network (see "
        "docs/cache-formats.md).",
    )
    cache_shared_timeout: float = Field(
        default=2.0,
        gt=0,
        description="Seconds a request waits for object storage or Redis to answer before "
        "going on without them (a slow or down shared part is then skipped for a while).",
    )
    cluster_lease_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Lifetime of a node's claim to fetch a key for the cluster, renewed while "
        "the fetch runs: if the node dies, another takes over after at most this long.",
    )
    cursor_ttl: float = Field(
        default=600.0,
        gt=0,
        description="Seconds a paging cursor stays valid after the page that gave it; its "
        "snapshot (the cache entry of the first page) is kept that long past each page.",
    )
    cursor_secret: SecretStr | None = Field(
        default=None,
        description="Key that signs paging cursors; give every node and worker the same one. "
        "Unset: derived from the access file, else a random key kept in the cache directory "
        "(shared by the workers of one host, not by other hosts).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated origins whose pages may read responses "
        "(https://app.example.com); empty: no cross-origin reads.",
    )
    cors_allow_credentials: bool = Field(
        default=False,
        description="Let those origins send cookies and Authorization with credentials mode.",
    )
    cors_max_age: int = Field(
        default=600, ge=0, description="Seconds a browser may cache a preflight answer."
    )
    audit_log: str = Field(
        default="stderr",
        description='Where the audit log (one JSON line per request) goes: "stderr", a file '
        'path (appended), or "off".',
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"{origin!r} is not an origin; write scheme://host[:port] with no path "
                    "(https://app.example.com), or *"
                )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(_REDIS_SCHEMES):
            raise ValueError(f"must start with one of {', '.join(_REDIS_SCHEMES)}")
        return value

    @field_validator("host", "audit_log")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _no_credentials_for_everyone(self) -> Settings:
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError(
                "LIVEDATA_CORS_ALLOW_CREDENTIALS with origin * would let every site read "
                "responses with its visitors' credentials; list the origins instead"
            )
        return self


def variable(field: str) -> str:
    """The environment variable of a setting: ``cache_ttl`` -> ``LIVEDATA_CACHE_TTL``."""
    return f"{ENV_PREFIX}{field.upper()}"
