"""A stored miss against an uncached request, both sent as they are read (issue 9).

Why: the first request of a result that will be cached used to wait for the whole fetch, the
fsync and a re-read before its first byte; now it is teed, sent while the entry and its body
are written. The promise is a ratio: time to first and to last byte of that first (stored)
request at most 1.10x the uncached one's, and its peak RSS at most 2x the result's Arrow size.
So both are measured in one run, interleaved: one `livedata serve` with `LIVEDATA_CACHE_TTL=0`
and one with the default settings, whose cache is emptied (and the emptying checked) before
each of its requests, so every measured request is a miss that is stored.

Run `.venv/bin/python bench/stored_miss.py` (`--quick`: ~100k rows, 3 repeats); it needs the
PostgreSQL the tests use and the data `bench/service_overhead.py` loads (it loads it too). It
writes `bench/results/stored_miss.{json,png}` and prints the ratio table (see bench/README.md).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as adbc_pg
import httpx
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

import runner
from service_overhead import (
    FULL,
    QUICK,
    SOURCE,
    UNCACHED,
    Dataset,
    adbc_fetch,
    client,
    ensure_lineitem,
    lineitem_parquet,
    livedata_command,
    measure_memory,
    serve,
    statement_for,
    versions,
    write_catalog,
)

TARGET_TIME = 1.10  # issue 9: the stored miss's first and last byte within 10 % of uncached
TARGET_RSS = 2.0  # issue 9: its peak RSS within 2x the result's Arrow size
BOUND = 120.0  # seconds to wait for an entry to be committed before the run fails


def timed(http: httpx.Client, table: str, expect: str) -> tuple[float, float, int]:
    """Seconds to the first and to the last byte of one request, and its bytes."""
    started = time.perf_counter()
    first, size = None, 0
    with http.stream("POST", "/query", json={"table": table}) as response:
        status = response.headers.get("cache-status", "")
        if response.status_code != 200 or expect not in status:
            raise RuntimeError(f"expected {expect!r}, got {response.status_code} {status!r}")
        for chunk in response.iter_bytes():
            if first is None:
                first = time.perf_counter() - started
            size += len(chunk)
    assert first is not None
    return first, time.perf_counter() - started, size


def emptied(http: httpx.Client) -> None:
    """Wait for the entry the last miss is committing (it is committed after the last byte
    is sent), then remove it, so the next request is a miss again."""
    deadline = time.monotonic() + BOUND
    while not http.get("/cache").json()["entries"]:
        if time.monotonic() > deadline:
            raise RuntimeError("the stored miss was never committed")
        time.sleep(0.05)  # polling the server's own listing, within the bound
    http.post("/cache/invalidate", json={"all": True}).raise_for_status()


def measure(dataset: Dataset, catalog: Path, cache_dir: Path, progress: Progress) -> dict[str, Any]:
    samples: dict[str, list[tuple[float, float, int]]] = {"uncached": [], "stored miss": []}
    task = progress.add_task(f"{dataset.rows:,} rows", total=2 * (dataset.warmup + dataset.repeats))
    stored_env = {"LIVEDATA_CACHE_DIR": str(cache_dir)}
    with (
        serve(livedata_command(catalog), UNCACHED) as uncached,
        serve(livedata_command(catalog), stored_env) as stored,
        client(uncached) as plain,
        client(stored) as teed,
    ):
        for round_ in range(dataset.warmup + dataset.repeats):
            measured = [
                ("uncached", timed(plain, dataset.table, "fwd=bypass")),
                ("stored miss", timed(teed, dataset.table, "fwd=miss")),
            ]
            emptied(teed)
            for name, sample in measured:
                if round_ >= dataset.warmup:
                    samples[name].append(sample)
                progress.advance(task)
    return {name: _stats(runs) for name, runs in samples.items()}


def _stats(runs: list[tuple[float, float, int]]) -> dict[str, Any]:
    first = [r[0] * 1000 for r in runs]
    last = [r[1] * 1000 for r in runs]
    return {
        "first_byte_ms": {"median": statistics.median(first), "min": min(first), "max": max(first)},
        "last_byte_ms": {"median": statistics.median(last), "min": min(last), "max": max(last)},
        "bytes": runs[-1][2],
        "samples_first_ms": [round(x, 3) for x in first],
        "samples_last_ms": [round(x, 3) for x in last],
    }


def run(quick: bool, progress: Progress) -> dict[str, Any]:
    plan = QUICK if quick else FULL
    uri = f"postgresql://{SOURCE.user}@{SOURCE.host}:{SOURCE.port}/{SOURCE.database}"
    with adbc_pg.connect(uri, autocommit=True) as adbc, tempfile.TemporaryDirectory() as tmp:
        setup = progress.add_task("loading data into PostgreSQL", total=1)
        rows = ensure_lineitem(adbc, plan.lineitem_table, lineitem_parquet(plan.scale))
        progress.advance(setup)
        dataset = Dataset("lineitem", plan.lineitem_table, rows, 1, plan.lineitem_repeats)
        catalog = write_catalog(Path(tmp), [dataset.table])
        timings = measure(dataset, catalog, Path(tmp) / "cache", progress)
        arrow_bytes = adbc_fetch(adbc, statement_for(dataset.table)).nbytes
        progress.add_task("peak RSS of a fresh server", total=None)
        memory = {
            "uncached": measure_memory(catalog, dataset, arrow_bytes, UNCACHED),
            "stored miss": measure_memory(
                catalog, dataset, arrow_bytes, {"LIVEDATA_CACHE_DIR": str(Path(tmp) / "rss")}
            ),
        }
        ratios = {
            what: round(
                timings["stored miss"][what]["median"] / timings["uncached"][what]["median"], 3
            )
            for what in ("first_byte_ms", "last_byte_ms")
        }
        return {
            "table": dataset.table,
            "rows": rows,
            "repeats": dataset.repeats,
            "timings": timings,
            "ratios": ratios,
            "memory": memory,
            "meets_targets": all(r <= TARGET_TIME for r in ratios.values())
            and memory["stored miss"]["peak_rss_bytes"] <= TARGET_RSS * arrow_bytes,
            "versions": versions(adbc),
        }


def print_report(console: Console, report: dict[str, Any]) -> None:
    table = Table(title=f"first (stored) request vs uncached, {report['rows']:,} rows of JSON")
    for name in ("request", "first byte ms", "last byte ms", "peak RSS MiB", "x Arrow"):
        table.add_column(name, justify="right" if name != "request" else "left")
    for name in ("uncached", "stored miss"):
        t, m = report["timings"][name], report["memory"][name]
        table.add_row(
            name,
            f"{t['first_byte_ms']['median']:,.1f}",
            f"{t['last_byte_ms']['median']:,.1f}",
            f"{m['peak_rss_bytes'] / 2**20:,.0f}",
            f"{m['peak_over_arrow']:.2f}",
        )
    console.print(table)
    ratios = report["ratios"]
    console.print(
        f"stored / uncached: first byte {ratios['first_byte_ms']:.3f}x, last byte "
        f"{ratios['last_byte_ms']:.3f}x (target <= {TARGET_TIME}); stored miss peak RSS "
        f"{report['memory']['stored miss']['peak_over_arrow']:.2f}x the Arrow size "
        f"(target <= {TARGET_RSS:g}); {'meets' if report['meets_targets'] else 'MISSES'} targets"
    )


def plot(report: dict[str, Any], path: Path) -> None:
    figure = Figure(figsize=(12, 4.8), layout="constrained")
    times, memory = figure.subplots(1, 2)
    names = ["uncached", "stored miss"]
    for offset, what in ((-0.2, "first_byte_ms"), (0.2, "last_byte_ms")):
        medians = [report["timings"][n][what]["median"] for n in names]
        times.bar([i + offset for i in range(2)], medians, width=0.4, label=what.replace("_", " "))
    times.set_xticks(range(2), names)
    times.set_ylabel("ms (median)")
    times.set_title(f"{report['rows']:,} rows of JSON, {report['repeats']} interleaved runs")
    times.legend()
    arrow = report["memory"]["uncached"]["arrow_bytes"] / 2**20
    peaks = [report["memory"][n]["peak_rss_bytes"] / 2**20 for n in names]
    memory.bar(
        ["Arrow result", *names], [arrow, *peaks], color=["tab:blue", "tab:orange", "tab:orange"]
    )
    memory.axhline(
        arrow * TARGET_RSS, color="tab:red", linestyle="--", label=f"{TARGET_RSS:g}x Arrow"
    )
    memory.set_ylabel("peak RSS of a fresh server, MiB")
    memory.legend()
    host = report["machine"]
    figure.suptitle(
        f"livedata: a stored miss is sent while it is stored ({host['cpu']}, "
        f"load average {host['load_average_at_start'][0]:.2f} at the start)"
    )
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100)


def main(argv: Sequence[str] | None = None) -> None:
    description = __doc__.splitlines()[0]
    runner.main("stored_miss", description, (QUICK.out, FULL.out), run, plot, print_report, argv)


if __name__ == "__main__":
    main()
