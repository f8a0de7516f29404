"""End-to-end cache hits through the real server: request to last byte, per cache format.

One server process per cache format (``livedata.study.serve``), all running at once, each
serving every shape from an embedded DuckDB with a cache directory of its own; they take
turns, run by run. After one miss has stored a shape's
entry, three kinds of hit are timed, for JSON and Arrow responses:

- ``first``: the entry is stored but not the response body (its body files are deleted
  before each run): the cache reads the entry with its format, encodes, and stores the
  body. Every entry pays this once per response format and content coding.
- ``stored``: the body is stored: the server verifies the entry and the body and sends it.
- ``hot``: the same request again, which the server may answer from memory.

The request body carries a run number in trailing white space, which changes none of the
plan, the key or the response, so ``first`` and ``stored`` runs take the server's full path;
``hot`` repeats identical bytes. Every timed response must say ``Cache-Status: hit``.
Concurrency 32 runs bursts of 32 simultaneous requests on 32 connections, for bodies up to
``BURST_MAX_BODY`` (beyond that a burst measures the client's bandwidth, not the cache), on
``stored`` only (a ``hot`` answer does not involve the cache format). The client is httpx in
one Python process sharing the 2 cores with the server: at concurrency 32 it is the
bottleneck, so those figures show that no format collapses, not the server's capacity.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from livedata.study.measure import Stats

RESPONSES = ("json", "arrow")
MODES = ("first", "stored", "hot")
BURST = 32
BURST_MAX_BODY = 4 << 20
_HIT = "livedata; hit"
_salt = itertools.count()


def write_catalog(folder: Path, tables: dict[str, Path]) -> Path:
    """A catalog exposing each shape's Parquet file as a table of one embedded DuckDB."""
    load = ", ".join(f'{name} = "{path}"' for name, path in tables.items())
    lines = [
        "[sources.study]",
        'kind = "duckdb"',
        f"load = {{ {load} }}",
        "max_rows = 2_000_000",
        "statement_timeout = 600",
        "ttl = 86400",
        *(f'[tables.{name}]\nsource = "study"' for name in tables),
    ]
    path = folder / "catalog.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def server(catalog: Path, format_name: str, cache_dir: Path) -> Iterator[Server]:
    """A server process using cache format ``format_name``. Its log (and no audit log) goes
    to ``server.log`` beside its cache, never into the tables the study prints."""
    env = {
        **os.environ,
        "LIVEDATA_CATALOG": str(catalog),
        "LIVEDATA_CACHE_FORMAT": format_name,
        "LIVEDATA_CACHE_DIR": str(cache_dir),
        "LIVEDATA_CACHE_MAX_BYTES": str(1 << 40),  # deleted bodies must not evict the entry
        "LIVEDATA_LOG_LEVEL": "warning",
        "LIVEDATA_AUDIT_LOG": "off",
    }
    cache_dir.mkdir(parents=True, exist_ok=True)
    log_path = cache_dir.parent / f"{format_name}-server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "livedata.study.serve"],
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            text=True,
        )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        if not port.isdigit():
            tail = log_path.read_text().strip().splitlines()[-3:]
            raise RuntimeError(
                f"the {format_name} server did not start (exit {process.wait()}): "
                + " / ".join(tail)
            )
        yield Server(f"http://127.0.0.1:{port}", cache_dir)
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass(frozen=True)
class Server:
    url: str
    cache_dir: Path


