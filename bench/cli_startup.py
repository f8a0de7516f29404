"""How long `livedata --help` takes, against the interpreter starting and a bare typer app.

Why: issue 11 found `livedata --help` at 2-3 s (the CLI imported the service, pyarrow and the
format study's matplotlib before parsing a word); the target is under 0.5 s on our 2-core
machines. A process start is noisy on a shared machine, so each variant runs as a whole
process, the variants take turns run by run (A B C A B C ...), and the table gives medians
with their spread and each variant's ratio to the bare interpreter, paired run by run.

Variants:
- ``python``: ``python -c pass``, the floor of any Python command;
- ``typer``: a two-command typer app printing its help, what any typer CLI pays;
- ``livedata --help``, ``livedata query --help`` and ``livedata catalog check`` (which reads
  settings and the catalog: what a real command pays before its work).

Run `.venv/bin/python bench/cli_startup.py` (`--runs N`, default 21). It prints the table,
and writes `bench/results/cli_startup.json` (every run, the machine, the load average) and,
when matplotlib is installed (the bench extra), `bench/results/cli_startup.png`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

TARGET = 0.5  # seconds, issue 11: `livedata --help`, median
BIN = Path(sys.executable).parent
TYPER_APP = """
import typer
app = typer.Typer(rich_markup_mode=None)
@app.command()
def one() -> None:
    '''One.'''
@app.command()
def two() -> None:
    '''Two.'''
app()
"""
VARIANTS: dict[str, list[str]] = {
    "python": [sys.executable, "-c", "pass"],
    "typer": [sys.executable, "-c", TYPER_APP, "--help"],
    "livedata --help": [str(BIN / "livedata"), "--help"],
    "livedata query --help": [str(BIN / "livedata"), "query", "--help"],
    "livedata catalog check": [str(BIN / "livedata"), "catalog", "check"],
}
BASELINE = "python"


def once(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def measure(runs: int) -> dict[str, list[float]]:
    for command in VARIANTS.values():  # warm-up: the page cache holds every file afterwards
        once(command)
    taken: dict[str, list[float]] = {name: [] for name in VARIANTS}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True)) as progress:
        task = progress.add_task("runs", total=runs)
        for turn in range(runs):
            names = list(VARIANTS)
            shift = turn % len(names)  # each turn starts with another variant
            for name in names[shift:] + names[:shift]:
                taken[name].append(once(VARIANTS[name]))
            progress.advance(task)
    return taken


def report(taken: dict[str, list[float]]) -> Table:
    table = Table(title="Process start to exit, seconds (median over runs, interleaved)")
    for header in ("variant", "median", "min", "max", f"ratio to {BASELINE}", "target"):
        table.add_column(header, justify="left" if header == "variant" else "right")
    base = taken[BASELINE]
    for name, runs in taken.items():
        ratio = statistics.median(r / b for r, b in zip(runs, base, strict=True))
        target = ""
        if name == "livedata --help":
            met = statistics.median(runs) < TARGET
            target = f"< {TARGET} s ({'met' if met else 'missed'})"
        table.add_row(
            name,
            f"{statistics.median(runs):.3f}",
            f"{min(runs):.3f}",
            f"{max(runs):.3f}",
            f"{ratio:.2f}",
            target,
        )
    return table


def plot(taken: dict[str, list[float]], path: Path) -> bool:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    figure = Figure(figsize=(8, 3.5), layout="constrained")
    axes = figure.add_subplot()
    axes.boxplot(list(taken.values()), vert=False, tick_labels=list(taken))
    axes.axvline(TARGET, color="tab:red", linestyle="--", label=f"target {TARGET} s")
    axes.set_xlabel("seconds, process start to exit")
    axes.legend()
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=110)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="timed runs of each variant")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    options = parser.parse_args()
    taken = measure(options.runs)
    Console().print(report(taken))
    options.out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
        },
        "runs": taken,
    }
    (options.out / "cli_startup.json").write_text(json.dumps(result, indent=2) + "\n")
    plotted = plot(taken, options.out / "cli_startup.png")
    print(f"results in {options.out}/cli_startup.json" + (" and .png" if plotted else ""))


if __name__ == "__main__":
    main()
