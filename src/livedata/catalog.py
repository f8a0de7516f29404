"""The catalog: which sources exist, which tables are exposed, which named queries run.

App builders write it as one TOML file. Any field can be overridden by an environment
variable ``LIVEDATA_<SECTION>__<NAME>__<FIELD>``, e.g. ``LIVEDATA_SOURCES__SHOP__HOST=db1``,
so one file serves every deployment. Secrets are never written in the file: a password is
``{ env = "VAR" }`` or ``{ file = "/run/secrets/x" }``, resolved only when connecting.

A broken catalog raises ``CatalogError`` whose message names the file, the field and the fix.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from livedata import sql
from livedata.errors import CatalogError
from livedata.params import ParamSpec

ENV_PREFIX = "LIVEDATA_"
SECTIONS = ("sources", "tables", "queries")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Strict):
    """Where a secret lives; the catalog never holds the secret itself."""

    env: str | None = Field(default=None, description="Environment variable holding it.")
    file: Path | None = Field(default=None, description="File holding it (e.g. a mounted secret).")

    @model_validator(mode="after")
    def _one_place(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError('give exactly one of { env = "VAR" } or { file = "/path" }')
        return self

    def resolve(self) -> str:
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise CatalogError(f"Environment variable {self.env} (a secret) is not set.")
            return value
        assert self.file is not None
        try:
            return self.file.read_text().strip()
        except OSError as exc:
            raise CatalogError(f"Cannot read secret file {self.file}: {exc.strerror}.") from exc

    def __repr__(self) -> str:
        return f"SecretRef(env={self.env!r})" if self.env else f"SecretRef(file={self.file!s})"


class Freshness(_Strict):
    """Cache lifetimes; unset ones come from the table or query's source, then the settings."""

    ttl: float | None = Field(default=None, ge=0, description="Seconds fresh; 0: never cached.")
    stale_while_revalidate: float | None = Field(
        default=None, ge=0, description="Seconds a stale result answers while it is refreshed."
    )
    stale_if_error: float | None = Field(
        default=None, ge=0, description="Seconds a stale result answers when the source fails."
    )


class BudgetLimits(_Strict):
    """What one window allows; unset means no limit."""

    queries: int | None = Field(default=None, ge=0, description="Queries sent to the source.")
    source_seconds: float | None = Field(
        default=None, ge=0, description="Seconds the source worked on them."
    )


class Budget(BudgetLimits):
    """Spending on a source per window, for everyone together and for each caller. Only
    requests that reach the source spend: cache hits and coalesced waiters cost nothing."""

    window: float = Field(
        default=3600.0, gt=0, description="Seconds per window; counts restart with each window."
    )
    per_caller: BudgetLimits = Field(
        default_factory=BudgetLimits, description="The same limits for each caller on its own."
    )


class SourceBase(Freshness):
    """Limits every source has, whatever its kind."""

    max_concurrent_queries: int = Field(
        default=4, ge=1, description="Queries run at once against this source; others wait."
    )
    max_queued_queries: int = Field(
        default=64,
        ge=0,
        description="Queries that may wait for a slot; beyond, 503 source_busy at once.",
    )
    statement_timeout: float = Field(
        default=30.0, gt=0, description="Seconds before the database itself cancels a statement."
    )
    connect_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for a connection before answering 503."
    )
    max_rows: int = Field(
        default=1_000_000, ge=1, description="Most rows one result may have; beyond, it is cut."
    )
    max_bytes: int | None = Field(
        default=None,
        ge=1,
        description="Most bytes (as Arrow in memory) one result may hold; beyond, it is cut "
        "at a row boundary and flagged truncated.",
    )
    max_estimated_cost: float | None = Field(
        default=None,
        gt=0,
        description="Refuse, before running it, a query the source estimates above this "
        "(PostgreSQL: EXPLAIN total cost; DuckDB: estimated rows over the plan).",
    )
    budget: Budget | None = Field(default=None, description="Queries and source time per window.")


class DuckDBSource(SourceBase):
    kind: Literal["duckdb"]
    path: str = Field(
        default=":memory:", description="Database file, opened read-only; :memory: for none."
    )
    load: dict[str, Path] = Field(
        default_factory=dict,
        description="Tables to load at start-up from Parquet/CSV files (name = path), "
        "relative to the catalog file.",
    )

    @model_validator(mode="after")
    def _load_into_memory_only(self) -> DuckDBSource:
        if self.load and self.path != ":memory:":
            raise ValueError("`load` builds its own database; leave `path` out when using it")
        return self