def measure_table(
    servers: dict[str, Server], table: str, repeats: int, tick: Callable[[], None]
) -> list[dict[str, Any]]:
    """Every hit figure for one table on every server, the servers taking turns run by run
    (so load that comes and goes on a shared machine hits them alike); ``tick`` after each
    response format's concurrency-1 and concurrency-32 measurements."""
    rows: list[dict[str, Any]] = []
    with ExitStack() as stack:
        clients = {
            name: stack.enter_context(
                httpx.Client(base_url=s.url, timeout=600, headers={"Accept-Encoding": "identity"})
            )
            for name, s in servers.items()
        }
        for http in clients.values():
            _post(http, table, "json", expect=None)  # the miss that stores the entry
        for response in RESPONSES:
            for mode in MODES:
                runs = _take_turns(servers, clients, table, response, mode, repeats)
                for name, taken in runs.items():
                    size = _post(clients[name], table, response)[1]
                    rows.append(_row(name, table, response, mode, 1, Stats.of(taken), size))
            tick()
            for name, server in servers.items():
                size = _post(clients[name], table, response)[1]
                if size <= BURST_MAX_BODY:  # "hot" does not involve the format: "stored" only
                    latency, rate = asyncio.run(_bursts(server.url, table, response, repeats))
                    row = _row(name, table, response, "stored", BURST, latency, size)
                    rows.append({**row, "rate": rate})
            tick()
    return rows


def _take_turns(
    servers: dict[str, Server],
    clients: dict[str, httpx.Client],
    table: str,
    response: str,
    mode: str,
    repeats: int,
) -> dict[str, list[float]]:
    same = _request(table, response, salt=False)
    runs: dict[str, list[float]] = {name: [] for name in servers}
    for turn in range(repeats + (mode != "first")):  # one warm-up, except for first hits
        for name in _rotated(list(servers), turn):
            if mode == "first":
                _clear_bodies(servers[name].cache_dir)
            elapsed = _post(clients[name], table, response, same if mode == "hot" else None)[0]
            if mode == "first" or turn > 0:
                runs[name].append(elapsed)
    return runs


def _rotated(names: list[str], turn: int) -> list[str]:
    """Each turn starts with another server, so none is always first after a pause."""
    shift = turn % max(len(names), 1)
    return names[shift:] + names[:shift]


def _row(
    name: str, table: str, response: str, mode: str, concurrency: int, stats: Stats, size: int
) -> dict[str, Any]:
    return {
        "format": name,
        "shape": table,
        "response": response,
        "mode": mode,
        "concurrency": concurrency,
        "latency": stats.as_dict(),
        "body_bytes": size,
    }


def _request(table: str, response: str, salt: bool = True) -> bytes:
    body = orjson.dumps({"table": table, "format": response})
    return body + b" " * next(_salt) if salt else body


def _post(
    http: httpx.Client,
    table: str,
    response: str,
    body: bytes | None = None,
    expect: str | None = _HIT,
) -> tuple[float, int]:
    content = _request(table, response) if body is None else body
    started = time.perf_counter()
    with http.stream(
        "POST", "/query", content=content, headers={"Content-Type": "application/json"}
    ) as reply:
        size = sum(len(chunk) for chunk in reply.iter_raw(1 << 20))
    elapsed = time.perf_counter() - started
    _check(reply, expect)
    return elapsed, size


def _check(reply: httpx.Response, expect: str | None) -> None:
    if reply.status_code != 200:
        raise RuntimeError(f"status {reply.status_code}: {reply.read()[:200]!r}")
    status = reply.headers.get("cache-status")
    if expect is not None and status != expect:
        raise RuntimeError(f"expected Cache-Status {expect!r}, got {status!r}")


async def _bursts(
    url: str, table: str, response: str, repeats: int
) -> tuple[Stats, dict[str, Any]]:
    """Latency of every request, and requests per second of each burst, after one warm-up."""
    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)
    headers = {"Accept-Encoding": "identity", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits, headers=headers) as http:

        async def one() -> float:
            started = time.perf_counter()
            content = _request(table, response)
            async with http.stream("POST", "/query", content=content) as reply:
                async for _ in reply.aiter_raw(1 << 20):
                    pass
            _check(reply, _HIT)
            return time.perf_counter() - started

        latencies: list[float] = []
        rates: list[float] = []
        for burst in range(repeats + 1):
            started = time.perf_counter()
            times = await asyncio.gather(*(one() for _ in range(BURST)))
            if burst > 0:
                latencies += times
                rates.append(BURST / (time.perf_counter() - started))
    return Stats.of(latencies), Stats.of(rates).as_dict()


def _clear_bodies(cache_dir: Path) -> None:
    for path in (cache_dir / "bodies").rglob("*"):
        if path.is_file():
            path.unlink()
