"""Two pictures from a results document (matplotlib, Agg backend, no display needed).

- ``read-vs-size.png``: per data shape, each format's cold read time against its file size,
  both on log scales: the best formats sit in the lower left. Filled markers are formats the
  cache may use; hollow ones lose types or run code.
- ``hits.png``: per data shape, the end-to-end latency of the first JSON and Arrow request
  of a cached entry for each format the cache may use, next to a stored body's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter

from livedata.study.formats import median

_FAMILY_COLORS = {
    "arrow": "tab:blue",
    "parquet": "tab:green",
    "orc": "tab:olive",
    "vortex": "tab:purple",
    "lance": "tab:pink",
    "duckdb": "tab:orange",
    "sqlite": "tab:brown",
    "json-body": "tab:red",
}


_PALETTE = [
    f"tab:{c}"
    for c in ("blue", "orange", "green", "red", "purple", "brown", "pink", "gray", "olive", "cyan")
]


def color(name: str) -> str:
    family = max((f for f in _FAMILY_COLORS if name.startswith(f)), key=len, default="")
    return _FAMILY_COLORS.get(family, "tab:gray")


def read_vs_size(results: dict[str, Any], path: Path) -> None:
    shapes = list(results["shapes"])
    columns = min(4, len(shapes))
    rows = math.ceil(len(shapes) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.8 * rows), layout="constrained")
    for index, shape in enumerate(shapes):
        axes = figure.add_subplot(rows, columns, index + 1)
        for cell in results["cells"]:
            read = median(cell, "read", "cold-mmap")
            if cell["shape"] != shape or read is None:
                continue
            name = cell["format"]
            cacheable = results["formats"][name]["cacheable"]
            axes.scatter(
                cell["size"],
                read,
                s=36,
                color=color(name),
                facecolors=color(name) if cacheable else "none",
            )
            axes.annotate(
                name,
                (cell["size"], read),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        _log_axes(
            axes,
            f"{shape} ({results['shapes'][shape]['rows']:,} rows)",
            "file size",
            "cold read",
        )
    figure.suptitle("Read time (page cache cold, mapped) against file size: lower left is better")
    _save(figure, path)


def hits(results: dict[str, Any], path: Path) -> None:
    rows = [r for r in results["hits"] if "latency" in r and r["concurrency"] == 1]
    formats = list(dict.fromkeys(r["format"] for r in rows))
    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    figure = Figure(figsize=(max(8.0, 1.6 * len(shapes) * 2), 7.5), layout="constrained")
    for index, response in enumerate(("json", "arrow")):
        axes = figure.add_subplot(2, 1, index + 1)
        width = 0.8 / max(len(formats), 1)
        for position, fmt in enumerate(formats):
            first = [_latency(rows, fmt, shape, response, "first") for shape in shapes]
            xs = [i + (position - len(formats) / 2 + 0.5) * width for i in range(len(shapes))]
            axes.bar(
                xs,
                [v or 0 for v in first],
                width,
                color=_PALETTE[position % len(_PALETTE)],
                label=fmt,
            )
        stored = (
            [_latency(rows, formats[0], s, response, "stored") for s in shapes] if formats else []
        )
        axes.scatter(
            range(len(shapes)),
            [v or math.nan for v in stored],
            marker="_",
            s=600,
            color="black",
            label="body stored (any format)",
            zorder=3,
        )
        axes.set_xticks(range(len(shapes)), shapes)
        axes.set_yscale("log")
        axes.set_ylabel("request to last byte (ms)")
        title = {"json": "JSON", "arrow": "Arrow"}[response]
        axes.set_title(f"First {title} request of a cached entry (bars, by cache format)")
        axes.grid(axis="y", which="both", alpha=0.3)
        axes.legend(fontsize=7, ncols=min(len(formats) + 1, 5))
    _save(figure, path)


def _latency(
    rows: list[dict[str, Any]], fmt: str, shape: str, response: str, mode: str
) -> float | None:
    for row in rows:
        if (row["format"], row["shape"], row["response"], row["mode"]) == (
            fmt,
            shape,
            response,
            mode,
        ):
            return float(row["latency"]["median"]) * 1e3
    return None


def _log_axes(axes: Axes, title: str, xlabel: str, ylabel: str) -> None:
    axes.set_xscale("log")
    axes.set_yscale("log")
    for axis, unit, limits in (
        (axes.xaxis, "B", axes.get_xlim()),
        (axes.yaxis, "s", axes.get_ylim()),
    ):
        decades = math.log10(limits[1] / limits[0])
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades <= 2 else (1.0,)))
        axis.set_major_formatter(EngFormatter(unit=unit))
        axis.set_minor_formatter(NullFormatter())
    axes.set_title(title, fontsize=10)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(which="both", alpha=0.3)


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=110)
