"""Cache-hit throughput, side by side in one run (issue 3's performance section).

For each body (the sample table as JSON, also asked with an API key and with an embed token,
the token also from another origin as an embedded dashboard asks, to a server with CORS;
100k lineitem rows as JSON, Arrow and zstd JSON) it measures with wrk on loopback, server and
load generator sharing the machine's cores:
- livedata answering POST /query from its cache (default settings, audit log on; the
  authenticated cases from a second server given an access file);
- a minimal Starlette app under uvicorn answering the same POST with the same bytes from memory;
  and, as a diagnostic, the same app sending livedata's response headers as well (validators,
  cache status, security headers: ~15 fields, each of which uvicorn checks and writes in
  Python);
- nginx (Debian package) serving the same bytes as a static file (GET);
and reports each as a ratio: the median over interleaved rounds (5 of 4 s; `--quick`: 2 of
1 s), with its range. Beside req/s, each server's CPU time per request (user + system of its
processes, from /proc): wrk and the servers share two cores, so req/s follows whatever else
the machine does, while CPU per request hardly does; its ratio (``cpu_vs_...``, the
baseline's CPU per request over livedata's) is the throughput ratio each would reach with a
core of its own. Run: `.venv/bin/python bench/cache_hits.py [--quick]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import httpx
import jwt
import psutil
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import load
from livedata.auth.keys import new_key
from load import cpu_seconds, free_port, process, tree

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
SAMPLE = {"table": "world_country_list"}
# Which credential a case sends: an authenticated case goes to the server with an access file.
CREDENTIALS = {
    "sample-json-api-key": "api_key",
    "sample-json-embed-token": "token",
    "sample-json-embed-token-cross-origin": "token",
}
# The server with an access file allows this origin (LIVEDATA_CORS_ORIGINS), as a deployment
# serving embedded dashboards does; the cross-origin case sends it, as their pages do.
DASHBOARD_ORIGIN = "https://dashboard.example"
GETS = {"sample-json-get"}  # cases sent as GET with the request in the URL, to both servers
AUDIT_OFF = {"sample-json-audit-off"}  # cases sent to a server with LIVEDATA_AUDIT_LOG=off
CASES = {  # name -> (request body, headers); credentials added at run time
    "sample-json": (SAMPLE, {}),
    "sample-json-api-key": (SAMPLE, {}),
    "sample-json-embed-token": (SAMPLE, {}),
    "sample-json-embed-token-cross-origin": (SAMPLE, {"Origin": DASHBOARD_ORIGIN}),
    "sample-json-get": (SAMPLE, {}),  # GET /query?q=: what the JavaScript client sends
    "sample-json-audit-off": (SAMPLE, {}),  # a diagnostic: what the audit log costs a hit
    "lineitem-100k-json": ({"table": "tpch_lineitem", "limit": 100_000}, {}),
    "lineitem-100k-arrow": ({"table": "tpch_lineitem", "limit": 100_000, "format": "arrow"}, {}),
    "lineitem-100k-json-zstd": (
        {"table": "tpch_lineitem", "limit": 100_000},
        {"Accept-Encoding": "zstd"},
    ),
}
MINIMAL_APP = """
import json, os
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
BODY = open(os.environ["BODY_FILE"], "rb").read()
HEADERS = [(k.encode(), v.encode()) for k, v in json.load(open(os.environ["HEADERS_FILE"]))]
async def query(request):
    await request.body()
    return Response(BODY, media_type="application/json")
async def same(request):  # livedata's response headers too: what the server's writing costs
    await request.body()
    response = Response(BODY, media_type="application/json")
    response.raw_headers += HEADERS
    return response
