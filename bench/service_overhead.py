"""What the livedata service adds to the fastest raw fetch of the same rows, in one run.

Why: issue 2 promises that an uncached ``POST /query`` (request to last byte of JSON) costs at
most 15 % more than the fastest way to fetch the same rows from PostgreSQL and encode them as
JSON inside one process, and that answering a 1M-row request peaks at no more than 3x the
result's Arrow size in RSS. Both claims are ratios, so both sides are measured here, side by
side and interleaved, in the same run: raw ADBC and psycopg (fetch only, then with JSON) against
the real server started with ``livedata serve``. Two diagnostic rows say where a gap comes
from: livedata's core without HTTP, and an HTTP floor (a bare ASGI app on uvicorn sending the
service's own response bytes from memory to the same client).

Run ``.venv/bin/python bench/service_overhead.py`` (``--quick`` for a smoke run); it writes
``bench/results/service_overhead.{json,png}`` and prints the ratio table. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import itertools
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import adbc_driver_postgresql.dbapi as adbc_pg
import httpx
import orjson
import psutil
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from livedata import sql
from livedata.connectors.postgres import PostgresConnector, PostgresSource
from livedata.encoders.base import BATCH_ROWS, Passing
from livedata.encoders.json import JSONEncoder
from livedata.sample.load import load_sample

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
SOURCE = PostgresSource(
    kind="postgres",
    host="127.0.0.1",
    port=5432,
    database="test",
    user="postgres",
    max_rows=2_000_000,  # above the 1M-row table, so the service answers every row
    statement_timeout=600,
)
SOURCE_NAME = "bench"
SAMPLE_TABLE = "world_country_list"
TARGET_RATIO = 1.15  # issue 2: the service adds at most 15 %
TARGET_RSS = 3.0  # issue 2: peak RSS at most 3x the result's Arrow size
BUSY_LOAD = 1.0  # a load average above this on 2 cores: others compete for the CPUs
STARTUP_TIMEOUT = 60.0  # seconds for a server to listen before it is killed
REQUEST_TIMEOUT = SOURCE.statement_timeout + 60  # seconds; the database gives up first
READY = re.compile(r"Uvicorn running on http://[^\s:]+:(\d+)")
UNCACHED = {"LIVEDATA_CACHE_TTL": "0"}  # every request goes to the database
FLOOR_DIR_ENV = "BENCH_FLOOR_DIR"
FLOOR_CHUNK = 1 << 20  # the floor streams big bodies in 1 MiB chunks, as livedata streams them
ROLE_STYLE = {  # color, hatch, legend
    "fetch": ("tab:cyan", "", "driver fetch only"),
    "baseline": ("tab:blue", "", "baseline: raw driver + JSON in process"),
    "core": ("tab:gray", "//", "diagnostic: livedata without HTTP"),
    "floor": ("silver", "//", "diagnostic: HTTP floor"),
    "service": ("tab:orange", "", "livedata service"),
}

_MONEY = pa.decimal128(15, 2)
LINEITEM = (  # TPC-H types; text for strings, like livedata's own sample loader
    ("l_orderkey", "BIGINT", pa.int64()),
    ("l_partkey", "BIGINT", pa.int64()),
    ("l_suppkey", "BIGINT", pa.int64()),
    ("l_linenumber", "INTEGER", pa.int32()),
    ("l_quantity", "DECIMAL(15, 2)", _MONEY),
    ("l_extendedprice", "DECIMAL(15, 2)", _MONEY),
    ("l_discount", "DECIMAL(15, 2)", _MONEY),
    ("l_tax", "DECIMAL(15, 2)", _MONEY),
    ("l_returnflag", "TEXT", pa.string()),
    ("l_linestatus", "TEXT", pa.string()),
    ("l_shipdate", "DATE", pa.date32()),
    ("l_commitdate", "DATE", pa.date32()),
    ("l_receiptdate", "DATE", pa.date32()),
    ("l_shipinstruct", "TEXT", pa.string()),
    ("l_shipmode", "TEXT", pa.string()),
    ("l_comment", "TEXT", pa.string()),
)
VERSIONS = ("livedata", "adbc-driver-postgresql", "adbc-driver-manager", "psycopg",
            "psycopg-binary", "pyarrow", "orjson", "fastapi", "starlette", "uvicorn", "httpx",
            "tpchgen-cli")  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run, or a ``--quick`` smoke run a test can afford."""

    quick: bool
    scale: float  # TPC-H scale factor of lineitem; 0.17 gives 1,020,116 rows
    lineitem_table: str
    lineitem_repeats: int
    sample_repeats: int
    out: Path


