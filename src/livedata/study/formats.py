"""The format-level study: each format writes and reads each shape, with the cache's own classes.

For one format on one shape (a "cell") it records the write time (``dumps`` plus writing and
fsyncing the file, as the cache does), the file size, what the round trip lost, and the read
time: page cache hot or cold, the file memory-mapped (the cache's path) and, for formats that
read the bytes in place (``in_place``), also read into memory with ``read()``. It also times
reading the file's bytes alone (map and checksum): the floor under any format, and the whole
cost of a hit for a stored response body.

A format that cannot store a shape is probed column by column, so the report says which
columns it cannot take. A format whose first (untimed) round trip shows that the timed runs
would blow the time budget is skipped on that shape, with the figure that said so (its
fidelity is still recorded); where its pace on an earlier big shape predicts that, it is
skipped without trying.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from livedata.cache.formats.base import CacheFormat
from livedata.cache.formats.registry import ALL_FORMATS
from livedata.study.body import JSONBody, JSONBodyZstd
from livedata.study.fidelity import compare
from livedata.study.measure import (
    checksum,
    copied,
    evict,
    mapped,
    timed,
    touch,
    write_file,
)

STUDY_FORMATS: dict[str, CacheFormat] = {
    **ALL_FORMATS,
    **{f.name: f for f in (JSONBody(), JSONBodyZstd())},
}
READS: dict[str, Callable[[Path], memoryview]] = {"mmap": mapped, "read": copied}
TIMED_ROUND_TRIPS = 3  # per run: a write and 4 reads, each about half a round trip, plus warm-ups


class Pace:
    """Predicts a format's round trip on a shape from its pace on the last big one, so that a
    format far too slow for the budget is skipped without trying (a JSON round trip of a
    million rows takes longer than most formats' whole cell)."""

    MIN_BYTES = 1 << 20  # below this, fixed costs make a per-byte pace meaningless

    def __init__(self, repeats: int, budget: float) -> None:
        self.repeats = repeats
        self.budget = budget
        self.rate: dict[str, float] = {}

    def skip(self, name: str, table: pa.Table, once: float | None = None) -> str | None:
        """Why ``name`` must skip ``table`` (given or predicted round trip), else None."""
        predicted = once is None
        if once is None:
            once = self.rate.get(name, 0.0) * table.nbytes
        total = once * self.repeats * TIMED_ROUND_TRIPS
        if total <= self.budget:
            return None
        how = "would take" if predicted else "takes"
        return (
            f"skipped: one round trip {how} {once:.1f} s, so {self.repeats} timed runs of "
            f"each figure ~{total:.0f} s, over the {self.budget:.0f} s budget per cell"
        )

    def record(self, name: str, table: pa.Table, once: float) -> None:
        if table.nbytes >= self.MIN_BYTES:
            self.rate[name] = once / table.nbytes


def measure_cell(fmt: CacheFormat, table: pa.Table, folder: Path, pace: Pace) -> dict[str, Any]:
    """Every figure for ``fmt`` on ``table``; never raises for a format's own failure."""
    cell: dict[str, Any] = {"format": fmt.name, "status": "ok", "note": ""}
    if not fmt.available():
        return {**cell, "status": "unavailable", "note": _unavailable(fmt)}
    predicted = pace.skip(fmt.name, table)
    if predicted is not None:
        return {**cell, "status": "skipped", "note": predicted}
    repeats = pace.repeats
    path = folder / f"{fmt.name}.data"
    started = time.perf_counter()
    try:
        back = fmt.loads(memoryview(fmt.dumps(table)))
    except Exception as exc:
        return {
            **cell,
            "status": "error",
            "note": f"{type(exc).__name__}: {_first_line(exc)}",
            "fidelity": probe_columns(fmt, table),
        }
    cell["fidelity"] = compare(table, back)
    del back
    once = time.perf_counter() - started
    pace.record(fmt.name, table, once)
    measured = pace.skip(fmt.name, table, once)
    if measured is not None:
        return {**cell, "status": "skipped", "note": measured}
    cell["write"] = timed(lambda: write_file(path, fmt.dumps(table)), repeats).as_dict()
    cell["size"] = path.stat().st_size
    cell["read"] = {}
    for mode, open_file in READS.items() if fmt.in_place else [("mmap", mapped)]:
        read = lambda open_file=open_file: touch(fmt.loads(open_file(path)))  # noqa: E731
        cell["read"][f"hot-{mode}"] = timed(read, repeats).as_dict()
        cell["read"][f"cold-{mode}"] = timed(read, repeats, before=lambda: evict(path)).as_dict()
    cell["bytes"] = {
        "hot": timed(lambda: checksum(mapped(path)), repeats).as_dict(),
        "cold": timed(
            lambda: checksum(mapped(path)), repeats, before=lambda: evict(path)
        ).as_dict(),
    }
    return cell


def probe_columns(fmt: CacheFormat, table: pa.Table) -> dict[str, str]:
    """Round-trip each column alone: which ones the format cannot take, and why."""
    verdicts = {}
    for name in table.schema.names:
        column = table.select([name])
        try:
            verdicts.update(compare(column, fmt.loads(memoryview(fmt.dumps(column)))))
        except Exception as exc:
            verdicts[name] = f"error: {type(exc).__name__}: {_first_line(exc)}"
    return verdicts


def median(cell: dict[str, Any], *keys: str) -> float | None:
    """A median from a cell, e.g. ``median(cell, "read", "hot-mmap")``; None if not taken."""
    value: Any = cell
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value["median"]) if isinstance(value, dict) else None


def _unavailable(fmt: CacheFormat) -> str:
    try:
        fmt.check_installed()
    except ImportError as exc:
        return str(exc)
    return ""


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0][:160]
