"""What a benchmark's command line does, whichever it is: `--quick` and `--out`, progress
while it runs, the machine and its load before and after, `<name>.json` and `<name>.png`
written, the table printed."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from service_overhead import machine

Report = dict[str, Any]


def main(
    name: str,
    description: str,
    outs: tuple[Path, Path],  # where --quick writes, where a full run writes
    run: Callable[[bool, Progress], Report],
    plot: Callable[[Report, Path], None],
    print_report: Callable[[Console, Report], None],
    argv: Sequence[str] | None = None,
) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="~100k rows, 3 repeats, to tmp/")
    parser.add_argument("--out", type=Path, help="directory for the JSON and PNG results")
    args = parser.parse_args(argv)
    out: Path = args.out or outs[0 if args.quick else 1]
    out.mkdir(parents=True, exist_ok=True)
    console = Console(width=None if sys.stdout.isatty() else 160)
    started, host = dt.datetime.now(dt.UTC), machine()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console) as progress:
        measured = run(args.quick, progress)
    host["load_average_at_end"] = [round(x, 2) for x in psutil.getloadavg()]
    report = {
        "benchmark": name,
        "started": started.isoformat(timespec="seconds"),
        "machine": host,
        **measured,
    }
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, out / f"{name}.png")
    print_report(console, report)
    console.print(f"wrote {out / f'{name}.json'} and {out / f'{name}.png'}")
