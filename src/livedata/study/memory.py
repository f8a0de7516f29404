"""Peak memory of one format writing or reading one shape, measured in a fresh process.

tracemalloc does not see Arrow's allocator, and a long-lived process keeps freed memory in
its allocators, so each figure comes from a new interpreter: the resident set's high-water
mark (``VmHWM``, reset through ``/proc/self/clear_refs`` just before the work) minus the
resident set before it, and Arrow's own pool peak over what it held before. The first
counts every allocator and the pages of a memory-mapped file; the second only Arrow's.

Run as ``python -m livedata.study.memory FORMAT write|read DATA_FILE SOURCE_ARROW_FILE``; it
prints one JSON object.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa

from livedata.study.formats import STUDY_FORMATS
from livedata.study.measure import mapped, touch


def measure(format_name: str, phase: str, data: Path, source: Path) -> dict[str, Any]:
    """Peaks in bytes (``rss_peak``, ``arrow_peak``), or ``error``; taken in a fresh process."""
    return _run([format_name, phase, str(data), str(source)])


def _run(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603  # this interpreter, this module
        [sys.executable, "-m", "livedata.study.memory", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["exit " + str(done.returncode)])[-1]}
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main(argv: list[str]) -> None:
    format_name, phase, data, source = argv
    fmt = STUDY_FORMATS[format_name]
    table = None
    if phase == "write":
        with pa.OSFile(source) as file:  # read, not mapped: the table lives in Arrow's pool
            table = pa.ipc.open_file(file).read_all()
    rss, pool = _status("VmRSS"), pa.total_allocated_bytes()
    _reset_high_water_mark()
    if table is not None:
        fmt.dumps(table)
    else:
        touch(fmt.loads(mapped(Path(data))))
    print(
        json.dumps(
            {
                "rss_peak": _status("VmHWM") - rss,
                "arrow_peak": max(0, pa.default_memory_pool().max_memory() - pool),
            }
        )
    )


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_high_water_mark() -> None:
    Path("/proc/self/clear_refs").write_text("5")


if __name__ == "__main__":
    main(sys.argv[1:])