FULL = Plan(False, 0.17, "bench_lineitem_1m", 7, 30, HERE / "results")
QUICK = Plan(True, 0.017, "bench_lineitem_100k", 3, 3, HERE / "results" / "tmp")


@dataclass(frozen=True)
class Dataset:
    name: str
    table: str
    rows: int
    warmup: int  # unmeasured runs of every variant first: connections, caches, hint bits
    repeats: int


@dataclass(frozen=True)
class Variant:
    """One way to answer the same request; ``run`` returns the JSON bytes (or rows) produced."""

    label: str
    role: str  # fetch | baseline (fetch + JSON in process) | core | floor | service (HTTP)
    run: Callable[[], int]


@dataclass(frozen=True)
class Timing:
    label: str
    role: str
    seconds: list[float]
    output: int  # bytes of JSON, or rows for a fetch

    def stats(self) -> dict[str, float]:
        q1, median, q3 = statistics.quantiles(self.seconds, n=4, method="inclusive")
        ms = {"median": median, "q1": q1, "q3": q3, "min": min(self.seconds)}
        ms["max"] = max(self.seconds)
        return {f"{k}_ms": round(v * 1000, 3) for k, v in ms.items()}


@dataclass(frozen=True)
class Server:
    pid: int
    url: str


# Data ---------------------------------------------------------------------------------------


def lineitem_parquet(scale: float) -> Path:
    """TPC-H lineitem at ``scale``, generated once by tpchgen-cli and cached in bench/data/."""
    path = HERE / "data" / f"lineitem-sf{scale:g}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            command = ["parquet", "-s", f"{scale:g}", "-T", "lineitem", "-o", tmp, "--quiet"]
            subprocess.run([str(BIN / "tpchgen-cli"), *command], check=True)
            (Path(tmp) / "lineitem.parquet").rename(path)  # only a complete file is cached
    return path


def ensure_lineitem(conn: adbc_pg.Connection, table: str, parquet: Path) -> int:
    """Load ``parquet`` into ``table`` unless it already holds that many rows; return them."""
    rows: int = pq.ParquetFile(parquet).metadata.num_rows
    with conn.cursor() as cursor:
        cursor.execute("SELECT to_regclass($1) IS NOT NULL", (f'"{table}"',))
        if cursor.fetchone()[0]:
            cursor.execute(f'SELECT count(*) FROM "{table}"')
            if cursor.fetchone()[0] == rows:
                return rows
        schema = pa.schema([(name, arrow) for name, _, arrow in LINEITEM])
        columns = ", ".join(f'"{name}" {kind} NOT NULL' for name, kind, _ in LINEITEM)
        cursor.execute(f'DROP TABLE IF EXISTS "{table}"')
        cursor.execute(f'CREATE TABLE "{table}" ({columns})')
        # Autocommit: a load cut short leaves too few rows, so the next run loads again.
        cursor.adbc_ingest(table, pq.read_table(parquet).cast(schema), mode="append")  # COPY
    return rows


def prepare(plan: Plan, conn: adbc_pg.Connection) -> list[Dataset]:
    sample_rows = load_sample(SOURCE_NAME, SOURCE)[SAMPLE_TABLE]
    lineitem_rows = ensure_lineitem(conn, plan.lineitem_table, lineitem_parquet(plan.scale))
    return [
        Dataset("sample", SAMPLE_TABLE, sample_rows, 5, plan.sample_repeats),
        Dataset("lineitem", plan.lineitem_table, lineitem_rows, 1, plan.lineitem_repeats),
    ]


# In-process paths ---------------------------------------------------------------------------


def statement_for(table: str) -> str:
    """The exact SQL the service sends for ``{"table": table}``, built by livedata itself."""
    options = sql.Options(limit=SOURCE.max_rows + 1)
    statement = sql.select_table(table, None, options, dialect="postgres", style="dollar")
    assert not statement.params
    return statement.text


def adbc_fetch(conn: adbc_pg.Connection, text: str) -> pa.Table:
    with conn.cursor() as cursor:
        cursor.execute(text)
        table: pa.Table = cursor.fetch_arrow_table()
    return table


