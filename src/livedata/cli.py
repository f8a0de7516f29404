"""The ``livedata`` command: serve, query, check the catalog, load the sample, manage the
result cache."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import pyarrow as pa
import typer
import uvicorn
from rich.box import SIMPLE
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table

from livedata.cache.formats.registry import FORMATS
from livedata.cache.results import ResultCache
from livedata.catalog import Catalog, load_catalog
from livedata.errors import CatalogError, LivedataError
from livedata.plan import QueryRequest, invalidation_tag
from livedata.service import QueryService, Result
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


def _load(catalog_path: Path | None) -> Catalog:
    """Load the catalog or stop with exit code 2 and a message naming the field and the fix."""
    try:
        catalog = load_catalog(catalog_path or Settings().catalog)
        catalog.check_secrets()
    except CatalogError as exc:
        err.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(2) from exc
    return catalog


@app.command()
def serve(
    catalog: CatalogOption = None,
    host: Annotated[str | None, typer.Option(help="Address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 5000).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the HTTP API (POST /query, GET /queries, /health, /ready, /docs)."""
    overrides = {"LIVEDATA_CATALOG": catalog, "LIVEDATA_HOST": host, "LIVEDATA_PORT": port}
    os.environ.update({k: str(v) for k, v in overrides.items() if v is not None})
    settings = Settings()
    _load(settings.catalog)  # fail fast, before any worker starts
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
    service = QueryService.create(_load(catalog), Settings())

    async def run() -> tuple[Result, pa.Table]:
        result = await service.run(request)
        return result, await service.table(result)

    try:
        result, rows = asyncio.run(run())
    except LivedataError as exc:
        err.print(f"[red]error ({exc.code}):[/red] {exc.message}", highlight=False)
        raise typer.Exit(1) from exc
    finally:
        service.close()
    view = Table(*rows.schema.names)
    for row in rows.to_pylist():
        view.add_row(*("" if v is None else str(v) for v in row.values()))
    Console().print(view)
    err.print(
        f"{result.rows} row(s) from {result.plan.target.source} "
        f"({result.status}, source {result.header['source_ms']:.1f} ms)"
        f"{' (truncated)' if result.truncated else ''}"
    )


@catalog_app.command("check")
def catalog_check(catalog: CatalogOption = None) -> None:
    """Validate the catalog without serving; exit code 2 when it is broken."""
    loaded = _load(catalog)
    Console().print(
        f"catalog ok: {len(loaded.sources)} source(s), {len(loaded.tables)} table(s), "
        f"{len(loaded.queries)} query(ies)"
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
        err.print(f"[red]error ({exc.code}):[/red] {exc.message}", highlight=False)
        raise typer.Exit(1) from exc
    for table_name, rows in counts.items():
        Console().print(f"{table_name}: {rows} rows")


@contextmanager
def _cache() -> Iterator[ResultCache]:
    """The cache of LIVEDATA_CACHE_DIR, the one the server uses; closed after use."""
    settings = Settings()
    cache = ResultCache(
        settings.cache_dir, settings.cache_max_bytes, FORMATS[settings.cache_format]
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
        err.print(f"[red]error ({exc.code}):[/red] {exc.message}", highlight=False)
        raise typer.Exit(2) from exc
    with _cache() as cache:
        removed = cache.invalidate(tag)
    Console().print(f"removed {_entries(removed)} ({tag})")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
