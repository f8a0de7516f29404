"""uvicorn or granian under livedata: cache hits and uncached requests, each server with the
bare Starlette floor under it, side by side in one run (issue 15: "keep what is faster, with
the floor app measured under the same server for an honest ratio").

Servers, all one process (``livedata serve``'s default), on loopback, wrk sharing the cores:
- livedata answering the sample table from memory (default settings, audit log on);
- livedata answering it uncached (``LIVEDATA_CACHE_TTL=0``: a DuckDB query per request);
- the floor of ``cache_hits.py`` (a bare Starlette app sending the same bytes);
each under uvicorn (as ``livedata serve`` runs it: httptools, uvloop) and under granian
(``--interface asgi``, its defaults). Interleaved rounds (5 of 4 s; ``--quick``: 2 of 1 s),
medians with their range. Run: `.venv/bin/python bench/servers.py [--quick]`; writes
``results/servers.json`` and ``results/servers.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cache_hits import BIN, MINIMAL_APP, RESULTS, SAMPLE
from load import free_port, process, wrk

SERVERS = ("uvicorn", "granian")
APPS = ("livedata hit", "floor", "livedata uncached")


def command(server: str, app: str, port: int, work: Path) -> tuple[list[str], str]:
    """The command that serves ``app`` under ``server``, and the line it logs when ready."""
    target = "minimal:app" if app == "floor" else "livedata.web.app:create_app"
    extra = [] if app == "floor" else ["--factory"]
    if server == "uvicorn":
        return [str(BIN / "uvicorn"), target, *extra, "--app-dir", str(work), "--port",
                str(port), "--log-level", "info", "--no-access-log", "--no-server-header"
                ], "Uvicorn running"  # fmt: skip
    # granian logs to stdout; process() waits for the ready line on stderr.
    return ["sh", "-c", 'exec "$0" "$@" 1>&2', str(BIN / "granian"), "--interface", "asgi",
            *extra, "--working-dir", str(work), "--port", str(port), "--log-level", "info",
            target], "Started worker-1"  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 1 s, to results/tmp/")
    args = parser.parse_args()
    seconds, repeats = (1, 2) if args.quick else (4, 5)
    load_average = os.getloadavg()[0]
    print(f"load average {load_average:.2f}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="livedata-servers-"))
    (work / "minimal.py").write_text(MINIMAL_APP)
    (work / "headers.json").write_text("[]")
    env = {"LIVEDATA_CACHE_DIR": str(work / "cache"), "LIVEDATA_CACHE_TTL": "3600",
           "BODY_FILE": str(work / "body"), "HEADERS_FILE": str(work / "headers.json")}  # fmt: skip
    uncached = {**env, "LIVEDATA_CACHE_TTL": "0", "LIVEDATA_CACHE_DIR": str(work / "uncached")}
    with ExitStack() as stack:
        urls: dict[tuple[str, str], str] = {}
        for server in SERVERS:
            for app in APPS:
                port = free_port()
                if app == "floor" and not (work / "body").exists():
                    answer = httpx.post(f"{urls[('uvicorn', 'livedata hit')]}", json=SAMPLE)
                    (work / "body").write_bytes(answer.content)
                argv, ready = command(server, app, port, work)
                stack.enter_context(process(argv, ready, uncached if "uncached" in app else env))
                urls[server, app] = f"http://127.0.0.1:{port}/query"
                for _ in range(3):  # a miss, then hits that warm the memory fast path
                    assert httpx.post(urls[server, app], json=SAMPLE).status_code == 200
        rounds = []
        for done in range(repeats):
            rounds.append(
                {key: wrk(url, seconds, 32, SAMPLE, {}).rate for key, url in urls.items()}
            )
            print(f"round {done + 1}/{repeats}", flush=True)
    summary = {f"{app}, {s}": _spread([r[s, app] for r in rounds]) for app in APPS for s in SERVERS}
    ratios = {
        f"livedata hit / floor, {s}": [r[s, "livedata hit"] / r[s, "floor"] for r in rounds]
        for s in SERVERS
    } | {
        f"{app}: granian / uvicorn": [r["granian", app] / r["uvicorn", app] for r in rounds]
        for app in APPS
    }
    ratio_summary = {k: _spread(v) for k, v in ratios.items()}
    for name, values in {**summary, **ratio_summary}.items():
        print(f"{name:40} {values['median']:>10.2f}  ({values['min']:.2f}-{values['max']:.2f})")
    folder = RESULTS / "tmp" if args.quick else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "servers",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average": load_average,
        "settings": {"seconds": seconds, "rounds": repeats, "connections": 32, "wrk_threads": 1},
        "requests_per_second": summary,
        "ratios": ratio_summary,
    }
    (folder / "servers.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(summary, ratio_summary, folder / "servers.png")
    print(f"wrote {folder / 'servers.json'} and {folder / 'servers.png'}")


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def plot(summary: dict[str, dict[str, float]], ratios: dict[str, dict[str, float]],
         path: Path) -> None:  # fmt: skip
    figure = Figure(figsize=(10, 4.5), layout="constrained")
    left, right = figure.subplots(1, 2)
    for axes, data, label in ((left, summary, "req/s"), (right, ratios, "ratio")):
        names = list(data)
        medians = [data[n]["median"] for n in names]
        spread = [[m - data[n]["min"] for m, n in zip(medians, names, strict=True)],
                  [data[n]["max"] - m for m, n in zip(medians, names, strict=True)]]  # fmt: skip
        axes.barh(names, medians, xerr=spread, capsize=3)
        axes.invert_yaxis()
        axes.set_xlabel(f"{label} (median of interleaved rounds, min to max)")
    right.axvline(1.0, color="black", linewidth=0.8)
    figure.suptitle("The sample table under uvicorn and granian, wrk -c32")
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
