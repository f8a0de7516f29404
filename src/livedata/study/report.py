"""Ratio tables from a results document: each figure over the best one of the same run.

Rows are formats, columns data shapes; a cell is the format's median divided by the best
median in its column (1.0 is the best), with the best absolute figure in the column header.
The same tables are printed to the console and written as Markdown (``report.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from livedata.study.fidelity import VERDICTS
from livedata.study.formats import median

Pick = Callable[[dict[str, Any]], float | None]


@dataclass(frozen=True)
class RatioTable:
    title: str
    unit: str  # "s" or "B"
    header: list[str]
    rows: list[list[str]]


def cell_table(results: dict[str, Any], title: str, unit: str, pick: Pick) -> RatioTable:
    """A ratio table over the format cells (write, read, size, memory)."""
    values: dict[tuple[str, str], float | None] = {}
    notes: dict[tuple[str, str], str] = {}
    for cell in results["cells"]:
        key = (cell["format"], cell["shape"])
        values[key] = pick(cell) if cell["status"] == "ok" else None
        notes[key] = {"ok": "-", "error": "fails", "skipped": "slow"}.get(cell["status"], "n/a")
    return _ratios(title, unit, list(results["formats"]), list(results["shapes"]), values, notes)


def hit_table(
    results: dict[str, Any], title: str, response: str, mode: str, concurrency: int
) -> RatioTable:
    """A ratio table of end-to-end hit latency (median, request to last byte)."""
    values: dict[tuple[str, str], float | None] = {}
    notes: dict[tuple[str, str], str] = {}
    formats: list[str] = []
    for row in results["hits"]:
        if "shape" not in row:
            continue
        key = (row["format"], row["shape"])
        if row["format"] not in formats:
            formats.append(row["format"])
        if "skipped" in row:
            notes[key] = "slow"
        elif (row["response"], row["mode"], row["concurrency"]) == (response, mode, concurrency):
            values[key] = float(row["latency"]["median"])
    return _ratios(title, "s", formats, list(results["shapes"]), values, notes)


def fidelity_table(results: dict[str, Any], shape: str = "tricky") -> RatioTable:
    """How many columns of ``shape`` each format gives back exactly, and what it loses."""
    rows = []
    for cell in results["cells"]:
        if cell["shape"] != shape or "fidelity" not in cell:
            continue
        verdicts: dict[str, str] = cell["fidelity"]
        counts = {v: sum(1 for x in verdicts.values() if x == v) for v in VERDICTS}
        lost = [f"{n} ({x})" for n, x in verdicts.items() if x not in ("exact", "retyped")]
        retyped = [n for n, x in verdicts.items() if x == "retyped"]
        rows.append(
            [
                cell["format"],
                f"{counts['exact']}/{len(verdicts)}",
                ", ".join(retyped) or "-",
                ", ".join(n.split(" (")[0] for n in lost) or "-",
                "whole table fails" if cell["status"] == "error" else "-",
            ]
        )
    header = ["format", "exact", "retyped (values kept)", "lost or refused", "round trip"]
    return RatioTable(f"What each format loses ({shape} table)", "", header, rows)


def standard_tables(results: dict[str, Any]) -> list[RatioTable]:
    tables = [
        cell_table(
            results,
            "Read, page cache cold, memory-mapped",
            "s",
            lambda c: median(c, "read", "cold-mmap"),
        ),
        cell_table(
            results,
            "Read, page cache hot, memory-mapped",
            "s",
            lambda c: median(c, "read", "hot-mmap"),
        ),
        cell_table(
            results,
            "Read, page cache hot, read() without mapping",
            "s",
            lambda c: median(c, "read", "hot-read"),
        ),
        cell_table(
            results,
            "Read, page cache cold, read() without mapping",
            "s",
            lambda c: median(c, "read", "cold-read"),
        ),
        cell_table(results, "Write (encode, write, fsync)", "s", lambda c: median(c, "write")),
        cell_table(results, "File size", "B", lambda c: c.get("size")),
        cell_table(
            results, "Peak memory reading (resident set growth)", "B", lambda c: _memory(c, "read")
        ),
        cell_table(
            results, "Peak memory writing (resident set growth)", "B", lambda c: _memory(c, "write")
        ),
        fidelity_table(results),
    ]
    if results["hits"]:
        for response in ("json", "arrow"):
            tables += [
                hit_table(
                    results,
                    f"Hit, first {response} request of an entry (decode, encode, store the body)",
                    response,
                    "first",
                    1,
                ),
                hit_table(
                    results, f"Hit, {response} body stored, concurrency 1", response, "stored", 1
                ),
                hit_table(
                    results,
                    f"Hit, {response} body stored, concurrency 32 (latency)",
                    response,
                    "stored",
                    32,
                ),
                hit_table(
                    results, f"Hit, {response} repeated request, concurrency 1", response, "hot", 1
                ),
            ]
    return tables


def markdown(results: dict[str, Any]) -> str:
    parts = [
        "# Cache format study: results",
        "",
        "Generated by `livedata bench formats` from `results.json` next to this file. Each "
        "cell is the format's median over the best median in its column (1.0 = best); the "
        "column header gives that best figure. `fails`: the format cannot store the shape "
        "(see the fidelity table); `slow`: skipped on the time budget; `-`: not taken for this "
        "format (`read()` without mapping is timed only for formats that read the bytes in "
        "place); `n/a`: not measured (a quick run serves one shape).",
        "",
        _meta_markdown(results["meta"]),
    ]
    for table in standard_tables(results):
        parts += ["", f"## {table.title}", "", _markdown_table(table)]
    return "\n".join(parts) + "\n"


def print_tables(results: dict[str, Any], console: Console) -> None:
    for table in standard_tables(results):
        view = Table(*table.header, title=table.title, title_justify="left")
        for row in table.rows:
            view.add_row(*row)
        console.print(view)


def human(value: float, unit: str) -> str:
    if unit == "B":
        for size, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if value >= size:
                return f"{value / size:.1f} {suffix}"
        return f"{value:.0f} B"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.1f} ms"
    return f"{value * 1e6:.0f} µs"


def _ratios(
    title: str,
    unit: str,
    formats: list[str],
    shapes: list[str],
    values: dict[tuple[str, str], float | None],
    notes: dict[tuple[str, str], str],
) -> RatioTable:
    best = {
        shape: min(_present(values.get((f, shape)) for f in formats), default=None)
        for shape in shapes
    }
    header = ["format"] + [
        shape if (low := best[shape]) is None else f"{shape} ({human(low, unit)})"
        for shape in shapes
    ]
    rows = []
    for fmt in formats:
        row = [fmt]
        for shape in shapes:
            value, low = values.get((fmt, shape)), best[shape]
            if value is None or not low:
                row.append(notes.get((fmt, shape), "n/a"))
            else:
                row.append(f"{value / low:.1f}" if value / low < 100 else f"{value / low:.0f}")
        rows.append(row)
    return RatioTable(title, unit, header, rows)


def _present(values: Iterable[float | None]) -> list[float]:
    return [value for value in values if value is not None and value > 0]


def _memory(cell: dict[str, Any], phase: str) -> float | None:
    taken = cell.get("memory", {}).get(phase, {})
    return float(taken["rss_peak"]) if "rss_peak" in taken else None


def _markdown_table(table: RatioTable) -> str:
    lines = ["| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return "\n".join(lines)


def _meta_markdown(meta: dict[str, Any]) -> str:
    machine = meta["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
    return (
        f"Run {meta['started']} in {meta.get('duration_s', '?')} s on {machine['cores']} cores "
        f"({machine['cpu']}), {human(machine['memory_bytes'] or 0, 'B')} RAM, files on "
        f"{machine['work_dir_device']}, Python {machine['python']}; {versions}. Settings: "
        f"`{meta['settings']}`."
    )
