"""A small uncached request against the endpoint a user would write instead (issue 15, goal 2).

``{"table": "world_country_list"}`` (249 rows, ~30 KB of JSON) from PostgreSQL with caching
off, 16 connections at once, answered by ``livedata serve`` and by ``bench/peer_fastapi.py``
(FastAPI + a psycopg async pool + ``orjson.dumps``), each under uvicorn with the same
settings (uvicorn's defaults as ``livedata serve`` leaves them: uvloop, httptools, no access
log, no server header). wrk sends the requests; rounds alternate between the servers.

Throughput on a shared 2-core machine moves with whatever else runs, so the figure compared is
the server process's CPU time (user + system, from /proc) per request: it is what bounds
throughput once the cores are busy, and it hardly moves with the load. The PostgreSQL backends'
CPU per request is reported beside it, and req/s for information. The ratio is
peer CPU per request / livedata CPU per request: above 1, livedata needs less CPU per answer.

Run ``.venv/bin/python bench/small_miss.py`` (``--quick`` for a smoke run); it writes
``bench/results/small_miss.{json,png}`` (``--quick``: ``bench/results/tmp/``). See
bench/README.md.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

import load
import runner
from livedata.connectors.postgres import PostgresSource
from livedata.sample.load import load_sample
from load import cpu_seconds

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
DATABASE = "bench_small_miss"  # its own, so loading the sample disturbs no test's tables
SOURCE = PostgresSource(kind="postgres", host="127.0.0.1", database=DATABASE)
URI = f"postgresql://{SOURCE.user}@{SOURCE.host}:{SOURCE.port}/{DATABASE}"
BODY = {"table": "world_country_list"}
CONNECTIONS = 16
READY = re.compile(r"Uvicorn running on http://[^\s:]+:(\d+)")
CATALOG = f"""
[sources.pg]
kind = "postgres"
host = "{SOURCE.host}"
port = {SOURCE.port}
database = "{DATABASE}"

[tables.world_country_list]
source = "pg"
"""


@dataclass(frozen=True)
class Plan:
    seconds: int  # of each wrk run
    rounds: int  # measured runs of each server, alternating
    out: Path


FULL = Plan(10, 5, HERE / "results")
QUICK = Plan(2, 2, HERE / "results" / "tmp")


@dataclass(frozen=True)
class Server:
    name: str
    command: list[str]
    env: dict[str, str]


def servers(work: Path) -> list[Server]:
    """Both under uvicorn's defaults, as ``livedata serve`` runs it (commands/serve.py)."""
    (work / "catalog.toml").write_text(CATALOG)
    peer = [str(BIN / "uvicorn"), "--app-dir", str(HERE), "peer_fastapi:create_app",
            "--factory", "--port", "0", "--no-access-log", "--no-server-header"]  # fmt: skip
    livedata = [str(BIN / "livedata"), "serve", "--port", "0"]
    return [
        Server("peer", peer, {"PEER_POSTGRES_URI": URI}),
        Server(
            "livedata",
            livedata,
            {"LIVEDATA_CATALOG": str(work / "catalog.toml"), "LIVEDATA_CACHE_TTL": "0"},
        ),
    ]


