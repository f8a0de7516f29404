"""Clocks, files and page-cache control: how each figure of the study is taken.

A timing is a list of runs after warm-up; ``Stats`` keeps them with their median and spread.
A cold read starts with the file evicted from the page cache (fsync, then
``posix_fadvise(DONTNEED)``), so it pays the disk as a cache hit after eviction would.
Every read ends with ``touch``: a zero-copy read costs nothing until the bytes are used, and
the cache's own checksum reads every byte of an entry, so each read here reads every byte.
"""

from __future__ import annotations

import mmap
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import xxhash


@dataclass(frozen=True)
class Stats:
    """Seconds over ``runs``: the median and its spread (quartiles, min, max)."""

    median: float
    q1: float
    q3: float
    low: float
    high: float
    runs: list[float]

    @classmethod
    def of(cls, runs: list[float]) -> Stats:
        ordered = sorted(runs)
        if len(ordered) >= 2:
            q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
        else:
            q1 = q3 = ordered[0]
        return cls(statistics.median(ordered), q1, q3, ordered[0], ordered[-1], runs)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def timed(
    run: Callable[[], object],
    repeats: int,
    warmup: int = 1,
    before: Callable[[], object] | None = None,
) -> Stats:
    """``run`` timed ``repeats`` times after ``warmup`` untimed runs; ``before`` each, untimed."""
    for _ in range(warmup):
        run()
    runs = []
    for _ in range(repeats):
        if before is not None:
            before()
        started = time.perf_counter()
        run()
        runs.append(time.perf_counter() - started)
    return Stats.of(runs)


def write_file(path: Path, data: bytes) -> None:
    """Write and fsync, as the cache writes an entry."""
    with open(path, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def evict(path: Path) -> None:
    """Drop ``path`` from the page cache, so the next read comes from the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def mapped(path: Path) -> memoryview:
    """The file as the cache hands it to a format: a read-only memory map."""
    with open(path, "rb") as file:
        return memoryview(mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ))


def copied(path: Path) -> memoryview:
    """The file read into memory with ``read()``: the path without memory mapping."""
    return memoryview(path.read_bytes())


def touch(table: pa.Table) -> int:
    """Read every byte of every buffer (what encoding a response does, at memory speed)."""
    digest = xxhash.xxh3_64()
    for column in table.columns:
        for chunk in column.chunks:
            for buffer in chunk.buffers():
                if buffer is not None:
                    digest.update(memoryview(buffer))
    return digest.intdigest()


def checksum(data: memoryview) -> int:
    """The cache's integrity check over a file's bytes."""
    return xxhash.xxh3_128_intdigest(data)
