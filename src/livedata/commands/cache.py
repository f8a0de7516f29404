"""``livedata cache ...``: the result cache in LIVEDATA_CACHE_DIR, with no server running."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from livedata.commands.exits import stop
from livedata.commands.startup import CatalogOption, load, read_settings

if TYPE_CHECKING:
    from livedata.cache.entries import ResultCache

app = typer.Typer(
    help="The result cache in LIVEDATA_CACHE_DIR (no server needed).", no_args_is_help=True
)


@contextmanager
def _cache() -> Iterator[ResultCache]:
    """The cache of LIVEDATA_CACHE_DIR, the one the server uses; closed after use."""
    from livedata.cache.entries import ResultCache
    from livedata.cache.formats.registry import cache_format

    settings = read_settings()
    cache = ResultCache(
        settings.cache_dir, settings.cache_max_bytes, cache_format(settings.cache_format)
    )
    try:
        yield cache
    finally:
        cache.close()


def _tell_cluster(tag: str | None) -> None:
    """With Redis configured, every node's copies go stale too (the generation of ``tag``,
    or of every entry, is counted up), not only this host's files."""
    import asyncio

    from livedata.cluster import EVERYTHING, Cluster

    settings = read_settings()
    if settings.redis_url is None:
        return
    url = settings.redis_url.get_secret_value()

    async def tell() -> None:
        cluster = Cluster(url, settings.cache_shared_timeout, 1.0, time.time)
        try:
            await cluster.invalidate(tag or EVERYTHING)
        finally:
            await cluster.close()

    asyncio.run(tell())


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _entries(count: int) -> str:
    return f"{count} entr{'y' if count == 1 else 'ies'}"


@app.command("ls")
def cache_ls() -> None:
    """List the entries, most recently used first."""
    import orjson
    from rich.box import SIMPLE
    from rich.console import Console
    from rich.filesize import decimal
    from rich.table import Table

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
    Console(stderr=True).print(_entries(len(rows)))


@app.command("stats")
def cache_stats() -> None:
    """Entries, size against the bound, and how many have expired."""
    from rich.filesize import decimal

    with _cache() as cache:
        entries, size = len(cache.index.all_keys()), cache.index.total_bytes()
        expired = len(cache.index.expired(time.time()))
        bound = cache.max_bytes
    used = f" ({size / bound:.0%})" if bound else ""
    print(
        f"entries: {entries}\nsize: {decimal(size)} of {decimal(bound)}{used}\n"
        f"expired: {expired} (removed by the next maintenance round or `livedata cache purge`)"
    )


@app.command("clear")
def cache_clear() -> None:
    """Remove every entry."""
    with _cache() as cache:
        removed = cache.clear()
    _tell_cluster(None)
    print(f"removed {_entries(removed)}")


@app.command("purge")
def cache_purge() -> None:
    """Remove the expired entries (past their last stale deadline)."""
    with _cache() as cache:
        removed = cache.purge_expired()
    print(f"removed {_entries(removed)} (expired)")


@app.command("invalidate")
def cache_invalidate(
    table: Annotated[
        str | None, typer.Option(metavar="TABLE", help="Entries whose SQL reads this table.")
    ] = None,
    query: Annotated[
        str | None, typer.Option(metavar="QUERY", help="Entries of this named query.")
    ] = None,
    source: Annotated[
        str | None, typer.Option(metavar="SOURCE", help="Entries of this source.")
    ] = None,
    catalog: CatalogOption = None,
) -> None:
    """Remove the entries of a table, a query or a source.

    --table removes every entry whose SQL reads that table (after an ETL run reloaded it)."""
    from livedata.plan import invalidation_tag

    named = {"table": table, "query": query, "source": source}
    given = [(kind, name) for kind, name in named.items() if name is not None]
    if len(given) != 1:
        stop("give exactly one of --table, --query or --source")
    tag = invalidation_tag(load(catalog)[1], *given[0])
    with _cache() as cache:
        removed = cache.invalidate(tag)
    _tell_cluster(tag)
    print(f"removed {_entries(removed)} ({tag})")