@contextmanager
def started(server: Server) -> Iterator[tuple[str, psutil.Process]]:
    """The server's base URL and process, once it listens (read from its log, no sleeps)."""
    with subprocess.Popen(
        server.command, stderr=subprocess.PIPE, text=True, env={**os.environ, **server.env}
    ) as process:
        assert process.stderr is not None
        port = None
        for line in process.stderr:
            if match := READY.search(line):
                port = match.group(1)
                break
        if port is None:
            process.wait(30)
            raise RuntimeError(f"{server.name} did not start (exit {process.returncode})")
        # Keep reading its log: a full pipe would block the server mid-run.
        threading.Thread(target=process.stderr.read, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{port}", psutil.Process(process.pid)
        finally:
            process.terminate()
            process.wait(30)


def prepare_database() -> None:
    with psycopg.connect(f"postgresql://{SOURCE.user}@{SOURCE.host}:{SOURCE.port}/postgres",
                         autocommit=True) as conn:  # fmt: skip
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    load_sample("pg", SOURCE)


def backends() -> list[psutil.Process]:
    """The PostgreSQL backends serving the benchmark's database (the servers' connections)."""
    with psycopg.connect(URI, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (DATABASE,),
        ).fetchall()
    found = []
    for (pid,) in rows:
        try:
            found.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    return found


def wrk(url: str, seconds: int) -> load.Run:
    """One wrk run at CONNECTIONS connections; on error answers, what the server says now."""
    try:
        return load.wrk(f"{url}/query", seconds, CONNECTIONS, BODY, {})
    except RuntimeError as exc:
        example = httpx.post(f"{url}/query", json=BODY, timeout=30)  # what the errors said
        raise RuntimeError(f"{exc}\nnow: {example.text[:300]}") from exc


def measure(url: str, process: psutil.Process, seconds: int) -> dict[str, float]:
    database = backends()
    server_before, database_before = cpu_seconds([process]), cpu_seconds(database)
    requests, rate = wrk(url, seconds)
    server_cpu = cpu_seconds([process]) - server_before
    database_cpu = cpu_seconds(database) - database_before
    return {
        "requests": requests,
        "req_per_s": rate,
        "server_cpu_ms_per_request": server_cpu * 1000 / requests,
        "database_cpu_ms_per_request": database_cpu * 1000 / requests,
    }


def check_answer(url: str) -> int:
    response = httpx.post(f"{url}/query", json=BODY, timeout=30)
    response.raise_for_status()
    rows = len(response.json()["rows"])
    assert rows == 249, f"{url} answered {rows} rows"
    return len(response.content)


def run(quick: bool, progress: Progress) -> dict[str, Any]:
    plan = QUICK if quick else FULL
    prepare_database()
    runs: dict[str, list[dict[str, float]]] = {}
    sizes = {}
    with tempfile.TemporaryDirectory(prefix="livedata-small-miss-") as tmp:
        chosen = servers(Path(tmp))
        task = progress.add_task("wrk runs", total=len(chosen) * (plan.rounds + 1))
        with started(chosen[0]) as first, started(chosen[1]) as second:
            live = dict(zip((s.name for s in chosen), (first, second), strict=True))
            for name, (url, _) in live.items():
                sizes[name] = check_answer(url)
                wrk(url, plan.seconds)  # warm-up: connections, prepared statements, caches
                progress.advance(task)
            for _ in range(plan.rounds):
                for name, (url, process) in live.items():
                    runs.setdefault(name, []).append(measure(url, process, plan.seconds))
                    progress.advance(task)
    summary = {name: _summary(measured) for name, measured in runs.items()}
    cpu = "server_cpu_ms_per_request"
    return {
        "quick": quick,
        "request": BODY,
        "connections": CONNECTIONS,
        "seconds_per_run": plan.seconds,
        "body_bytes": sizes,
        "runs": runs,
        "summary": summary,
        "ratio_cpu": summary["peer"][cpu]["median"] / summary["livedata"][cpu]["median"],
        "ratio_req_per_s": (
            summary["livedata"]["req_per_s"]["median"] / summary["peer"]["req_per_s"]["median"]
        ),
    }


def _summary(measured: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {
        key: {
            "median": statistics.median(m[key] for m in measured),
            "min": min(m[key] for m in measured),
            "max": max(m[key] for m in measured),
        }
        for key in ("req_per_s", "server_cpu_ms_per_request", "database_cpu_ms_per_request")
    }


def print_report(console: Console, report: dict[str, Any]) -> None:
    table = Table(title=f"{report['request']} uncached, {report['connections']} connections "
                        "(median, min-max)")  # fmt: skip
    for column in ("server", "server CPU ms/req", "database CPU ms/req", "req/s"):
        table.add_column(column, justify="right" if column != "server" else "left")
    for name, summary in report["summary"].items():
        table.add_row(
            name,
            *(
                f"{s['median']:.3f} ({s['min']:.3f}-{s['max']:.3f})"
                if "cpu" in key
                else f"{s['median']:.0f} ({s['min']:.0f}-{s['max']:.0f})"
                for key, s in (
                    (k, summary[k])
                    for k in (
                        "server_cpu_ms_per_request",
                        "database_cpu_ms_per_request",
                        "req_per_s",
                    )
                )
            ),
        )
    console.print(table)
    console.print(
        f"livedata / peer: {report['ratio_cpu']:.2f}x by server CPU per request (the goal: "
        f">= 1.0), {report['ratio_req_per_s']:.2f}x by req/s (load-sensitive)"
    )


def plot(report: dict[str, Any], path: Path) -> None:
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.subplots()
    names = list(report["summary"])
    cpu = [report["summary"][n]["server_cpu_ms_per_request"] for n in names]
    database = [report["summary"][n]["database_cpu_ms_per_request"] for n in names]
    medians = [c["median"] for c in cpu]
    spread = [[m - c["min"] for m, c in zip(medians, cpu, strict=True)],
              [c["max"] - m for m, c in zip(medians, cpu, strict=True)]]  # fmt: skip
    axes.bar(names, medians, yerr=spread, capsize=4, color=["tab:blue", "tab:orange"],
             label="server process")  # fmt: skip
    axes.bar(names, [d["median"] for d in database], bottom=medians, color="silver",
             label="PostgreSQL backends")  # fmt: skip
    axes.set_ylabel("CPU ms per request (median, min to max)")
    axes.legend()
    axes.set_title(
        f"{report['request']['table']}, uncached, {report['connections']} connections: "
        f"livedata / peer = {report['ratio_cpu']:.2f}x by server CPU"
    )
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100)


def main(argv: Sequence[str] | None = None) -> None:
    description = __doc__.splitlines()[0]
    runner.main("small_miss", description, (QUICK.out, FULL.out), run, plot, print_report, argv)


if __name__ == "__main__":
    main()
