"""Many nodes, one source query: what the shared tier and Redis buy, measured in one run.

1. Source executions per key per TTL window: 1 node, 3 nodes with each its own cache, 3 nodes
   sharing Redis and object storage (goal: 1, 3, 1). PostgreSQL counts the executions
   (pg_stat_statements), 60 concurrent requests per key spread over the nodes.
2. Latency of a miss (node 1), a shared-tier hit (node 2, cold: it had no copy) and a local
   disk hit (node 2 again, past the memory fast path), for the sample table and 100k
   lineitem rows, JSON and Arrow; medians of interleaved repeats.
3. Hit throughput of one node with the shared tier on against off (wrk, interleaved pairs,
   median of the ratios): a local hit touches neither Redis nor object storage (goal >= 0.95).

Needs PostgreSQL as the tests use it (with pg_stat_statements, see .ci/run), wrk, Redis's
`redis-server` and the dev extra's SeaweedFS. Run `.venv/bin/python bench/cluster.py`
(`--quick`: fewer keys and repeats, 3-second wrk runs, results in bench/results/tmp/).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as adbc_pg
import httpx
import psutil
import psycopg
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from obstore.store import S3Store

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the tests' launchers of SeaweedFS, Redis and servers
from tests.cache.conftest import CliServer  # noqa: E402
from tests.cluster.conftest import RedisServer, SeaweedFS  # noqa: E402
from tests.cluster.test_shared_objects import bucket, uploaded  # noqa: E402

from livedata.sample.load import load_sample  # noqa: E402
from load import wrk  # noqa: E402
from service_overhead import (  # noqa: E402
    QUICK,
    SOURCE,
    ensure_lineitem,
    lineitem_parquet,
    machine,
)

DSN = f"host={SOURCE.host} port={SOURCE.port} dbname={SOURCE.database} user={SOURCE.user}"
MARKER = "cluster_bench"
CONCURRENT = 60


def catalog(folder: Path, lineitem: str) -> Path:
    path = folder / "catalog.toml"
    sql = (
        f"WITH {MARKER} AS (SELECT alpha_3, name, population FROM world_country_list"
        " WHERE population >= :at_least AND (SELECT count(*) FROM pg_sleep(0.2)) = 1)"
        f" SELECT * FROM {MARKER} ORDER BY alpha_3"
    )
    path.write_text(
        '[sources.pg]\nkind = "postgres"\ndatabase = "test"\nmax_rows = 2000000\n'
        "max_queued_queries = 1000\n\n"
        '[tables.world_country_list]\nsource = "pg"\n\n'
        f'[tables.lineitem]\nsource = "pg"\ntable = "{lineitem}"\n\n'
        f'[queries.slow]\nsource = "pg"\nttl = 600\nsql = "{sql}"\n'
        '[queries.slow.params.at_least]\ntype = "int"\n'
    )
    return path


@contextlib.contextmanager
def nodes(count: int, folder: Path, env: dict[str, str]) -> Iterator[list[CliServer]]:
    started = [
        CliServer(folder / f"node-{i}-{time.monotonic_ns()}", [], 1, env) for i in range(count)
    ]
    try:
        for node in started:
            node.wait_ready()
        yield started
    finally:
        for node in started:
            node.kill()


def executions(db: psycopg.Connection[Any]) -> int:
    row = db.execute(
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE %s",
        (f"%{MARKER}%",),
    ).fetchone()
    assert row is not None
    return int(row[0])


def spread(urls: list[str], body: dict[str, Any], count: int) -> None:
    async def send() -> None:
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=count)) as c:
            answers = await asyncio.gather(
                *(
                    c.post(f"{u}/query", json=body)
                    for u in itertools.islice(itertools.cycle(urls), count)
                )
            )
        assert {a.status_code for a in answers} == {200}, {a.status_code for a in answers}

    asyncio.run(send())


def per_key(urls: list[str], keys: int, db: psycopg.Connection[Any], offset: int) -> float:
    """Source executions per key when ``CONCURRENT`` identical requests per key arrive at once."""
    before = executions(db)
    for key in range(keys):
        spread(urls, {"query": "slow", "params": {"at_least": offset + key}}, CONCURRENT)
    time.sleep(0.5)  # pg_stat_statements records an execution when its transaction ends
    return (executions(db) - before) / keys


def timed(client: httpx.Client, body: dict[str, Any], **headers: str) -> tuple[float, str]:
    """One request on a warm keep-alive connection (a new client per request measured mostly
    httpx's own set-up: ~50 ms whatever the answer)."""
    started = time.perf_counter()
    response = client.post("/query", json=body, headers={"Accept-Encoding": "identity", **headers})
    if response.status_code != 200:
        raise RuntimeError(f"{client.base_url}: {response.status_code} {response.text}")
    return (time.perf_counter() - started) * 1000, response.headers["cache-status"]


def latencies(urls: list[str], repeats: int, objects: S3Store) -> dict[str, dict[str, float]]:
    """Miss on node 1, then (its object uploaded, which follows its response) a shared hit
    on node 2, then a local hit there, per case and repeat."""
    cases = {
        "sample JSON": ({"table": "world_country_list"}, 249),
        "sample Arrow": ({"table": "world_country_list", "format": "arrow"}, 249),
        "100k lineitem JSON": ({"table": "lineitem"}, 100_000),
        "100k lineitem Arrow": ({"table": "lineitem", "format": "arrow"}, 100_000),
    }
    first, second = (httpx.Client(base_url=url, timeout=120) for url in urls[:2])
    for client in (first, second):
        client.get("/health")  # the connection made before anything is timed
    result = {}
    for index, (name, (body, rows)) in enumerate(cases.items()):
        samples: dict[str, list[float]] = {"miss": [], "shared hit": [], "local hit": []}
        for repeat in range(repeats):  # a new key each time: a limit just under the rows
            keyed = {**body, "limit": rows - 1 - repeat - 10 * index}
            uploaded_before = len(uploaded(objects, 0))
            for what, client, extra, expect in (
                ("miss", first, {}, "fwd=miss"),
                ("shared hit", second, {}, "detail=shared"),
                ("local hit", second, {"If-None-Match": '"past-the-fast-path"'}, "livedata; hit"),
            ):
                ms, status = timed(client, keyed, **extra)
                assert expect in status, (what, status)
                samples[what].append(ms)
                if what == "miss":
                    uploaded(objects, uploaded_before + 1)
        result[name] = {what: statistics.median(values) for what, values in samples.items()}
        print(name, {k: round(v, 1) for k, v in result[name].items()}, flush=True)
    first.close()
    second.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    keys, repeats, seconds, pairs = (3, 3, 3, 1) if args.quick else (10, 7, 10, 3)
    out: Path = args.out or (HERE / "results" / ("tmp" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    host = machine()
    started_at = dt.datetime.now(dt.UTC)
    work = Path(tempfile.mkdtemp(prefix="livedata-cluster-"))
    uri = f"postgresql://{SOURCE.user}@{SOURCE.host}:{SOURCE.port}/{SOURCE.database}"
    with adbc_pg.connect(uri, autocommit=True) as adbc:
        load_sample("bench", SOURCE)
        ensure_lineitem(adbc, QUICK.lineitem_table, lineitem_parquet(QUICK.scale))
    path = catalog(work, QUICK.lineitem_table)
    store, redis_server = SeaweedFS(work / "s3"), RedisServer(work)
    store.start()
    redis_server.start()
    report: dict[str, Any] = {
        "benchmark": "cluster",
        "started": started_at.isoformat(timespec="seconds"),
        "machine": host,
    }
    try:
        base = {"LIVEDATA_CATALOG": str(path), "LIVEDATA_AUDIT_LOG": "off"}
        cluster_env = {**base, **store.env("bench"), "LIVEDATA_REDIS_URL": redis_server.url}
        with psycopg.connect(DSN, autocommit=True) as db:
            runs = {}
            for name, count, env in (
                ("1 node", 1, base),
                ("3 nodes, own caches", 3, base),
                ("3 nodes, shared tier + Redis", 3, cluster_env),
            ):
                with nodes(count, work, env) as started:
                    runs[name] = per_key([n.url for n in started], keys, db, 1000 * len(runs))
                print(name, "executions per key:", runs[name], flush=True)
        report["executions_per_key"] = runs
        with nodes(3, work, cluster_env) as started:
            report["latency_ms"] = latencies(
                [n.url for n in started], repeats, bucket(store, "bench")
            )
        ratios = []
        body = {"table": "world_country_list"}
        for _ in range(pairs):
            rates = {}
            for name, env in (("off", base), ("on", cluster_env)):
                with nodes(1, work, env) as (node,):
                    for _ in range(3):
                        httpx.post(f"{node.url}/query", json=body, timeout=120)
                    rates[name] = wrk(f"{node.url}/query", seconds, 32, body, {}).rate
            ratios.append(rates["on"] / rates["off"])
            print("hits/s", rates, flush=True)
        report["hit_throughput_on_over_off"] = {
            "ratios": ratios,
            "median": statistics.median(ratios),
        }
    finally:
        redis_server.stop()
        store.stop()
    host["load_average_at_end"] = [round(x, 2) for x in psutil.getloadavg()]
    (out / "cluster.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, out / "cluster.png")
    print(f"wrote {out / 'cluster.json'} and {out / 'cluster.png'}")


def plot(report: dict[str, Any], path: Path) -> None:
    figure = Figure(figsize=(13, 4.8), layout="constrained")
    runs, times = figure.subplots(1, 2)
    names = list(report["executions_per_key"])
    runs.bar(names, [report["executions_per_key"][n] for n in names], color="tab:orange")
    runs.set_ylabel("source executions per key")
    runs.set_title(f"{CONCURRENT} concurrent requests per key")
    runs.tick_params(axis="x", labelsize=8)
    cases = list(report["latency_ms"])
    kinds = ["miss", "shared hit", "local hit"]
    for i, kind in enumerate(kinds):
        heights = [report["latency_ms"][c][kind] for c in cases]
        times.bar([c + i * 0.27 for c in range(len(cases))], heights, width=0.27, label=kind)
    times.set_xticks([c + 0.27 for c in range(len(cases))], cases, fontsize=8)
    times.set_yscale("log")
    times.set_ylabel("ms, median")
    times.legend()
    ratio = report["hit_throughput_on_over_off"]["median"]
    figure.suptitle(
        f"livedata cluster: one query per key; hit throughput with the shared tier on/off "
        f"{ratio:.2f}x (load {report['machine']['load_average_at_start'][0]:.2f} at start)"
    )
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
