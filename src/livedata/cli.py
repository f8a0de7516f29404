"""The ``livedata`` command: its groups (``livedata.commands``, one module each) and the one
place where a failure becomes a message and an exit code (``livedata.commands.exits``).

Help is click's plain text: it wraps at any width, cuts nothing off, and needs no import
beyond typer, so ``livedata --help`` answers at once.
"""

from __future__ import annotations

import sys

import typer

from livedata.commands import access, bench, cache, catalog, query, sample, serve
from livedata.commands.exits import exit_code, report
from livedata.errors import LivedataError

app = typer.Typer(
    help="livedata: named, typed queries over your databases, as JSON or Arrow. "
    "Exit codes: 0 done, 1 a failure (the source's, or interrupted), 2 a mistake in a "
    "setting, the catalog, the access file or an argument.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)
app.command()(serve.serve)
app.command()(query.query)
app.add_typer(catalog.app, name="catalog")
app.add_typer(sample.app, name="sample")
app.add_typer(bench.app, name="bench")
app.add_typer(cache.app, name="cache")
app.add_typer(access.keys_app, name="keys")
app.add_typer(access.token_app, name="token")


def main() -> None:
    try:
        app(prog_name="livedata")
    except LivedataError as exc:
        report(exc)
        sys.exit(exit_code(exc))


if __name__ == "__main__":
    main()
