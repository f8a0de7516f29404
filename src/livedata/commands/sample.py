"""``livedata sample load``: the bundled sample tables into a database server."""

from __future__ import annotations

from typing import Annotated

import typer

from livedata.commands.exits import stop
from livedata.commands.startup import CatalogOption, load

app = typer.Typer(help="The bundled sample data set.", no_args_is_help=True)


@app.command("load")
def sample_load(
    source: Annotated[
        str, typer.Option(metavar="NAME", help="A postgres, mysql or sqlite source of the catalog.")
    ],
    catalog: CatalogOption = None,
) -> None:
    """Load the bundled sample tables into a database server.

    Tables of the same names are replaced."""
    from rich.console import Console

    from livedata.sample.load import load_sample  # only this command writes to a source

    _, loaded = load(catalog)
    if source not in loaded.sources:
        stop(f"--source: no source {source!r}; known: {', '.join(loaded.sources)}")
    with Console(stderr=True).status(f"loading the sample into {source}..."):
        counts = load_sample(source, loaded.sources[source])
    for table_name, rows in counts.items():
        print(f"{table_name}: {rows} rows")
