"""``livedata bench formats``: the cache format study (``livedata.study``), which needs the
``bench`` extra; without it the command says so and exits 2."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
from pathlib import Path
from typing import Annotated

import typer

from livedata.commands.exits import stop

app = typer.Typer(help="Reproducible studies (see docs/cache-formats.md).", no_args_is_help=True)
# What the study imports beyond the base install, by the package that provides it.
NEEDS = {"matplotlib": "matplotlib", "httpx": "httpx"}


def _home(variable: str, fallback: str) -> Path:
    """An XDG base directory: outside any source tree, and a real disk (never tmpfs)."""
    return Path(os.environ.get(variable) or Path.home() / fallback)


def _default_out() -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return _home("XDG_DATA_HOME", ".local/share") / "livedata-bench" / f"formats-{stamp}"


@app.command()
def formats(
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Tiny data, 2 repeats: a smoke run in well under a minute."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where results.json, report.md and the PNGs go (default: a new folder under "
            "$XDG_DATA_HOME/livedata-bench; the project's own figures: docs/cache-formats).",
            file_okay=False,
            metavar="DIR",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Generated data and scratch files, on a real disk (default: "
            "$XDG_CACHE_HOME/livedata-bench).",
            file_okay=False,
            metavar="DIR",
        ),
    ] = None,
    repeats: Annotated[
        int | None, typer.Option(min=1, metavar="N", help="Timed runs per figure (5).")
    ] = None,
    format_names: Annotated[
        list[str] | None, typer.Option("--format", "-f", metavar="NAME", help="Only these formats.")
    ] = None,
    shape_names: Annotated[
        list[str] | None,
        typer.Option("--shape", "-s", metavar="NAME", help="Only these data shapes."),
    ] = None,
    hits: Annotated[bool, typer.Option(help="Time cache hits through the server.")] = True,
    memory: Annotated[bool, typer.Option(help="Measure peak memory.")] = True,
    budget: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            help="Seconds one format may take on one shape before it is skipped on larger ones.",
        ),
    ] = 30.0,
) -> None:
    """Compare the cache's candidate file formats.

    Write, read (hot, cold, mapped or not), size, memory, fidelity, and hits through the real
    server; prints ratio tables with footnotes, saves JSON, Markdown and PNG plots. Needs the
    bench extra: pip install 'livedata[bench]'."""
    missing = [package for module, package in NEEDS.items() if not importlib.util.find_spec(module)]
    if missing:
        stop(
            f"livedata bench formats needs {', '.join(missing)}, of the bench extra: "
            "pip install 'livedata[bench]'"
        )
    from livedata.study.formats import STUDY_FORMATS
    from livedata.study.main import study
    from livedata.study.run import Options

    unknown = sorted(set(format_names or ()) - set(STUDY_FORMATS))
    if unknown:
        raise typer.BadParameter(
            f"unknown format(s) {unknown}; known: {', '.join(STUDY_FORMATS)}",
            param_hint="'--format'",
        )
    options = Options(
        quick=quick,
        repeats=repeats or (2 if quick else 5),
        data_dir=data_dir or _home("XDG_CACHE_HOME", ".cache") / "livedata-bench",
        formats=tuple(format_names or ()),
        shapes=tuple(shape_names or ()),
        hits=hits,
        memory=memory,
        budget=budget,
    )
    study(options, out or _default_out())
