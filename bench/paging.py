"""Paging a 1M-row lineitem snapshot 1,000 rows at a time: cursors against offsets (issue 14).

Why: with `offset`, page k makes the source sort the whole table and skip k x 1000 rows, so a
deep page costs the result, not the page; a cursor's page is a slice of the snapshot's mapped
Arrow entry. The promise is a ratio: page 1000 within 2x of page 1 with cursors. Both ways
are measured in one run, interleaved, from one client: cursors on a server with the default
cache (page 1 is the `paginate` request on a warm entry, later pages are cursor requests,
re-sent: a cursor stays valid for LIVEDATA_CURSOR_TTL), offsets on one with
`LIVEDATA_CACHE_TTL=0`, as a client reading each page once finds them (every offset is a
cache key of its own: a reader never hits it). Keyset cursors, what `paginate` gives where
nothing is cached, run on that uncached server too: each page asks the source for the rows
after the last one sent (the bench table has no index, so every page is a scan and a top-N
sort: constant per page, where an offset grows with its depth).

Run `.venv/bin/python bench/paging.py` (`--quick`: ~100k rows, page 100 for the deep one, 3
repeats); it needs the PostgreSQL the tests use and loads the data `bench/service_overhead.py`
loads. It writes `bench/results/paging.{json,png}` and prints the ratio table.
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
    client,
    ensure_lineitem,
    lineitem_parquet,
    livedata_command,
    serve,
    versions,
    write_catalog,
)

PAGE = 1000  # rows per page
DEEP_PAGE = 1000  # the page compared with the first (the last there is, on a smaller table)
TARGET = 2.0  # issue 14: page 1000 within 2x of page 1, with cursors
ORDER = [{"column": "l_orderkey"}, {"column": "l_linenumber"}]  # the table's key: a total order
CACHED = {"LIVEDATA_CACHE_MAX_BYTES": str(8 << 30)}  # room for the 1M-row snapshot
WAYS = ("cursor", "keyset", "offset")  # a snapshot's cursors; keyset cursors, uncached; offsets
COLORS = {"cursor": "tab:blue", "keyset": "tab:green", "offset": "tab:orange"}


def timed(http: httpx.Client, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """Seconds to the last byte of one request, and its JSON."""
    started = time.perf_counter()
    response = http.post("/query", json=body)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{body}: {response.status_code} {response.text[:300]}")
    answer = response.json()
    if len(answer["rows"]) != PAGE:
        raise RuntimeError(f"{body}: {len(answer['rows'])} rows, not {PAGE}")
    return elapsed, answer


def cursor_to(http: httpx.Client, table: str, first: dict[str, Any], page: int) -> str:
    """The cursor of page ``page`` (1-based), walked to from the first page's."""
    cursor = first["meta"]["next"]
    for _ in range(page - 2):
        cursor = http.post("/query", json={"table": table, "cursor": cursor}).json()["meta"]["next"]
    return str(cursor)


