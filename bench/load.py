"""Servers under load: starting and stopping them, wrk against them, their CPU time.

What every wrk benchmark here shares (``cache_hits.py``, ``small_miss.py``, ``servers.py``,
``cluster.py``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import NamedTuple

import psutil


class Run(NamedTuple):
    requests: int  # answered in the run
    rate: float  # requests per second


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def process(
    command: list[str], ready: str, env: dict[str, str] | None = None
) -> Iterator[list[psutil.Process]]:
    """Start a server and wait until it says ``ready`` on stderr (no sleeps). It runs in a
    process group of its own, stopped as a whole: granian serving livedata once ignored
    SIGTERM for 30 s, and its worker, holding the pipe, kept the reader blocked forever.
    Yields its processes (it and its children) for their CPU time."""
    with subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    ) as server:
        assert server.stderr is not None
        for line in server.stderr:
            if ready in line:
                break
        # Keep reading what it logs: a full pipe would block the server mid-benchmark.
        threading.Thread(target=server.stderr.read, daemon=True).start()
        try:
            yield tree(server.pid)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                print(f"{command[0]} did not stop in 30 s; killed", flush=True)
            with suppress(ProcessLookupError):  # nothing left of the group
                os.killpg(server.pid, signal.SIGKILL)  # its workers too: they hold the pipe
            server.wait()


def tree(pid: int) -> list[psutil.Process]:
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def cpu_seconds(processes: Sequence[psutil.Process]) -> float:
    """User + system seconds of ``processes`` (and all their threads), from /proc/PID/stat."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def wrk(
    url: str,
    seconds: int,
    connections: int,
    body: Mapping[str, object] | None,
    headers: Mapping[str, str],
) -> Run:
    """One wrk run (one thread); POST with ``body`` when given, else GET. An error answer
    fails it: a benchmark of errors measures nothing."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    lines = [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    if body is not None:
        lines += [
            'wrk.method = "POST"',
            f"wrk.body = '{json.dumps(body)}'",
            'wrk.headers["Content-Type"] = "application/json"',
        ]
    script.write_text("\n".join(lines) + "\n")
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        script.unlink()
    if "Non-2xx" in out:
        raise RuntimeError(f"{url} answered errors:\n{out}")
    requests = re.search(r"(\d+) requests in", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert requests, out
    assert rate, out
    return Run(int(requests.group(1)), float(rate.group(1)))
