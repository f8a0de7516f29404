"""The ``livedata`` command: serve, query, check the catalog, load the sample, manage the
result cache."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import jwt
import orjson
import pyarrow as pa
import typer
import uvicorn
from pydantic import ValidationError
from rich.box import SIMPLE
from rich.console import Console
from rich.filesize import decimal
from rich.markup import escape
from rich.table import Table

from livedata.auth.access import Grant, check_grant
from livedata.auth.credentials import Authenticator
from livedata.auth.exposure import check_exposure
from livedata.auth.keys import new_key
from livedata.auth.tokens import issue, signing_secret
from livedata.cache.entries import EntryHeader, ResultCache
from livedata.cache.formats.base import FormatUnavailable
from livedata.cache.formats.registry import cache_format
from livedata.catalog import Catalog, load_catalog
from livedata.encoders.registry import ENCODERS
from livedata.errors import (
    AccessFileError,
    CatalogError,
    LivedataError,
    Unauthenticated,
    UnsafeExposure,
)
from livedata.plan import QueryRequest, invalidation_tag
from livedata.results import Result, StoredResult
from livedata.service import QueryService
from livedata.settings import Settings
from livedata.study.cli import app as study_app

if TYPE_CHECKING:
    from livedata.web.models import Invalidated

app = typer.Typer(
    help="livedata: named, typed queries over your databases, as JSON or Arrow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
catalog_app = typer.Typer(help="Inspect the catalog file.", no_args_is_help=True)
sample_app = typer.Typer(help="The bundled sample data set.", no_args_is_help=True)
cache_app = typer.Typer(
    help="The result cache in LIVEDATA_CACHE_DIR (no server needed).",
    no_args_is_help=True,
)
app.add_typer(catalog_app, name="catalog")
app.add_typer(sample_app, name="sample")
app.add_typer(study_app, name="bench", help="Reproducible studies (see docs/cache-formats.md).")
app.add_typer(cache_app, name="cache")
keys_app = typer.Typer(help="API keys for the access file.", no_args_is_help=True)
token_app = typer.Typer(help="Embed tokens for a builder's backend.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(token_app, name="token")
err = Console(stderr=True)

CatalogOption = Annotated[
    Path | None,
    typer.Option(
        "--catalog",
        "-c",
        help="Catalog file (default: LIVEDATA_CATALOG or the sample).",
        envvar="LIVEDATA_CATALOG",
        show_envvar=True,
    ),
]


def _settings() -> Settings:
    """The settings from the environment, or stop with exit code 2 naming the variable."""
    try:
        settings = Settings()
        cache_format(settings.cache_format)
    except ValidationError as exc:
        for problem in exc.errors():
            variable = "LIVEDATA_" + "_".join(map(str, problem["loc"])).upper()
            err.print(f"[red]error:[/red] {variable}: {escape(problem['msg'])}", highlight=False)
        raise typer.Exit(2) from exc
    except (ValueError, FormatUnavailable) as exc:
        err.print(f"[red]error:[/red] LIVEDATA_CACHE_FORMAT: {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc
    return settings


def _load(catalog_path: Path | None) -> Catalog:
    """Load the catalog or stop with exit code 2 and a message naming the field and the fix."""
    try:
        catalog = load_catalog(catalog_path or _settings().catalog)
        catalog.check_secrets()
    except CatalogError as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False)
        raise typer.Exit(2) from exc
    return catalog


AuthFileOption = Annotated[
    Path | None,
    typer.Option(
        "--auth-file",
        help="Access file: API keys and token keys (default: LIVEDATA_AUTH_FILE; none: no auth).",
        envvar="LIVEDATA_AUTH_FILE",
        show_envvar=True,
    ),
]


def _access(path: Path | None, catalog: Catalog) -> Authenticator | None:
    """Load the access file (when one is set) or stop with exit code 2 naming the fix."""
    try:
        return Authenticator.from_file(path, catalog)
    except CatalogError as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False)
        raise typer.Exit(2) from exc


@app.command()
def serve(
    catalog: CatalogOption = None,
    host: Annotated[str | None, typer.Option(help="Address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 5000).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    auth_file: AuthFileOption = None,
    allow_public_without_auth: Annotated[
        bool,
        typer.Option(
            help="Serve a non-loopback address with no access file (proxy authenticates)."
        ),
    ] = False,
) -> None:
    """Serve the HTTP API (POST /query, GET /queries, /health, /ready, /docs)."""
    overrides = {
        "LIVEDATA_CATALOG": catalog,
        "LIVEDATA_HOST": host,
        "LIVEDATA_PORT": port,
        "LIVEDATA_AUTH_FILE": auth_file,
        "LIVEDATA_ALLOW_PUBLIC_WITHOUT_AUTH": allow_public_without_auth or None,
    }
    os.environ.update({k: str(v) for k, v in overrides.items() if v is not None})
    settings = _settings()
    authenticator = _access(settings.auth_file, _load(settings.catalog))  # before any worker
    try:
        check_exposure(settings.host, authenticator is not None, settings.allow_public_without_auth)
    except UnsafeExposure as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False)
        raise typer.Exit(2) from exc
    uvicorn.run(
        "livedata.web.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level=settings.log_level,
        access_log=settings.access_log,
        server_header=False,
    )


@app.command()
def query(
    name: Annotated[str, typer.Argument(help="A named query, or a table with --table.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="A parameter as key=value.")
    ] = None,
    table: Annotated[bool, typer.Option("--table", help="NAME is an exposed table.")] = False,
    limit: Annotated[int | None, typer.Option(help="Most rows to show.")] = None,
    catalog: CatalogOption = None,
) -> None:
    """Run a named query (or table) and print the rows as a table."""
    params: dict[str, Any] = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep:
            err.print(f"[red]error:[/red] -p {item!r}: write parameters as key=value")
            raise typer.Exit(2)
        params[key] = value
    request = (
        QueryRequest(table=name, limit=limit)
        if table
        else QueryRequest(query=name, params=params, limit=limit)
    )
    service = QueryService.create(_load(catalog), _settings())

    async def run() -> tuple[Result, EntryHeader, pa.Table]:
        result = await service.run(request, ENCODERS["arrow"])
        if isinstance(result, StoredResult):
            return result, result.header, await service.table(result)
        body = b"".join([chunk async for chunk in result.body])
        if result.stored is not None:
            await result.stored()  # committed after the last byte: let it finish
        return result, result.header(), pa.ipc.open_stream(body).read_all()

    try:
        result, header, rows = asyncio.run(run())
    except LivedataError as exc:
        err.print(f"[red]error ({exc.code}):[/red] {escape(exc.message)}", highlight=False)
        raise typer.Exit(1) from exc
    finally:
        service.close()
    view = Table(*rows.schema.names)
    for row in rows.to_pylist():
        view.add_row(*("" if v is None else str(v) for v in row.values()))
    Console().print(view)
    err.print(
        f"{header.rows} row(s) from {header.source} "
        f"({result.status}, source {header.source_ms:.1f} ms)"
        f"{' (truncated)' if header.truncated else ''}"
    )


@catalog_app.command("check")
def catalog_check(catalog: CatalogOption = None) -> None:
    """Validate the catalog without serving; exit code 2 when it is broken."""
    loaded = _load(catalog)
    Console().print(
        f"catalog ok: {len(loaded.sources)} source(s), {len(loaded.tables)} table(s), "
        f"{len(loaded.queries)} query(ies)"
    )
    authenticator = _access(_settings().auth_file, loaded)
    if authenticator is not None:
        tokens = authenticator.tokens
        Console().print(
            f"access file ok: {len(authenticator.access.api_keys)} API key(s), "
            f"{0 if tokens is None else len(tokens.keys)} token key(s)"
        )


@sample_app.command("load")
def sample_load(
    source: Annotated[str, typer.Option(help="A postgres, mysql or sqlite source of the catalog.")],
    catalog: CatalogOption = None,
) -> None:
    """Load the bundled sample tables into a database server (replacing them)."""
    from livedata.sample.load import load_sample  # imported here: only this command writes

    loaded = _load(catalog)
    if source not in loaded.sources:
        err.print(f"[red]error:[/red] no source {source!r}; known: {', '.join(loaded.sources)}")
        raise typer.Exit(2)
    try:
        with err.status(f"loading the sample into {source}..."):
            counts = load_sample(source, loaded.sources[source])
    except LivedataError as exc:
        err.print(f"[red]error ({exc.code}):[/red] {escape(exc.message)}", highlight=False)
        raise typer.Exit(1) from exc
    for table_name, rows in counts.items():
        Console().print(f"{table_name}: {rows} rows")


@contextmanager
def _cache() -> Iterator[ResultCache]:
    """The cache of LIVEDATA_CACHE_DIR, the one the server uses; closed after use."""
    settings = _settings()
    cache = ResultCache(
        settings.cache_dir, settings.cache_max_bytes, cache_format(settings.cache_format)
    )
    try:
        yield cache
    finally:
        cache.close()


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _entries(count: int) -> str:
    return f"{count} entr{'y' if count == 1 else 'ies'}"


@cache_app.command("ls")
def cache_ls() -> None:
    """List the entries, most recently used first."""
    with _cache() as cache:
        rows = cache.index.listing()
    now = time.time()
    view = Table("key", "result", "rows", "size", "age", "state", "hits", box=SIMPLE)
    for column in view.columns:  # results fold when the terminal is narrow; the rest stays whole
        column.no_wrap = column.header != "result"
        column.overflow = "fold"
    for row in rows:
        params = f" {orjson.dumps(row['params']).decode()}" if row["params"] else ""
        state = "fresh" if now < row["fresh_until"] else "stale"
        view.add_row(
            row["key"][:8],
            f"{row['kind']}:{row['name']}{params}",
            str(row["rows"]),
            decimal(row["bytes"]),
            _age(now - row["created"]),
            "expired" if now >= row["stale_until"] else state,
            str(row["hits"]),
        )
    Console().print(view)
    err.print(_entries(len(rows)))


@cache_app.command("stats")
def cache_stats() -> None:
    """Entries, size against the bound, and how many have expired."""
    with _cache() as cache:
        entries, size = len(cache.index.all_keys()), cache.index.total_bytes()
        expired = len(cache.index.expired(time.time()))
        bound = cache.max_bytes
    used = f" ({size / bound:.0%})" if bound else ""
    Console().print(
        f"entries: {entries}\nsize: {decimal(size)} of {decimal(bound)}{used}\n"
        f"expired: {expired} (removed by the next maintenance round or `livedata cache purge`)"
    )


@cache_app.command("clear")
def cache_clear() -> None:
    """Remove every entry."""
    with _cache() as cache:
        removed = cache.clear()
    Console().print(f"removed {_entries(removed)}")


@cache_app.command("purge")
def cache_purge() -> None:
    """Remove the expired entries (past their last stale deadline)."""
    with _cache() as cache:
        removed = cache.purge_expired()
    Console().print(f"removed {_entries(removed)} (expired)")


@cache_app.command("invalidate")
def cache_invalidate(
    table: Annotated[str | None, typer.Option(help="Entries whose SQL reads this table.")] = None,
    query: Annotated[str | None, typer.Option(help="Entries of this named query.")] = None,
    source: Annotated[str | None, typer.Option(help="Entries of this source.")] = None,
    catalog: CatalogOption = None,
) -> None:
    """Remove the entries that read a table (after an ETL run), of a query, or of a source."""

    named: dict[Invalidated, str | None] = {"table": table, "query": query, "source": source}
    given = [(kind, name) for kind, name in named.items() if name is not None]
    if len(given) != 1:
        err.print("[red]error:[/red] give exactly one of --table, --query or --source")
        raise typer.Exit(2)
    try:
        tag = invalidation_tag(_load(catalog), *given[0])
    except LivedataError as exc:
        err.print(f"[red]error ({exc.code}):[/red] {escape(exc.message)}", highlight=False)
        raise typer.Exit(2) from exc
    with _cache() as cache:
        removed = cache.invalidate(tag)
    Console().print(f"removed {_entries(removed)} ({tag})")


QueriesOption = Annotated[
    list[str] | None, typer.Option("--query", "-q", help='A named query it may run; "*": all.')
]
TablesOption = Annotated[
    list[str] | None, typer.Option("--table", "-t", help='A table it may read; "*": all.')
]
RestrictOption = Annotated[
    list[str] | None,
    typer.Option("--restrict", "-r", help="A forced value as name=value (parameter or column)."),
]
AdminOption = Annotated[bool, typer.Option(help="May manage the cache and read /metrics.")]


def _grant(
    queries: list[str] | None,
    tables: list[str] | None,
    restrict: list[str] | None,
    admin: bool,
    catalog: Catalog,
) -> Grant:
    restrictions: dict[str, Any] = {}
    for item in restrict or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            err.print(f"[red]error:[/red] --restrict {item!r}: write name=value")
            raise typer.Exit(2)
        restrictions[name] = value
    grant = Grant(
        queries=queries or [], tables=tables or [], restrictions=restrictions, admin=admin
    )
    try:
        check_grant(grant, catalog, "grant")
    except CatalogError as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False)
        raise typer.Exit(2) from exc
    return grant


@keys_app.command("new")
def keys_new(
    key_id: Annotated[str, typer.Argument(help="Its id: letters, digits or '-'.")],
    query: QueriesOption = None,
    table: TablesOption = None,
    restrict: RestrictOption = None,
    admin: AdminOption = False,
    catalog: CatalogOption = None,
) -> None:
    """Make an API key: print it once, and the section to paste into the access file."""
    grant = _grant(query, table, restrict, admin, _load(catalog))
    try:
        key, stored = new_key(key_id)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    section = {"hash": stored, **grant.model_dump()}
    lines = [f"{name} = {_toml(value)}" for name, value in section.items()]
    # The key on stderr, the section on stdout: `keys new ID >> access.toml` is safe.
    print(f"API key (shown only now; give it to its holder, keep no copy):\n{key}", file=sys.stderr)
    print(f"[api_keys.{key_id}]\n" + "\n".join(lines) + "\n")


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {_toml(v)}" for k, v in value.items())
        return f"{{ {inner} }}" if inner else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return orjson.dumps(value).decode()  # strings, booleans and numbers read the same in TOML


DEFAULT_TTL = 900  # seconds: long enough for a page view, short enough to leak little


@token_app.command("issue")
def token_issue(
    kid: Annotated[str, typer.Option(help="The [tokens.keys.<kid>] to sign with.")],
    subject: Annotated[str, typer.Option(help="Who it is for (the `sub` claim), e.g. a user.")],
    query: QueriesOption = None,
    table: TablesOption = None,
    restrict: RestrictOption = None,
    admin: AdminOption = False,
    ttl: Annotated[
        float | None,
        typer.Option(min=1, help="Seconds until it expires (default: 900, or max_ttl if less)."),
    ] = None,
    private_key: Annotated[
        Path | None, typer.Option(help="PEM private key (RS256, ES256, EdDSA); HS256 needs none.")
    ] = None,
    auth_file: AuthFileOption = None,
    catalog: CatalogOption = None,
) -> None:
    """Sign an embed token (what a builder's backend does per page view) and print it, once
    it passes the checks the server will make: ttl, the key's ceiling, audience and issuer."""
    loaded = _load(catalog)
    authenticator = _access(auth_file, loaded)
    verifier = None if authenticator is None else authenticator.tokens
    if verifier is None:
        err.print("[red]error:[/red] the access file (--auth-file) has no [tokens] section")
        raise typer.Exit(2)
    config = verifier.config
    ttl = min(DEFAULT_TTL, config.max_ttl) if ttl is None else ttl
    if ttl > config.max_ttl:
        err.print(
            f"[red]error:[/red] --ttl {ttl:g} is over max_ttl ({config.max_ttl:g} s) in "
            f"{auth_file}: the server would refuse the token"
        )
        raise typer.Exit(2)
    grant = _grant(query, table, restrict, admin, loaded)
    try:
        signing = private_key.read_bytes() if private_key else signing_secret(config, kid)
        if signing is None:
            raise AccessFileError(f"tokens.keys.{kid} is asymmetric: pass --private-key FILE")
        token = issue(config, kid, signing, subject, grant, ttl)
        verifier.verify(token)  # a wrong private key or a grant over the ceiling shows here
    except Unauthenticated as exc:
        reason = escape(exc.reason)
        err.print(
            f"[red]error:[/red] the server would refuse this token: {reason}", highlight=False
        )
        raise typer.Exit(2) from exc
    except (OSError, CatalogError, jwt.PyJWTError, ValueError) as exc:
        message = exc.message if isinstance(exc, CatalogError) else str(exc)
        err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
        raise typer.Exit(2) from exc
    print(token)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
