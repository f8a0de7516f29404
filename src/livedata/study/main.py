"""The study as ``livedata bench formats`` runs it: progress on stderr while it runs, then
``results.json``, ``report.md`` and the plots written to the output folder, and the ratio
tables, each with its footnotes, on stdout (the servers' logs go to files, never there)."""

from __future__ import annotations

from pathlib import Path

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from livedata.study import plots, report
from livedata.study.run import Options, run, units


def study(options: Options, out: Path) -> None:
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