class ServerSource(SourceBase):
    """A database server reached over the network."""

    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    database: str
    user: str
    password: SecretRef | None = Field(default=None, description="Never inline: env or file.")


class PostgresSource(ServerSource):
    kind: Literal["postgres"]
    port: int = Field(default=5432, ge=1, le=65535)
    user: str = "postgres"


class MySQLSource(ServerSource):
    kind: Literal["mysql"]
    port: int = Field(default=3306, ge=1, le=65535)
    user: str = "root"


class SQLiteSource(SourceBase):
    kind: Literal["sqlite"]
    path: Path = Field(description="Database file, opened read-only, relative to the catalog.")


SourceConfig = Annotated[
    DuckDBSource | PostgresSource | MySQLSource | SQLiteSource, Field(discriminator="kind")
]
DIALECTS = {"duckdb": "duckdb", "postgres": "postgres", "mysql": "mysql", "sqlite": "sqlite"}


class TableConfig(Freshness):
    """A table exposed to the ``{"table": ...}`` shortcut; nothing else is reachable that way."""

    source: str
    table: str | None = Field(default=None, description="Name in the source (default: the key).")
    db_schema: str | None = Field(
        default=None, alias="schema", description="Schema in the source, if not the default."
    )
    description: str = ""
    columns: list[str] | None = Field(
        default=None, description="Columns clients may see (default: all the table has)."
    )


class QueryConfig(Freshness):
    """A named query: SQL written by the app builder, with typed ``:name`` parameters."""

    source: str
    sql: str
    description: str = ""
    params: dict[str, ParamSpec] = Field(default_factory=dict)


class Catalog(_Strict):
    sources: dict[str, SourceConfig]
    tables: dict[str, TableConfig] = Field(default_factory=dict)
    queries: dict[str, QueryConfig] = Field(default_factory=dict)

    def dialect(self, source: str) -> str:
        return DIALECTS[self.sources[source].kind]

    def check_secrets(self) -> None:
        """Resolve every secret once at start-up, so a missing one stops it (not a request)."""
        for name, source in self.sources.items():
            secret = getattr(source, "password", None)
            if secret is None:
                continue
            try:
                secret.resolve()
            except CatalogError as exc:
                raise CatalogError(f"sources.{name}.password: {exc.message}") from exc


def _cross_check(catalog: Catalog) -> None:
    """Check what one field cannot: references between sections, SQL against its params."""
    for section, entries in (("tables", catalog.tables), ("queries", catalog.queries)):
        for name, entry in entries.items():
            if entry.source not in catalog.sources:
                raise _FieldError(
                    (section, name, "source"),
                    f"unknown source {entry.source!r}; "
                    f"defined sources: {', '.join(catalog.sources)}",
                )
    for name, query in catalog.queries.items():
        dialect = DIALECTS[catalog.sources[query.source].kind]
        try:
            used = sql.parse_named_query(query.sql, dialect).parameters
        except sql.SQLError as exc:
            raise _FieldError(("queries", name, "sql"), str(exc)) from exc
        declared = set(query.params)
        if used - declared:
            missing = ", ".join(sorted(used - declared))
            raise _FieldError(
                ("queries", name, "params"),
                f"the SQL uses :{missing} but no such parameter is declared; "
                f"add [queries.{name}.params.{sorted(used - declared)[0]}]",
            )
        if declared - used:
            raise _FieldError(
                ("queries", name, "params"),
                f"parameter(s) {', '.join(sorted(declared - used))} are declared but "
                "the SQL never uses them; remove them or use them as :name",
            )


