"""Ratio tables from a results document: each figure over the best one of the same run.

Rows are formats, columns data shapes; a cell is the format's median divided by the best
median in its column (1.0 is the best), with the best absolute figure in the column header.
A cell without a figure says in a word why (``n/a``, ``fails``, ``slow``, ``-``) and points
to a footnote under its table with the reason: not installed, the error, the time budget, or
a figure this table does not take for that format or shape. The same tables are printed to
the console and written as Markdown (``report.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from livedata.study.fidelity import VERDICTS
from livedata.study.formats import median

Pick = Callable[[dict[str, Any]], float | None]
Why = tuple[str, str]  # the word in the cell, the footnote's reason
# A cell's status (see livedata.study.formats.measure_cell) -> its word and reason's prefix.
_STATUS_WORDS = {
    "unavailable": ("n/a", "not installed"),
    "error": ("fails", "failed"),
    "skipped": ("slow", "skipped by the time budget"),
}


@dataclass(frozen=True)
class RatioTable:
    title: str
    unit: str  # "s" or "B"
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)  # footnotes, "[1] why", in order


def cell_table(
    results: dict[str, Any], title: str, unit: str, pick: Pick, absent: str
) -> RatioTable:
    """A ratio table over the format cells (write, read, size, memory); ``absent``: why a
    measured cell has no figure for this table."""
    values: dict[tuple[str, str], float | None] = {}
    why: dict[tuple[str, str], Why] = {}
    for cell in results["cells"]:
        key = (cell["format"], cell["shape"])
        values[key] = pick(cell) if cell["status"] == "ok" else None
        if cell["status"] == "skipped":  # one footnote for all: the figures are in the JSON
            why[key] = ("slow", _budget(results))
        elif cell["status"] in _STATUS_WORDS:
            word, prefix = _STATUS_WORDS[cell["status"]]
            why[key] = (word, _reason(prefix, cell["note"], cell["format"], cell["status"]))
        else:
            why[key] = ("-", absent)
    return _ratios(title, unit, list(results["formats"]), list(results["shapes"]), values, why)


def hit_table(
    results: dict[str, Any], title: str, response: str, mode: str, concurrency: int
) -> RatioTable:
    """A ratio table of end-to-end hit latency (median, request to last byte)."""
    values: dict[tuple[str, str], float | None] = {}
    why: dict[tuple[str, str], Why] = {}
    formats: list[str] = []
    for row in results["hits"]:
        if row["format"] not in formats:
            formats.append(row["format"])
        if "shape" not in row:  # its server did not start
            for shape in results["shapes"]:
                why[(row["format"], shape)] = ("fails", f"failed: {row['error']}")
            continue
        key = (row["format"], row["shape"])
        if "skipped" in row:
            why[key] = (
                "slow",
                "skipped: the format's own cell was not measured, or one read of it times the "
                "runs would be over the time budget (results.json says which)",
            )
        elif (row["response"], row["mode"], row["concurrency"]) == (response, mode, concurrency):
            values[key] = float(row["latency"]["median"])
    absent = (
        "not measured: hits are timed for the formats the cache may use"
        + (
            ", and a quick run serves only its first shape"
            if results["meta"]["settings"].get("quick")
            else ""
        )
        + (", in bursts only for bodies up to 4 MiB" if concurrency > 1 else "")
    )
    for fmt in formats:
        for shape in results["shapes"]:
            why.setdefault((fmt, shape), ("n/a", absent))
    return _ratios(title, "s", formats, list(results["shapes"]), values, why)


def _budget(results: dict[str, Any]) -> str:
    budget = results["meta"]["settings"].get("budget", 30.0)
    return (
        f"skipped by the time budget ({budget:g} s per format and shape, --budget): one round "
        "trip, repeated for every timed figure, would take longer (results.json has each "
        "cell's estimate)"
    )


def _reason(prefix: str, note: str, fmt: str, status: str) -> str:
    # Install hints and errors are the format's own; a budget skip's figures are the cell's.
    return f"{prefix}: {note}" if status == "unavailable" else f"{prefix}: {fmt}: {note}"


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
                ", ".join(retyped) or "none",
                ", ".join(n.split(" (")[0] for n in lost) or "none",
                "whole table fails" if cell["status"] == "error" else "ok",
            ]
        )
    header = ["format", "exact", "retyped (values kept)", "lost or refused", "round trip"]
    return RatioTable(f"What each format loses ({shape} table)", "", header, rows)


_NOT_TAKEN = "not applicable: this figure was not taken for this cell"
_IN_PLACE_ONLY = (
    "not applicable: read() without mapping is timed only for formats that read the bytes in "
    "place (the others copy them anyway)"
)
_MEMORY = (
    "not measured: peak memory is taken only for shapes of 32 MiB or more as Arrow (below, the "
    "interpreter's own noise is larger), and not with --no-memory"
)


def standard_tables(results: dict[str, Any]) -> list[RatioTable]:
    tables = [
        cell_table(
            results,
            "Read, page cache cold, memory-mapped",
            "s",
            lambda c: median(c, "read", "cold-mmap"),
            _NOT_TAKEN,
        ),
        cell_table(
            results,
            "Read, page cache hot, memory-mapped",
            "s",
            lambda c: median(c, "read", "hot-mmap"),
            _NOT_TAKEN,
        ),
        cell_table(
            results,
            "Read, page cache hot, read() without mapping",
            "s",
            lambda c: median(c, "read", "hot-read"),
            _IN_PLACE_ONLY,
        ),
        cell_table(
            results,
            "Read, page cache cold, read() without mapping",
            "s",
            lambda c: median(c, "read", "cold-read"),
            _IN_PLACE_ONLY,
        ),
        cell_table(
            results,
            "Write (encode, write, fsync)",
            "s",
            lambda c: median(c, "write"),
            _NOT_TAKEN,
        ),
        cell_table(results, "File size", "B", lambda c: c.get("size"), _NOT_TAKEN),
        cell_table(
            results,
            "Peak memory reading (resident set growth)",
            "B",
            lambda c: _memory(c, "read"),
            _MEMORY,
        ),
        cell_table(
            results,
            "Peak memory writing (resident set growth)",
            "B",
            lambda c: _memory(c, "write"),
            _MEMORY,
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
        "column header gives that best figure. A cell without a figure says why in a word "
        "(`fails`: the format cannot store the shape, see the fidelity table; `slow`: skipped "
        "by the time budget; `n/a`: not installed or not measured; `-`: not applicable) and "
        "a footnote under its table gives the reason.",
        "",
        _meta_markdown(results["meta"]),
    ]
    for table in standard_tables(results):
        parts += ["", f"## {table.title}", "", _markdown_table(table)]
        if table.notes:
            parts += ["", *(f"{note}  " for note in table.notes)]
    return "\n".join(parts) + "\n"


def print_tables(results: dict[str, Any], console: Console) -> None:
    for table in standard_tables(results):
        view = Table(title=table.title, title_justify="left")
        for index, name in enumerate(table.header):  # format names whole; headers may fold
            view.add_column(name, no_wrap=index == 0, overflow="fold")
        for row in table.rows:
            view.add_row(*row)
        console.print(view)
        for note in table.notes:
            console.print(note, highlight=False, markup=False)


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
    why: dict[tuple[str, str], Why],
) -> RatioTable:
    best = {
        shape: min(_present(values.get((f, shape)) for f in formats), default=None)
        for shape in shapes
    }
    header = ["format"] + [
        shape if (low := best[shape]) is None else f"{shape} ({human(low, unit)})"
        for shape in shapes
    ]
    notes: dict[str, int] = {}  # reason -> its footnote number
    rows = []
    for fmt in formats:
        row = [fmt]
        for shape in shapes:
            value, low = values.get((fmt, shape)), best[shape]
            if value is None or not low:
                word, reason = why.get((fmt, shape), ("n/a", "not measured"))
                if value is not None:  # a figure, but none in its column to compare with
                    word, reason = "n/a", "no figure above zero in this column to compare with"
                number = notes.setdefault(reason, len(notes) + 1)
                row.append(f"{word} [{number}]")
            else:
                row.append(f"{value / low:.1f}" if value / low < 100 else f"{value / low:.0f}")
        rows.append(row)
    return RatioTable(title, unit, header, rows, [f"[{n}] {r}" for r, n in notes.items()])


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
