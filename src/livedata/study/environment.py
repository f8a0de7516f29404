"""What a result depends on besides the code: the machine, the library versions, the run's
settings. Recorded in every results file, so a figure can be traced to where it came from."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

LIBRARIES = (
    "livedata",
    "pyarrow",
    "duckdb",
    "numpy",
    "orjson",
    "msgpack",
    "fastavro",
    "vortex-data",
    "pylance",
    "adbc-driver-sqlite",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "xxhash",
)


def describe(settings: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    return {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": _machine(work_dir),
        "versions": {name: _version(name) for name in LIBRARIES},
        "git": _git(),
        "settings": settings,
    }


def _machine(work_dir: Path) -> dict[str, Any]:
    return {
        "cpu": _first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "memory_bytes": _meminfo_total(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "work_dir_device": _device(work_dir),
        "load_average": os.getloadavg(),
    }


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _first(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _meminfo_total() -> int | None:
    total = _first("/proc/meminfo", "MemTotal")
    return None if total is None else int(total.split()[0]) * 1024


def _device(path: Path) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603  # fixed command, our path
            ["df", "--output=source,fstype", str(path)],  # noqa: S607  # coreutils from PATH
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return " ".join(done.stdout.split()[2:]) or None


def _git() -> dict[str, Any] | None:
    root = Path(__file__).parents[3]
    try:
        commit = subprocess.run(  # noqa: S603
            ["git", "-C", str(root), "rev-parse", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(  # noqa: S603
            ["git", "-C", str(root), "status", "--porcelain"],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": commit, "uncommitted_changes": bool(dirty)}