class _FieldError(ValueError):
    def __init__(self, location: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.location = location


def load_catalog(path: Path, environ: Mapping[str, str] | None = None) -> Catalog:
    """Read, override from the environment, validate; raise CatalogError naming field and fix."""
    environ = os.environ if environ is None else environ
    raw = read_toml(path, CatalogError, "no such catalog file; set LIVEDATA_CATALOG")
    _apply_overrides(raw, environ, path)
    try:
        catalog = Catalog.model_validate(raw)
        _cross_check(catalog)
    except ValidationError as exc:
        raise CatalogError(explain(path, exc, Catalog)) from exc
    except _FieldError as exc:
        raise CatalogError(f"{path}: {'.'.join(exc.location)}: {exc}.") from exc
    return _resolve_paths(catalog, path.parent)


# A field named like a secret, a password in a connection string, a private key.
_SECRET_NAME = re.compile(
    r"password|passwd|pwd|secret|token|api_?key|private_?key|credential", re.I
)
_SECRET_TEXT = re.compile(
    r"://[^/\s:@]+:[^/\s@]+@|\b(password|pwd)\s*=\s*[^\s'\"]|-----BEGIN [A-Z ]*PRIVATE KEY-----",
    re.I,
)


def plaintext_secrets(node: Any, location: str = "") -> list[str]:
    """Where a file holds a secret as a literal (never the secret itself): a field named like
    one whose value is text or a number, or text carrying a password or a private key."""
    if isinstance(node, dict):
        found = []
        for key, value in node.items():
            where = f"{location}.{key}" if location else str(key)
            if _SECRET_NAME.search(str(key)) and isinstance(value, str | int | float):
                found.append(where)
            else:
                found += plaintext_secrets(value, where)
        return found
    if isinstance(node, list):
        nested = [plaintext_secrets(item, f"{location}[{i}]") for i, item in enumerate(node)]
        return [where for inner in nested for where in inner]
    return [location] if isinstance(node, str) and _SECRET_TEXT.search(node) else []


def read_toml(path: Path, error: type[CatalogError], missing: str) -> dict[str, Any]:
    """A configuration file as data; ``error`` when it is missing, broken or holds a
    plain-text secret."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{path}: {missing}.") from exc
    except OSError as exc:
        raise error(f"{path}: cannot read it ({exc.strerror}).") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}.") from exc
    _reject_plaintext_secrets(raw, path, error)
    return raw


def _reject_plaintext_secrets(raw: dict[str, Any], path: Path, error: type[CatalogError]) -> None:
    found = plaintext_secrets(raw)
    if found:
        raise error(
            f"{path}: plain-text secret(s) at {', '.join(found)}. Files get copied, committed "
            'and logged: write { env = "VAR" } or { file = "/run/secrets/name" } instead, and '
            "for a password inside a connection string or SQL, move it into such a field."
        )


def _apply_overrides(raw: dict[str, Any], environ: Mapping[str, str], path: Path) -> None:
    for key, value in environ.items():
        parts = key.removeprefix(ENV_PREFIX).lower().split("__")
        if not key.startswith(ENV_PREFIX) or len(parts) < 3 or parts[0] not in SECTIONS:
            continue
        node = raw
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise CatalogError(f"{path}: {key} overrides {part!r}, which is not a table.")
            node = child
        node[parts[-1]] = _parse_env_value(value)


def _parse_env_value(value: str) -> Any:
    """Read an override as a TOML value (5432, true, ["a"]) and fall back to a plain string."""
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def explain(path: Path, exc: ValidationError, root: type[BaseModel]) -> str:
    """Every problem of a file validated as ``root``, each with its field and its fix."""
    lines = [f"{path}: the file is not valid ({exc.error_count()} problem(s)):"]
    for error in exc.errors():
        location = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-"))
        lines.append(f"  {location}: {_fix(error, root)}")
    return "\n".join(lines)


def _fix(error: Any, root: type[BaseModel]) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "extra_forbidden":
        allowed = _allowed_fields(root, loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown field; {hint}allowed here: {', '.join(allowed)}"
    if kind == "missing":
        return "required field is missing; add it"
    if kind == "union_tag_invalid":
        return f"unknown source kind; use one of {', '.join(DIALECTS)}"
    if kind == "union_tag_not_found":
        return f'every source needs `kind = "..."`, one of {", ".join(DIALECTS)}'
    return str(error["msg"]).removeprefix("Value error, ")


def _allowed_fields(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    model: Any = root
    for part in loc[:-1]:
        fields = getattr(model, "model_fields", None)
        if fields and part in fields:
            annotation = fields[part].annotation
            model = getattr(annotation, "__args__", (annotation,))[-1]
        elif part in {"duckdb", "postgres", "mysql", "sqlite"}:
            model = {
                "duckdb": DuckDBSource,
                "postgres": PostgresSource,
                "mysql": MySQLSource,
                "sqlite": SQLiteSource,
            }[part]
    fields = getattr(model, "model_fields", {})
    return sorted(f.alias or n for n, f in fields.items())


def _resolve_paths(catalog: Catalog, base: Path) -> Catalog:
    sources: dict[str, Any] = {}
    for name, source in catalog.sources.items():
        if isinstance(source, DuckDBSource):
            path = source.path if source.path == ":memory:" else str(base / source.path)
            load = {table: base / file for table, file in source.load.items()}
            source = source.model_copy(update={"path": path, "load": load})
        elif isinstance(source, SQLiteSource):
            source = source.model_copy(update={"path": base / source.path})
        sources[name] = source
    return catalog.model_copy(update={"sources": sources})