def without_extensions(table: pa.Table) -> pa.Table:
    """Unwrap the driver's extension columns (zero-copy). NUMERIC is then the exact text
    PostgreSQL sent, which is what the JSON carries for a decimal anyway."""
    columns = [
        pa.chunked_array([c.storage for c in column.chunks], column.type.storage_type)
        if isinstance(column.type, pa.BaseExtensionType)
        else column
        for column in table.columns
    ]
    return pa.Table.from_arrays(columns, names=table.column_names)


def adbc_json(conn: adbc_pg.Connection, text: str) -> int:
    table = without_extensions(adbc_fetch(conn, text))
    return json_bytes(table.to_reader())


def adbc_streamed_json(conn: adbc_pg.Connection, text: str) -> int:
    """Encoding each record batch as the driver delivers it, as livedata does."""
    with conn.cursor() as cursor:
        cursor.execute(text)
        reader = cursor.fetch_record_batch()
        batches = (without_extensions(pa.Table.from_batches([b])).to_batches() for b in reader)
        schema = without_extensions(reader.schema.empty_table()).schema
        return json_bytes(pa.RecordBatchReader.from_batches(schema, itertools.chain(*batches)))


def json_bytes(rows: pa.RecordBatchReader) -> int:
    """Bytes of livedata's JSON body, counted chunk by chunk as a server would send them."""
    count = [0]
    return sum(len(chunk) for chunk in JSONEncoder().encode(rows, lambda: {"rows": count[0]}))


def nested_and_special(rows: int) -> pa.Table:
    """As many rows of the types the JSON encoder converts value by value (issue 10): lists
    of integers past 2^53 and of NaN/infinities, structs holding decimals, json values,
    timestamps with infinities, intervals."""
    ids = pa.array(range(rows), pa.int64())
    pairs = pa.array(range(0, 2 * rows + 1, 2), pa.int32())
    big = pa.ListArray.from_arrays(pairs, pa.array(range(2**60, 2**60 + 2 * rows), pa.int64()))
    special = pa.ListArray.from_arrays(
        pairs,
        pa.array(itertools.islice(itertools.cycle([float("nan"), float("inf"), 1.5]), 2 * rows)),
    )
    money = pa.array((i * 7 % 100_000 for i in range(rows)), pa.int64()).cast(pa.decimal128(21, 2))
    struct = pa.StructArray.from_arrays([money, ids], names=["amount", "id"])
    documents = pa.array((f'{{"id": {i}, "tags": ["a", "b"]}}' for i in range(rows)), pa.string())
    moments = pa.array(
        (2**63 - 1 if i % 10 == 0 else i * 1_000_000 for i in range(rows)),
        pa.timestamp("us", "UTC"),
    )
    intervals = pa.array(
        ((i % 13, -(i % 3), i * 1_000_000) for i in range(rows)), pa.month_day_nano_interval()
    )
    return pa.table(
        {"id": ids, "big": big, "special": special, "struct": struct,
         "doc": pa.ExtensionArray.from_storage(pa.json_(), documents),
         "moment": moments, "interval": intervals}
    )  # fmt: skip


def encode_rates(
    tables: dict[str, pa.Table], repeats: int, progress: Progress
) -> dict[str, dict[str, float]]:
    """The JSON encoder alone on each table, warmed up once, then round-robin; rows per
    second and MB/s of JSON by the median run."""
    task = progress.add_task(
        "JSON encoder: flat vs. nested and special", total=len(tables) * (repeats + 1)
    )
    seconds: dict[str, list[float]] = {name: [] for name in tables}
    size: dict[str, int] = {}
    for round_ in range(repeats + 1):
        for name, table in tables.items():
            started = time.perf_counter()
            size[name] = json_bytes(table.to_reader(max_chunksize=BATCH_ROWS))
            if round_:  # the first round warms up
                seconds[name].append(time.perf_counter() - started)
            progress.advance(task)
    return {
        name: {
            "rows": tables[name].num_rows,
            "json_bytes": size[name],
            "median_ms": round(statistics.median(seconds[name]) * 1000, 1),
            "rows_per_second": round(tables[name].num_rows / statistics.median(seconds[name])),
            "json_mb_per_second": round(size[name] / statistics.median(seconds[name]) / 1e6, 1),
        }
        for name in tables
    }


