"""``livedata catalog check``: the catalog, its secrets and the access file, and with
``--connect`` every source, table, column allow-list and named query (``livedata.checks``)."""

from __future__ import annotations

from typing import Annotated

import typer

from livedata.commands.startup import CatalogOption, access, load

app = typer.Typer(help="Inspect the catalog file.", no_args_is_help=True)


@app.command("check")
def check(
    catalog: CatalogOption = None,
    connect: Annotated[
        bool,
        typer.Option(
            "--connect",
            help="Also connect to every source and check every table, column allow-list and "
            "named query against it.",
        ),
    ] = False,
) -> None:
    """Check the catalog and the access file without serving.

    Exit code 2 names every problem: the file, the field and the fix. --connect also asks
    every source."""
    from rich.console import Console

    settings, loaded = load(catalog)
    out = Console(soft_wrap=True, highlight=False)
    out.print(
        f"catalog ok: {len(loaded.sources)} source(s), {len(loaded.tables)} table(s), "
        f"{len(loaded.queries)} query(ies)"
    )
    authenticator = access(settings.auth_file, loaded)
    if authenticator is not None:
        tokens = authenticator.tokens
        out.print(
            f"access file ok: {len(authenticator.access.api_keys)} API key(s), "
            f"{0 if tokens is None else len(tokens.keys)} token key(s)"
        )
    if not connect:
        return
    import anyio

    from livedata.checks import check as check_sources
    from livedata.connectors.sources import Sources
    from livedata.errors import CatalogError
    from livedata.service import QueryService

    service = QueryService(loaded, Sources.from_configs(loaded.sources), settings, tier=None)
    try:
        with Console(stderr=True).status("connecting to every source..."):
            problems = anyio.run(check_sources, service)
    finally:
        service.close()
    path = catalog or settings.catalog
    if problems:
        raise CatalogError(
            f"{path}: {len(problems)} problem(s) found by asking the sources:\n"
            + "\n".join(f"  {problem}" for problem in problems)
        )
    out.print(
        f"sources ok: {len(loaded.sources)} answered; every table, column allow-list and "
        "named query checked"
    )