def measure(
    table: str, rows: int, repeats: int, catalog: Path, cache_dir: Path, progress: Progress
) -> dict[str, Any]:
    deep = min(DEEP_PAGE, rows // PAGE)
    first_page = {"table": table, "order_by": ORDER, "limit": PAGE}
    bodies: dict[str, dict[str, Any]] = {
        "offset, page 1": {**first_page, "offset": 0},
        f"offset, page {deep}": {**first_page, "offset": (deep - 1) * PAGE},
        "cursor, page 1": {**first_page, "paginate": True},
        "keyset, page 1": {**first_page, "paginate": True},  # on the uncached server
    }
    samples: dict[str, list[float]] = {}
    with (
        serve(livedata_command(catalog), {**CACHED, "LIVEDATA_CACHE_DIR": str(cache_dir)}) as kept,
        serve(livedata_command(catalog), UNCACHED) as uncached,
        client(kept) as cursors,
        client(uncached) as offsets,
    ):
        setup = progress.add_task(f"snapshot of {rows:,} rows, walked to page {deep}", total=1)
        _, first = timed(cursors, bodies["cursor, page 1"])  # the miss that stores the snapshot
        bodies[f"cursor, page {deep}"] = {
            "table": table,
            "cursor": cursor_to(cursors, table, first, deep),
        }
        _, first = timed(offsets, bodies["keyset, page 1"])
        bodies[f"keyset, page {deep}"] = {
            "table": table,
            "cursor": cursor_to(offsets, table, first, deep),
        }
        progress.advance(setup)
        task = progress.add_task("interleaved requests", total=(repeats + 1) * len(bodies))
        for round_ in range(repeats + 1):  # the first round warms up
            for name, body in bodies.items():
                http = cursors if name.startswith("cursor") else offsets
                elapsed, _ = timed(http, body)
                if round_:
                    samples.setdefault(name, []).append(elapsed * 1000)
                progress.advance(task)
    stats = {
        name: {
            "median_ms": statistics.median(ms),
            "min_ms": min(ms),
            "max_ms": max(ms),
            "samples_ms": [round(x, 3) for x in ms],
        }
        for name, ms in samples.items()
    }
    return {"deep_page": deep, "requests": bodies_shown(bodies), "timings": stats}


def bodies_shown(bodies: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The requests as sent, a cursor shortened (it is long and says nothing to a reader)."""
    return {
        name: {k: (v[:16] + "..." if k == "cursor" else v) for k, v in body.items()}
        for name, body in bodies.items()
    }


def run(quick: bool, progress: Progress) -> dict[str, Any]:
    plan = QUICK if quick else FULL
    uri = f"postgresql://{SOURCE.user}@{SOURCE.host}:{SOURCE.port}/{SOURCE.database}"
    with adbc_pg.connect(uri, autocommit=True) as adbc, tempfile.TemporaryDirectory() as tmp:
        setup = progress.add_task("loading data into PostgreSQL", total=1)
        rows = ensure_lineitem(adbc, plan.lineitem_table, lineitem_parquet(plan.scale))
        progress.advance(setup)
        catalog = write_catalog(Path(tmp), [plan.lineitem_table])
        repeats = plan.lineitem_repeats
        measured = measure(
            plan.lineitem_table, rows, repeats, catalog, Path(tmp) / "cache", progress
        )
        deep, timings = measured["deep_page"], measured["timings"]
        ratios = {
            way: round(
                timings[f"{way}, page {deep}"]["median_ms"]
                / timings[f"{way}, page 1"]["median_ms"],
                3,
            )
            for way in WAYS
        }
        return {
            "table": plan.lineitem_table,
            "rows": rows,
            "page_rows": PAGE,
            "repeats": repeats,
            **measured,
            "ratios": ratios,
            "meets_target": ratios["cursor"] <= TARGET,
            "versions": versions(adbc),
        }


def print_report(console: Console, report: dict[str, Any]) -> None:
    deep = report["deep_page"]
    table = Table(title=f"{report['page_rows']:,}-row pages of {report['rows']:,} lineitem rows")
    for name in ("paging", "page 1 ms", f"page {deep} ms", f"page {deep} / page 1"):
        table.add_column(name, justify="left" if name == "paging" else "right")
    for way in WAYS:
        t = report["timings"]
        table.add_row(
            way,
            f"{t[f'{way}, page 1']['median_ms']:,.1f}",
            f"{t[f'{way}, page {deep}']['median_ms']:,.1f}",
            f"{report['ratios'][way]:.2f}x",
        )
    console.print(table)
    verdict = "meets" if report["meets_target"] else "MISSES"
    console.print(f"cursor page {deep} / page 1: target <= {TARGET:g}x; {verdict} it")


def plot(report: dict[str, Any], path: Path) -> None:
    figure = Figure(figsize=(9, 4.8), layout="constrained")
    axes = figure.subplots()
    deep, names = report["deep_page"], list(report["timings"])
    medians = [report["timings"][n]["median_ms"] for n in names]
    spreads = [
        [m - report["timings"][n]["min_ms"] for n, m in zip(names, medians, strict=True)],
        [report["timings"][n]["max_ms"] - m for n, m in zip(names, medians, strict=True)],
    ]
    colors = [COLORS[n.split(",")[0]] for n in names]
    axes.bar(names, medians, yerr=spreads, color=colors, capsize=4)
    axes.set_yscale("log")
    axes.set_ylabel("ms to the last byte (median, min to max)")
    axes.set_title(
        f"{report['page_rows']:,}-row pages of {report['rows']:,} rows: page {deep} / page 1 is "
        f"{report['ratios']['cursor']:.2f}x with cursors, {report['ratios']['keyset']:.2f}x "
        f"by keyset (uncached), {report['ratios']['offset']:.2f}x with offsets"
    )
    host = report["machine"]
    figure.suptitle(
        f"livedata paging ({host['cpu']}, load average "
        f"{host['load_average_at_start'][0]:.2f} at the start)"
    )
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100)


def main(argv: Sequence[str] | None = None) -> None:
    description = __doc__.splitlines()[0]
    runner.main("paging", description, (QUICK.out, FULL.out), run, plot, print_report, argv)


if __name__ == "__main__":
    main()