def psycopg_fetch(conn: psycopg.Connection[Any], text: str) -> tuple[list[str], list[Any]]:
    with conn.cursor(binary=True) as cursor:
        cursor.execute(text.encode())  # bytes: no %-formatting, like a query with no values
        names = [column.name for column in cursor.description or ()]
        return names, cursor.fetchall()


def psycopg_json(conn: psycopg.Connection[Any], text: str) -> int:
    names, rows = psycopg_fetch(conn, text)
    body = {"columns": names, "rows": rows, "meta": {"rows": len(rows)}}
    return len(orjson.dumps(body, default=str))  # str(Decimal) keeps every digit


def core_json(connector: PostgresConnector, statement: sql.Statement) -> int:
    """livedata's own work without planning and HTTP: its connector, then its JSON encoder."""
    cursor = connector.stream(statement)
    try:
        rows = Passing(cursor.schema, cursor.batches)
        return sum(len(chunk) for chunk in JSONEncoder().encode(rows, lambda: {"rows": 0}))
    finally:
        cursor.close()


def in_process_variants(
    adbc: adbc_pg.Connection,
    pg: psycopg.Connection[Any],
    connector: PostgresConnector,
    table: str,
) -> list[Variant]:
    text = statement_for(table)
    statement = sql.Statement(text, ())
    return [
        Variant("ADBC fetch_arrow_table", "fetch", lambda: adbc_fetch(adbc, text).num_rows),
        Variant("psycopg binary fetchall", "fetch", lambda: len(psycopg_fetch(pg, text)[1])),
        Variant("livedata connector fetch", "fetch", lambda: connector.fetch(statement).num_rows),
        Variant("ADBC + livedata JSONEncoder", "baseline", lambda: adbc_json(adbc, text)),
        Variant(
            "ADBC batches + livedata JSONEncoder, streamed",
            "baseline",
            lambda: adbc_streamed_json(adbc, text),
        ),
        Variant("psycopg binary + orjson", "baseline", lambda: psycopg_json(pg, text)),
        Variant(
            "livedata connector + JSONEncoder", "core", lambda: core_json(connector, statement)
        ),
    ]


# Servers ------------------------------------------------------------------------------------