app = Starlette(routes=[
    Route("/query", query, methods=["GET", "POST"]), Route("/same", same, methods=["GET", "POST"])
])
"""
# Headers the floor's own Response (or its server) writes; the rest of livedata's are copied.
RATIOS = {"vs_starlette": "starlette", "vs_same_headers": "starlette_same_headers",
          "vs_nginx": "nginx"}  # fmt: skip
CPU = "_cpu_ms"  # a server's key with this suffix: its CPU milliseconds per request
_FLOOR_WRITES = {"content-length", "content-type", "date", "server", "transfer-encoding"}


def access_file(work: Path) -> dict[str, str]:
    """An access file with one API key and one RS256 token key (what an embedding backend
    uses); returns the credential of each kind as an Authorization header value."""
    key, stored = new_key("bench")
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (work / "rs.pub").write_bytes(public)
    grant = 'queries = ["*"]\ntables = ["*"]\n'
    (work / "access.toml").write_text(
        f'[api_keys.bench]\nhash = "{stored}"\n{grant}'
        f'[tokens]\naudience = "bench"\n[tokens.keys.rs]\nalgorithm = "RS256"\n'
        f'public_key = "rs.pub"\n[tokens.keys.rs.ceiling]\n{grant}'
    )
    now = int(time.time())
    claims = {"sub": "dashboard", "aud": "bench", "iat": now, "exp": now + 3600, "tables": ["*"]}
    token = jwt.encode(claims, private, algorithm="RS256", headers={"kid": "rs"})
    return {"api_key": f"Bearer {key}", "token": f"Bearer {token}"}


def measured(
    url: str,
    seconds: int,
    connections: int,
    body: dict[str, object] | None,
    headers: dict[str, str],
    processes: list[psutil.Process],
) -> tuple[float, float]:
    """Requests per second, and the CPU milliseconds per request of ``processes`` (the
    server's); POST with ``body`` when given, else GET."""
    before = cpu_seconds(processes)
    run = load.wrk(url, seconds, connections, body, headers)
    return run.rate, (cpu_seconds(processes) - before) * 1000 / run.requests


def in_url(body: dict[str, object]) -> str:
    """``/query?q=``, the body as the JavaScript client writes it: canonical JSON."""
    canonical = json.dumps(body, separators=(",", ":"), sort_keys=True)
    return f"/query?q={urllib.parse.quote(canonical, safe='')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="2-second runs, results in bench/results/tmp/"
    )
    args = parser.parse_args()
    # Interleaved rounds, medians: one pair of runs swung 0.55x-0.83x on this machine.
    seconds, repeats = (1, 2) if args.quick else (4, 5)
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install -y wrk nginx-light")
    load_average = os.getloadavg()[0]
    busy = " (above 1: others compete for the cores; ratios are noisy)" if load_average > 1 else ""
    print(f"load average {load_average:.2f}{busy}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="livedata-hits-"))
    port, auth_port, quiet_port, minimal_port, nginx_port = (free_port() for _ in range(5))
    results: dict[str, dict[str, float]] = {}
    credentials = access_file(work)
    cases = {
        name: (body, {**headers, "Authorization": credentials[CREDENTIALS[name]]})
        if name in CREDENTIALS
        else (body, headers)
        for name, (body, headers) in CASES.items()
    }
    ports = {**dict.fromkeys(CREDENTIALS, auth_port), **dict.fromkeys(AUDIT_OFF, quiet_port)}
    bases = {name: f"http://127.0.0.1:{ports.get(name, port)}" for name in cases}
    env = {"LIVEDATA_CACHE_DIR": str(work / "cache"), "LIVEDATA_CACHE_TTL": "3600"}
    auth_env = {
        **env,
        "LIVEDATA_AUTH_FILE": str(work / "access.toml"),
        "LIVEDATA_CORS_ORIGINS": DASHBOARD_ORIGIN,
    }
    serve = [str(BIN / "livedata"), "serve", "--port"]
    with (
        process([*serve, str(port)], "Uvicorn running", env) as plain,
        process([*serve, str(auth_port)], "Uvicorn running", auth_env) as authenticated,
        process(
            [*serve, str(quiet_port)], "Uvicorn running", {**env, "LIVEDATA_AUDIT_LOG": "off"}
        ) as quiet,
    ):
        by_port = {port: plain, auth_port: authenticated, quiet_port: quiet}
        static = work / "static"
        static.mkdir()
        for name, (body, headers) in cases.items():
            for _ in range(3):  # miss, then hits that warm the memory fast path
                response = httpx.request(
                    "GET" if name in GETS else "POST",
                    f"{bases[name]}{in_url(body)}" if name in GETS else f"{bases[name]}/query",
                    json=None if name in GETS else body,
                    headers={
                        **headers,
                        "Accept-Encoding": headers.get("Accept-Encoding", "identity"),
                    },
                    timeout=120,
                )
            raw = (
                response.content
                if "Content-Encoding" not in headers
                else httpx.post(f"{bases[name]}/query", json=body, headers=headers).read()
            )
            (static / name).write_bytes(raw)
            copied = [(k, v) for k, v in response.headers.items() if k not in _FLOOR_WRITES]
            (static / f"{name}.headers").write_text(json.dumps(copied))
            print(f"{name}: {len(raw)} bytes, {response.headers['cache-status']}", flush=True)
        (work / "minimal.py").write_text(MINIMAL_APP)
        conf = work / "nginx.conf"
        conf.write_text(
            f"user root; worker_processes 1; pid {work}/nginx.pid; error_log {work}/error.log;\n"
            "events { worker_connections 1024; }\n"
            f"http {{ access_log off; sendfile on; server {{ listen 127.0.0.1:{nginx_port};"
            f" root {static}; }} }}\n"
        )
        subprocess.run(["nginx", "-c", str(conf)], check=True)
        nginx = tree(int((work / "nginx.pid").read_text()))
        try:
            for name, (body, headers) in cases.items():
                (work / "body").write_bytes((static / name).read_bytes())
                shutil.copy(static / f"{name}.headers", work / "headers.json")
                with process(
                    [
                        str(BIN / "uvicorn"),
                        "minimal:app",
                        "--app-dir",
                        str(work),
                        "--port",
                        str(minimal_port),
                        "--log-level",
                        "info",
                        "--no-access-log",
                    ],
                    "Uvicorn running",
                    {"BODY_FILE": str(work / "body"), "HEADERS_FILE": str(work / "headers.json")},
                ) as minimal:
                    path, sent = (in_url(body), None) if name in GETS else ("/query", body)
                    floor = f"http://127.0.0.1:{minimal_port}"
                    servers = {
                        "livedata": (
                            f"{bases[name]}{path}",
                            sent,
                            headers,
                            by_port[ports.get(name, port)],
                        ),
                        "starlette": (f"{floor}{path}", sent, headers, minimal),
                        "starlette_same_headers": (
                            f"{floor}{path.replace('/query', '/same', 1)}",
                            sent,
                            headers,
                            minimal,
                        ),
                        "nginx": (f"http://127.0.0.1:{nginx_port}/{name}", None, {}, nginx),
                    }
                    rounds = []
                    for _ in range(repeats):
                        one: dict[str, float] = {}
                        for k, (url, b, h, processes) in servers.items():
                            one[k], one[k + CPU] = measured(url, seconds, 32, b, h, processes)
                        rounds.append(one)
                row = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
                for ratio, baseline in RATIOS.items():  # the median of each round's ratio
                    for key, ratios in (
                        (ratio, [r["livedata"] / r[baseline] for r in rounds]),
                        (f"cpu_{ratio}", [r[baseline + CPU] / r["livedata" + CPU] for r in rounds]),
                    ):
                        row[key] = statistics.median(ratios)
                        row[f"{key}_min"], row[f"{key}_max"] = min(ratios), max(ratios)
                results[name] = row
                print(name, {k: round(v, 2) for k, v in row.items()}, flush=True)
        finally:
            subprocess.run(["nginx", "-c", str(conf), "-s", "stop"], check=False)
    folder = RESULTS / "tmp" if args.quick else RESULTS  # a smoke run keeps the full results
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "cache_hits.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": "cache_hits",
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
                "load_average": load_average,
                "settings": {
                    "seconds": seconds,
                    "rounds": repeats,
                    "connections": 32,
                    "wrk_threads": 1,
                },
                "requests_per_second": results,
            },
            indent=2,
        )
    )
    plot(results, load_average, folder / "cache_hits.png")
    print(f"wrote {out} and {folder / 'cache_hits.png'}")


