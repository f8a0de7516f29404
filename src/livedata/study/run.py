"""One study run: every format on every shape, then the cache hits through the server.

Files are written under the data folder (a real disk, never tmpfs), so that evicting one
from the page cache means the next read comes from the disk. The results are one JSON
document (``results.json``) from which the report and the plots are made.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from livedata.study import environment, hits, memory
from livedata.study.formats import STUDY_FORMATS, Pace, measure_cell, median
from livedata.study.shapes import Shape, shapes

MEMORY_MIN_BYTES = 32 << 20  # peaks matter (and rise above the interpreter's noise) for big results
QUICK_HITS = 2  # a quick run starts servers for this many formats, on its first shape only


@dataclass(frozen=True)
class Options:
    quick: bool
    repeats: int
    data_dir: Path
    formats: tuple[str, ...]  # empty: all
    shapes: tuple[str, ...]  # empty: all
    hits: bool = True
    memory: bool = True
    budget: float = 30.0  # seconds one format may spend on one shape


Step = Callable[[str], None]  # called with a description after each unit of work


def plan(options: Options) -> tuple[list[Shape], list[str]]:
    chosen = [s for s in shapes(options.quick, options.data_dir) if _picked(s.name, options.shapes)]
    names = [name for name in STUDY_FORMATS if _picked(name, options.formats)]
    return chosen, names


def run(options: Options, step: Step) -> dict[str, Any]:
    started = time.perf_counter()
    chosen, names = plan(options)
    options.data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="study-", dir=options.data_dir) as scratch:
        work = Path(scratch)
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()}
        results: dict[str, Any] = {
            "meta": environment.describe(settings, work),
            "formats": {name: _describe_format(name) for name in names},
            "shapes": {},
            "cells": [],
            "hits": [],
        }
        tables: dict[str, Path] = {}
        pace = Pace(options.repeats, options.budget)
        for shape in chosen:
            table = shape.build()
            results["shapes"][shape.name] = {
                "description": shape.description,
                "rows": table.num_rows,
                "columns": table.num_columns,
                "arrow_bytes": table.nbytes,
            }
            tables[shape.name] = _save(table, work / "tables" / f"{shape.name}.parquet")
            results["cells"] += _cells(shape.name, table, names, work, options, pace, step)
            del table
        cells_done = time.perf_counter()
        if options.hits:
            results["hits"] = _hits(results, tables, work, options, step)
    finished = time.perf_counter()
    results["meta"]["duration_s"] = round(finished - started, 1)
    results["meta"]["phases_s"] = {
        "formats": round(cells_done - started, 1),
        "hits": round(finished - cells_done, 1),
    }
    return results


def units(options: Options) -> int:
    """How many times ``run`` calls ``step``: the length of the progress bar."""
    chosen, names = plan(options)
    if not options.hits:
        return len(chosen) * len(names)
    shapes_served = 1 if options.quick else len(chosen)
    return len(chosen) * len(names) + shapes_served * 2 * len(hits.RESPONSES)


def _cells(
    shape: str,
    table: pa.Table,
    names: list[str],
    work: Path,
    options: Options,
    pace: Pace,
    step: Step,
) -> list[dict[str, Any]]:
    folder = work / "cells" / shape
    folder.mkdir(parents=True)
    source = folder / "source.arrow"
    with pa.OSFile(str(source), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    cells = []
    for name in names:
        started = time.perf_counter()
        measured = measure_cell(STUDY_FORMATS[name], table, folder, pace)
        cell = {"shape": shape, **measured}
        wants_memory = options.memory and table.nbytes >= MEMORY_MIN_BYTES
        if cell["status"] == "ok" and wants_memory:
            data = folder / f"{name}.data"
            cell["memory"] = {
                phase: memory.measure(name, phase, data, source) for phase in ("write", "read")
            }
        (folder / f"{name}.data").unlink(missing_ok=True)
        cell["elapsed_s"] = round(time.perf_counter() - started, 2)
        cells.append(cell)
        step(f"{name} on {shape}")
    return cells


def _hits(
    results: dict[str, Any], tables: dict[str, Path], work: Path, options: Options, step: Step
) -> list[dict[str, Any]]:
    if options.quick:
        tables = dict(list(tables.items())[:1])
    served = {name.replace("-", "_"): path for name, path in tables.items()}
    catalog = hits.write_catalog(work, served)
    rows: list[dict[str, Any]] = []
    with ExitStack() as stack:
        servers: dict[str, hits.Server] = {}
        for name in _servable(results, options):
            try:
                servers[name] = stack.enter_context(
                    hits.server(catalog, name, work / "cache" / name)
                )
            except Exception as exc:  # a format that breaks the server is a result
                rows.append({"format": name, "error": f"{type(exc).__name__}: {exc}"})
        for shape in tables:
            taking_part = {}
            for name, server in servers.items():
                reason = _too_slow(results, name, shape, options)
                if reason is None:
                    taking_part[name] = server
                else:
                    rows.append({"format": name, "shape": shape, "skipped": reason})
            tick = partial(step, f"hits on {shape}")
            measured = hits.measure_table(
                taking_part, shape.replace("-", "_"), options.repeats, tick
            )
            rows += [{**row, "shape": shape} for row in measured]
    return rows


def _servable(results: dict[str, Any], options: Options) -> list[str]:
    names = [n for n, f in results["formats"].items() if f["cacheable"] and f["available"]]
    return names[:QUICK_HITS] if options.quick else names


def _too_slow(results: dict[str, Any], name: str, shape: str, options: Options) -> str | None:
    """Skip a server's hits where the format's own cell was skipped or would blow the budget."""
    cell = next(c for c in results["cells"] if c["format"] == name and c["shape"] == shape)
    if cell["status"] != "ok":
        return f"not measured: the format's cell is {cell['status']}"
    read = median(cell, "read", "hot-mmap") or 0.0
    if read * options.repeats * 2 * len(hits.RESPONSES) > options.budget:
        return f"skipped: a read takes {read:.2f} s, too slow for the budget"
    return None


def _describe_format(name: str) -> dict[str, Any]:
    fmt = STUDY_FORMATS[name]
    return {
        "description": fmt.description,
        "lossless": fmt.lossless,
        "runs_code": fmt.runs_code,
        "cacheable": fmt.cacheable,
        "available": fmt.available(),
        "library": fmt.library[1] if fmt.library else None,
    }


def _save(table: pa.Table, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def _picked(name: str, wanted: tuple[str, ...]) -> bool:
    return not wanted or name in wanted