def write_catalog(directory: Path, tables: Sequence[str]) -> Path:
    source = SOURCE.model_dump(exclude={"password"}, exclude_none=True)
    lines = [f"[sources.{SOURCE_NAME}]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in source.items()]
    for table in tables:
        lines += ["", f"[tables.{table}]", f'source = "{SOURCE_NAME}"']
    path = directory / "catalog.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def livedata_command(catalog: Path) -> list[str]:
    return [str(BIN / "livedata"), "serve", "--catalog", str(catalog), "--port", "0"]


def floor_command() -> list[str]:
    app = f"{Path(__file__).stem}:floor_app"
    return [str(BIN / "uvicorn"), app, "--app-dir", str(HERE), "--port", "0", "--lifespan", "off",
            "--no-server-header"]  # fmt: skip


@contextlib.contextmanager
def serve(command: list[str], env: dict[str, str] | None = None) -> Iterator[Server]:
    """Run a uvicorn server on a port the kernel picks; ready once it says it listens."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    log: deque[str] = deque(maxlen=20)
    watchdog = threading.Timer(STARTUP_TIMEOUT, process.kill)
    watchdog.start()
    try:
        assert process.stderr is not None
        port = _listening_port(process.stderr, log)
        watchdog.cancel()
        threading.Thread(target=log.extend, args=(process.stderr,), daemon=True).start()
        yield Server(process.pid, f"http://127.0.0.1:{port}")
    finally:
        watchdog.cancel()
        if process.poll() is not None:  # it died under us: say how, or the error is a mystery
            print(
                f"{command[0]} exited with {process.returncode}:", *log, sep="\n", file=sys.stderr
            )
        process.terminate()
        process.wait(timeout=30)


def _listening_port(stderr: IO[str], log: deque[str]) -> int:
    for line in stderr:
        log.append(line)
        if match := READY.search(line):
            return int(match.group(1))
    raise RuntimeError("the server stopped before listening:\n" + "".join(log))


_floor_bodies: dict[str, list[bytes]] = {}


async def floor_app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """The HTTP floor: uvicorn sending bytes from memory, no framework. Any HTTP service pays
    this; the body is the file named by the path (the service's own response, saved)."""
    while (await receive()).get("more_body"):
        pass
    name = scope["path"].strip("/")
    if name not in _floor_bodies:
        body = (Path(os.environ[FLOOR_DIR_ENV]) / name).read_bytes()
        _floor_bodies[name] = [body[i : i + FLOOR_CHUNK] for i in range(0, len(body), FLOOR_CHUNK)]
    chunks = _floor_bodies[name]
    headers = [(b"content-type", b"application/json")]
    if len(chunks) == 1:  # like livedata: a small body is sent at once, with its length
        headers.append((b"content-length", str(len(chunks[0])).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def client(server: Server) -> httpx.Client:
    # identity: the bytes measured are the JSON itself, as the in-process baselines make it
    headers = {"Accept-Encoding": "identity"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=REQUEST_TIMEOUT)


def post(client: httpx.Client, path: str, table: str, sink: IO[bytes] | None = None) -> int:
    """One request, timed by the caller to the last byte; the JSON is counted, not parsed."""
    size = 0
    with client.stream("POST", path, json={"table": table}) as response:
        if response.status_code != 200:
            raise RuntimeError(f"POST {path} {table}: {response.status_code} {response.read()!r}")
        if "hit" in response.headers.get("cache-status", ""):
            raise RuntimeError(f"POST {path} {table} came from a cache; this measures uncached")
        for chunk in response.iter_bytes():
            size += len(chunk)
            if sink is not None:
                sink.write(chunk)
    return size


def http_variants(
    service: httpx.Client, floor: httpx.Client, floor_dir: Path, dataset: Dataset
) -> list[Variant]:
    with (floor_dir / dataset.table).open("wb") as sink:  # the floor sends these very bytes
        post(service, "/query", dataset.table, sink)
    return [
        Variant(
            "HTTP floor: bare uvicorn",
            "floor",
            lambda: post(floor, "/" + dataset.table, dataset.table),
        ),
        Variant("livedata POST /query", "service", lambda: post(service, "/query", dataset.table)),
    ]


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (the kernel's peak RSS) and RssFile (mapped file pages, such as cache
    files being read) of a process, in bytes."""
    status = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssFile"):
            status[key] = int(value.split()[0]) * 1024
    return status


def measure_memory(
    catalog: Path, dataset: Dataset, arrow_bytes: int, env: dict[str, str]
) -> dict[str, Any]:
    """Peak RSS of a fresh server answering one large request, against the Arrow size."""
    with serve(livedata_command(catalog), env) as server, client(server) as http:
        before = proc_status(server.pid)
        # Reset the high-water mark so the peak belongs to this request, not to start-up.
        Path(f"/proc/{server.pid}/clear_refs").write_text("5")
        post(http, "/query", dataset.table)
        after = proc_status(server.pid)
    peak, idle = after["VmHWM"], before["VmRSS"]
    return {
        "table": dataset.table,
        "rows": dataset.rows,
        "arrow_bytes": arrow_bytes,
        "rss_before_bytes": idle,
        "peak_rss_bytes": peak,
        "rss_after_bytes": after["VmRSS"],
        "rss_file_after_bytes": after["RssFile"],
        "peak_over_arrow": round(peak / arrow_bytes, 2),
        "growth_over_arrow": round((peak - idle) / arrow_bytes, 2),
        "target": TARGET_RSS,
        "meets_target": peak <= TARGET_RSS * arrow_bytes,
    }


# Measuring ----------------------------------------------------------------------------------


def measure(variants: Sequence[Variant], dataset: Dataset, progress: Progress) -> list[Timing]:
    """Warm every variant up, then run them round-robin so drift hits all of them alike."""
    total = len(variants) * (dataset.warmup + dataset.repeats)
    task = progress.add_task(f"{dataset.name}: {dataset.rows:,} rows", total=total)
    for variant in variants:
        for _ in range(dataset.warmup):
            variant.run()
            progress.advance(task)
    seconds: dict[str, list[float]] = {v.label: [] for v in variants}
    output: dict[str, int] = {}
    for _ in range(dataset.repeats):
        for variant in variants:
            started = time.perf_counter()
            output[variant.label] = variant.run()
            seconds[variant.label].append(time.perf_counter() - started)
            progress.advance(task)
    return [Timing(v.label, v.role, seconds[v.label], output[v.label]) for v in variants]


def summarize(dataset: Dataset, timings: Sequence[Timing]) -> dict[str, Any]:
    medians = {t.label: statistics.median(t.seconds) for t in timings}
    best = min((t.label for t in timings if t.role == "baseline"), key=medians.__getitem__)
    service = next(t for t in timings if t.role == "service")
    ratio = medians[service.label] / medians[best]
    best_min = min(min(t.seconds) for t in timings if t.role == "baseline")
    return {
        "table": dataset.table,
        "rows": dataset.rows,
        "warmup": dataset.warmup,
        "repeats": dataset.repeats,
        "timings": [
            {"label": t.label, "role": t.role, "output": t.output, **t.stats(),
             "x_best_baseline": round(medians[t.label] / medians[best], 3),
             "samples_ms": [round(s * 1000, 3) for s in t.seconds]}
            for t in timings
        ],
        "best_baseline": best,
        "ratio": round(ratio, 3),
        # A cross-check that load from other processes hurts less: the fastest runs' ratio.
        "ratio_of_minimums": round(min(service.seconds) / best_min, 3),
        "target": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
    }  # fmt: skip


def run(plan: Plan, progress: Progress) -> dict[str, Any]:
    uri = f"postgresql://{SOURCE.user}@{SOURCE.host}:{SOURCE.port}/{SOURCE.database}"
    with (
        adbc_pg.connect(uri, autocommit=True) as adbc,
        psycopg.connect(uri, autocommit=True) as pg,
        tempfile.TemporaryDirectory() as tmp,
    ):
        setup = progress.add_task("loading data into PostgreSQL", total=1)
        datasets = prepare(plan, adbc)
        progress.advance(setup)
        catalog = write_catalog(Path(tmp), [d.table for d in datasets])
        with contenders(datasets, adbc, pg, catalog, Path(tmp)) as plans:
            results = {d.name: summarize(d, measure(v, d, progress)) for d, v in plans}
        largest = datasets[-1]
        with contextlib.closing(PostgresConnector(SOURCE_NAME, SOURCE)) as connector:
            flat = connector.fetch(sql.Statement(statement_for(largest.table), ()))
        rates = encode_rates(
            {"lineitem (flat)": flat, "nested and special": nested_and_special(flat.num_rows)},
            plan.lineitem_repeats,
            progress,
        )
        arrow_bytes = flat.nbytes
        progress.add_task("peak RSS of a fresh server", total=None)
        memory = measure_memory(catalog, largest, arrow_bytes, UNCACHED)
        # The default settings: the first request is a miss, written to the cache and sent
        # from there.
        stored = measure_memory(catalog, largest, arrow_bytes, {"LIVEDATA_CACHE_DIR": tmp})
        return {
            "datasets": results,
            "json_encode_rates": rates,
            "memory": memory,
            "memory_stored_miss": stored,
            "versions": versions(adbc),
        }


@contextlib.contextmanager
def contenders(
    datasets: Sequence[Dataset],
    adbc: adbc_pg.Connection,
    pg: psycopg.Connection[Any],
    catalog: Path,
    floor_dir: Path,
) -> Iterator[list[tuple[Dataset, list[Variant]]]]:
    """Every variant of every data set, while the servers run."""
    with (
        contextlib.closing(PostgresConnector(SOURCE_NAME, SOURCE)) as connector,
        serve(livedata_command(catalog), UNCACHED) as livedata,
        serve(floor_command(), {FLOOR_DIR_ENV: str(floor_dir)}) as floor,
        client(livedata) as livedata_client,
        client(floor) as floor_client,
    ):
        yield [
            (d, [*in_process_variants(adbc, pg, connector, d.table),
                 *http_variants(livedata_client, floor_client, floor_dir, d)])
            for d in datasets
        ]  # fmt: skip


# Reporting ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    return {
        "cpu": model.group(1) if model else platform.processor(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_bytes": psutil.virtual_memory().total,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in psutil.getloadavg()],
    }


def versions(conn: adbc_pg.Connection) -> dict[str, str]:
    found = {name: importlib.metadata.version(name) for name in VERSIONS}
    describe = ["git", "-C", str(HERE), "describe", "--always", "--dirty"]
    found["livedata_commit"] = subprocess.run(
        describe, capture_output=True, text=True
    ).stdout.strip()
    with conn.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version')")
        found["postgresql"] = str(cursor.fetchone()[0])
    return found


def settings(plan: Plan) -> dict[str, Any]:
    return {
        "quick": plan.quick,
        "tpch_scale": plan.scale,
        "lineitem_table": plan.lineitem_table,
        "source": SOURCE.model_dump(mode="json", exclude={"password"}),
        "json_batch_rows": BATCH_ROWS,
        "floor_chunk_bytes": FLOOR_CHUNK,
        "service_environment": UNCACHED,
        "client": "httpx, one keep-alive connection per server, streamed to the last byte, "
        "not parsed",
        "order": "warm-up of each variant, then the variants round-robin, once per repeat",
    }


def print_report(console: Console, report: dict[str, Any]) -> None:
    table = Table(title="livedata service overhead: median of the repeats, ratio to the best "
                  "baseline of the same run")  # fmt: skip
    for name in ("data set", "path", "role"):
        table.add_column(name)
    for name in ("median ms", "IQR ms", "min-max ms", "output", "x best"):
        table.add_column(name, justify="right")
    for name, result in report["datasets"].items():
        for t in result["timings"]:
            table.add_row(
                f"{name}, {result['rows']:,} rows", t["label"], t["role"],
                f"{t['median_ms']:,.1f}", f"{t['q1_ms']:,.1f}-{t['q3_ms']:,.1f}",
                f"{t['min_ms']:,.1f}-{t['max_ms']:,.1f}",
                f"{t['output']:,} {'rows' if t['role'] == 'fetch' else 'B'}",
                f"{t['x_best_baseline']:.2f}", style="bold" if t["role"] == "service" else None,
            )  # fmt: skip
        table.add_section()
    console.print(table)
    for name, result in report["datasets"].items():
        console.print(
            f"{name}: service / {result['best_baseline']} = {result['ratio']:.3f} "
            f"({'meets' if result['meets_target'] else 'MISSES'} the <= {TARGET_RATIO} target); "
            f"ratio of the fastest runs {result['ratio_of_minimums']:.3f}"
        )
    for name, rate in report["json_encode_rates"].items():
        console.print(
            f"JSON encoder, {name}: {rate['rows']:,} rows in {rate['median_ms']:,.1f} ms = "
            f"{rate['rows_per_second']:,} rows/s, {rate['json_mb_per_second']:,.1f} MB/s of JSON"
        )
    load = report["machine"]["load_average_at_start"][0]  # at the end it includes this run
    if load >= BUSY_LOAD:
        console.print(
            f"[yellow]warning:[/yellow] load average {load:.1f} at the start: other processes "
            "shared the CPUs, so spreads are wide and ratios less certain; rerun when quiet"
        )
    mib = 2**20
    for how, m in (("uncached", report["memory"]), ("stored miss", report["memory_stored_miss"])):
        console.print(
            f"peak RSS answering {m['rows']:,} rows ({how}): {m['peak_rss_bytes'] / mib:,.0f} MiB"
            f" (idle before: {m['rss_before_bytes'] / mib:,.0f} MiB) = "
            f"{m['peak_over_arrow']:.2f}x the Arrow result ({m['arrow_bytes'] / mib:,.0f} MiB); "
            f"growth alone {m['growth_over_arrow']:.2f}x; mapped files after it "
            f"{m['rss_file_after_bytes'] / mib:,.0f} MiB "
            f"({'meets' if m['meets_target'] else 'MISSES'} the <= {TARGET_RSS:g}x target)"
        )


def plot(report: dict[str, Any], path: Path) -> None:
    """One panel per data set (baselines, diagnostics, service), one for memory."""
    figure = Figure(figsize=(16, 5.6), layout="constrained")
    axes = figure.subplots(1, len(report["datasets"]) + 1)
    for ax, (name, result) in zip(axes, report["datasets"].items(), strict=False):
        _plot_timings(ax, name, result)
    _plot_memory(axes[-1], report["memory"], report["memory_stored_miss"])
    figure.legend(handles=_legend(), loc="outside lower center", ncols=5)
    host, postgres = report["machine"], report["versions"]["postgresql"].split()[0]
    figure.suptitle(
        f"livedata POST /query, uncached, vs. the raw driver + JSON in one process "
        f"({host['cpu']}, {host['logical_cores']} cores, PostgreSQL {postgres}, "
        f"load average {host['load_average_at_start'][0]:.2f} at the start)"
    )
    FigureCanvasAgg(figure)  # the Agg canvas: no GUI backend, works headless
    figure.savefig(path, dpi=100)


def _plot_timings(ax: Axes, name: str, result: dict[str, Any]) -> None:
    shown = [t for t in result["timings"] if t["role"] != "fetch"]
    iqr = [[t["median_ms"] - t["q1_ms"] for t in shown],
           [t["q3_ms"] - t["median_ms"] for t in shown]]  # fmt: skip
    ax.bar(
        [textwrap.fill(t["label"], 13) for t in shown],
        [t["median_ms"] for t in shown],
        yerr=iqr,
        capsize=4,
        color=[ROLE_STYLE[t["role"]][0] for t in shown],
        hatch=[ROLE_STYLE[t["role"]][1] for t in shown],
        edgecolor="white",
    )
    for i, t in enumerate(shown):
        service = t["role"] == "service"
        style = {"fontsize": 12, "weight": "bold"} if service else {"fontsize": 9}
        ratio = f"{t['x_best_baseline']:.3f}x" if service else f"{t['x_best_baseline']:.2f}x"
        ax.annotate(ratio, (i, t["q3_ms"]), ha="center", va="bottom", **style)
    best = next(t["median_ms"] for t in shown if t["label"] == result["best_baseline"])
    ax.axhline(best * TARGET_RATIO, color="tab:red", linestyle="--", linewidth=1)
    ax.set_title(f"{name}: {result['table']}, {result['rows']:,} rows, {result['repeats']} runs")
    ax.set_ylabel("ms to the last byte of JSON (median; bars: IQR)")
    ax.tick_params(axis="x", labelsize=8)
    ax.margins(y=0.15)


def _legend() -> list[Artist]:
    roles = [Patch(facecolor=color, hatch=hatch, edgecolor="white", label=label)
             for role, (color, hatch, label) in ROLE_STYLE.items() if role != "fetch"]  # fmt: skip
    target = f"target: {TARGET_RATIO}x the best baseline, {TARGET_RSS:g}x the Arrow size"
    return [*roles, Line2D([], [], color="tab:red", linestyle="--", label=target)]


def _plot_memory(ax: Axes, memory: dict[str, Any], stored: dict[str, Any]) -> None:
    mib = 2**20
    bars = {
        "Arrow result\n(ADBC)": (memory["arrow_bytes"], ROLE_STYLE["baseline"][0]),
        "server RSS\nidle, before": (memory["rss_before_bytes"], "tab:gray"),
        "peak RSS\nuncached": (memory["peak_rss_bytes"], ROLE_STYLE["service"][0]),
        "peak RSS\nmiss, stored": (stored["peak_rss_bytes"], ROLE_STYLE["service"][0]),
    }
    ax.bar(list(bars), [size / mib for size, _ in bars.values()],
           color=[color for _, color in bars.values()])  # fmt: skip
    limit = memory["arrow_bytes"] * TARGET_RSS / mib
    ax.axhline(limit, color="tab:red", linestyle="--", linewidth=1)
    for i, m in ((2, memory), (3, stored)):
        ax.annotate(f"{m['peak_over_arrow']:.2f}x", (i, max(limit, m["peak_rss_bytes"] / mib)),
                    ha="center", va="bottom", fontsize=12, weight="bold")  # fmt: skip
    ax.set_title(f"memory: a fresh server answering {memory['rows']:,} rows")
    ax.set_ylabel("MiB")
    ax.tick_params(axis="x", labelsize=8)
    ax.margins(y=0.15)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: ~100k lineitem rows, 3 repeats, results in bench/results/tmp/",
    )
    parser.add_argument("--out", type=Path, help="directory for the JSON and PNG results")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    out: Path = args.out or plan.out
    out.mkdir(parents=True, exist_ok=True)
    console = Console(width=None if sys.stdout.isatty() else 160)  # a log keeps the table whole
    started, host = dt.datetime.now(dt.UTC), machine()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console) as progress:
        measured = run(plan, progress)
    host["load_average_at_end"] = [round(x, 2) for x in psutil.getloadavg()]
    report = {
        "benchmark": "service_overhead",
        "started": started.isoformat(timespec="seconds"),
        "command": " ".join(
            ["bench/service_overhead.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "machine": host,
        "versions": measured.pop("versions"),
        "settings": settings(plan),
        **measured,
    }
    (out / "service_overhead.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, out / "service_overhead.png")
    print_report(console, report)
    console.print(f"wrote {out / 'service_overhead.json'} and {out / 'service_overhead.png'}")


if __name__ == "__main__":
    main()