def plot(results: dict[str, dict[str, float]], load_average: float, path: Path) -> None:
    """livedata's throughput as a ratio of each baseline's, per case (1 = as fast)."""
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    axes = figure.subplots()
    baselines = {
        "vs_starlette": "bare Starlette floor (req/s)",
        "cpu_vs_starlette": "bare Starlette floor (CPU per request)",
        "vs_same_headers": "floor sending livedata's headers (req/s)",
        "vs_nginx": "nginx static file (req/s)",
    }
    names, width = list(results), 0.2
    for i, (key, label) in enumerate(baselines.items()):
        positions = [n + (i - 1.5) * width for n in range(len(names))]
        medians = [results[n][key] for n in names]
        lows = [results[n][f"{key}_min"] for n in names]
        highs = [results[n][f"{key}_max"] for n in names]
        spread = [[m - lo for m, lo in zip(medians, lows, strict=True)],
                  [hi - m for m, hi in zip(medians, highs, strict=True)]]  # fmt: skip
        axes.barh(positions, medians, width, xerr=spread, capsize=2, label=label)
    axes.axvline(1.0, color="black", linewidth=0.8)
    axes.set_yticks(range(len(names)), names)
    axes.invert_yaxis()
    axes.set_xlabel(
        "livedata req/s / baseline req/s, or baseline CPU / livedata CPU per request "
        "(wrk -c32; median of interleaved rounds)"
    )
    axes.set_title(f"Cache hits, side by side in one run (load average {load_average:.2f} before)")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
