"""``livedata bench formats``: run the cache format study and write its report and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from livedata.study import plots, report
from livedata.study.formats import STUDY_FORMATS
from livedata.study.run import Options, run, units

REPO = Path(__file__).parents[3]
app = typer.Typer(help="Benchmarks that decide livedata's defaults.", no_args_is_help=True)


@app.callback()
def bench() -> None:
    """Benchmarks that decide livedata's defaults (a group, so each is a subcommand)."""


@app.command()
def formats(
    quick: Annotated[
        bool, typer.Option(help="Tiny data, 2 repeats: a smoke run in well under a minute.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where results.json, report.md and the PNGs go "
            "(default docs/cache-formats, or bench/results/tmp with --quick)."
        ),
    ] = None,
    data_dir: Annotated[
        Path, typer.Option(help="Generated data and scratch files (a real disk, git-ignored).")
    ] = REPO / "bench" / "data",
    repeats: Annotated[int | None, typer.Option(min=1, help="Timed runs per figure (5).")] = None,
    format_names: Annotated[
        list[str] | None, typer.Option("--format", "-f", help="Only these formats.")
    ] = None,
    shape_names: Annotated[
        list[str] | None, typer.Option("--shape", "-s", help="Only these data shapes.")
    ] = None,
    hits: Annotated[bool, typer.Option(help="Time cache hits through the server.")] = True,
    memory: Annotated[bool, typer.Option(help="Measure peak memory.")] = True,
    budget: Annotated[
        float,
        typer.Option(
            help="Seconds one format may take on one shape before it is skipped on larger ones."
        ),
    ] = 30.0,
) -> None:
    """Compare cache formats: write, read (hot, cold, mapped or not), size, memory, fidelity,
    and hits through the real server; print ratio tables, save JSON, Markdown and PNG plots."""
    unknown = sorted(set(format_names or ()) - set(STUDY_FORMATS))
    if unknown:
        raise typer.BadParameter(f"unknown format(s) {unknown}; known: {', '.join(STUDY_FORMATS)}")
    out = out or (REPO / "bench" / "results" / "tmp" if quick else REPO / "docs" / "cache-formats")
    options = Options(
        quick=quick,
        repeats=repeats or (2 if quick else 5),
        data_dir=data_dir,
        formats=tuple(format_names or ()),
        shapes=tuple(shape_names or ()),
        hits=hits,
        memory=memory,
        budget=budget,
    )
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("starting", total=units(options))
        results = run(options, lambda done: progress.update(task, advance=1, description=done))
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    (out / "report.md").write_text(report.markdown(results))
    plots.read_vs_size(results, out / "read-vs-size.png")
    if results["hits"]:
        plots.hits(results, out / "hits.png")
    report.print_tables(results, Console())
    console.print(f"results, report and plots in {out} ({results['meta']['duration_s']} s)")


if __name__ == "__main__":
    app()
