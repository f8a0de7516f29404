"""The catalog: which sources exist, which tables are exposed, which named queries run.

Each source is validated by the config model of its kind, which its connector names
(``livedata.connectors.registry``): nothing here lists the kinds. App builders write the
catalog as one TOML file. Any field can be overridden by an environment
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
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, PlainValidator, SerializeAsAny, ValidationError
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from livedata import sql
from livedata.connectors import registry
from livedata.connectors.config import Freshness, SourceBase, Strict
from livedata.errors import CatalogError
from livedata.params import ParamSpec

ENV_PREFIX = "LIVEDATA_"
SECTIONS = ("sources", "tables", "queries")


class _Exposed(Freshness):
    """What tables and named queries share: where they run and what GET /queries says."""

    source: str
    description: str = ""
    column_descriptions: dict[str, str] = Field(
        default_factory=dict,
        description="What a result column means, by column name, shown by GET /queries.",
    )


class TableConfig(_Exposed):
    """A table exposed to the ``{"table": ...}`` shortcut; nothing else is reachable that way."""

    table: str | None = Field(default=None, description="Name in the source (default: the key).")
    db_schema: str | None = Field(
        default=None, alias="schema", description="Schema in the source, if not the default."
    )
    columns: list[str] | None = Field(
        default=None, description="Columns clients may see (default: all the table has)."
    )


class QueryConfig(_Exposed):
    """A named query: SQL written by the app builder, with typed ``:name`` parameters."""

    sql: str
    params: dict[str, ParamSpec] = Field(default_factory=dict)


def _source(value: Any) -> SourceBase:
    """A source validated by the model of its kind, which the kind's connector names (its
    module, and so its driver, imported now). Problems inside it are located under the kind:
    ``sources.db.postgres.databse``."""
    if isinstance(value, SourceBase):  # built in code rather than read from a file
        model = _model_of(value.kind)
        if not isinstance(value, model):
            raise PydanticCustomError(
                "source_model",
                "a {kind} source must be a {model}",
                {"kind": value.kind, "model": model.__name__},
            )
        return value
    kind = value.get("kind") if isinstance(value, dict) else None
    if not isinstance(kind, str):
        raise PydanticCustomError(
            "source_kind_missing",
            'every source needs `kind = "..."`, one of {kinds}',
            {"kinds": ", ".join(registry.kinds())},
        )
    model = _model_of(kind)
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise ValidationError.from_exception_data(
            exc.title, [_under(kind, error) for error in exc.errors()]
        ) from None


def _model_of(kind: str) -> type[SourceBase]:
    try:
        return registry.connector_class(kind).config_model
    except CatalogError as exc:  # an unknown kind, or its driver missing
        raise PydanticCustomError("source_kind", "{why}", {"why": exc.message}) from exc


def _under(kind: str, error: ErrorDetails) -> InitErrorDetails:
    details: InitErrorDetails = {
        "type": error["type"],
        "loc": (kind, *error["loc"]),
        "input": error["input"],
    }
    if "ctx" in error:
        details["ctx"] = error["ctx"]
    return details


# Serialised as the kind's model, not as the base the annotation names.
Source = Annotated[SerializeAsAny[SourceBase], PlainValidator(_source)]


class Catalog(Strict):
    sources: dict[str, Source]
    tables: dict[str, TableConfig] = Field(default_factory=dict)
    queries: dict[str, QueryConfig] = Field(default_factory=dict)

    def dialect(self, source: str) -> str:
        """The sqlglot dialect of source ``source``, as its connector class names it."""
        return registry.connector_class(self.sources[source].kind).dialect

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
        dialect = catalog.dialect(query.source)
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
        # The keys of column_descriptions name columns, not fields: a `token` column is no secret.
        fields = location.rpartition(".")[2] != "column_descriptions"
        for key, value in node.items():
            where = f"{location}.{key}" if location else str(key)
            if fields and _SECRET_NAME.search(str(key)) and isinstance(value, str | int | float):
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
    return str(error["msg"]).removeprefix("Value error, ")


def _allowed_fields(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The fields of the model where ``loc`` ends: field by field from ``root``, past dict
    keys and list indexes, and through a source's kind to that kind's own model."""
    model: Any = root
    parts = list(loc[:-1])
    while parts:
        field = getattr(model, "model_fields", {}).get(parts.pop(0))
        if field is None:
            return []
        model, keys = _inner(field.annotation)
        del parts[:keys]
        if model is SourceBase and parts:
            model = registry.connector_class(parts.pop(0)).config_model
    fields = getattr(model, "model_fields", {})
    return sorted(f.alias or n for n, f in fields.items())


def _inner(annotation: Any) -> tuple[Any, int]:
    """The model an annotation holds, and how many keys or indexes come before it."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return _inner(args[0])
    if origin in (dict, list, Mapping):
        model, keys = _inner(args[-1])
        return model, keys + 1
    if origin in (typing.Union, types.UnionType):  # an optional section: the section
        return _inner(next(arg for arg in args if arg is not type(None)))
    return annotation, 0


def _resolve_paths(catalog: Catalog, base: Path) -> Catalog:
    sources = {name: source.resolve_paths(base) for name, source in catalog.sources.items()}
    return catalog.model_copy(update={"sources": sources})
