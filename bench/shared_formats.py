"""Which format the shared tier should store: what a node pays per format over a real network.

For each cache format and data shape of the format study (``livedata.study``), one node puts
an entry into SeaweedFS and another takes it out, through the cache's own code
(``Store``, ``SharedTier``), over a shaped link: SeaweedFS runs in a network namespace of its
own, joined to this one by a veth pair whose two ends ``tc tbf`` rate-limits, and the
requests go through a relay there that delays each direction by half the round trip
(``delay_line.py``: this kernel has no ``netem``).

- **upload**: the entry turned into the shared format (nothing for ``arrow``, the local
  format) and put with a conditional create;
- **get**: download to a scratch file, check the container's digest, decode the table and
  read every byte (``touch``), then, when the shared format is not the local one, write the
  local ``arrow`` entry (fsynced): what a shared hit costs before it answers.

Formats take turns within each repeat (interleaved), and every figure is also a ratio to
``arrow`` measured in the same repeat and condition, so a load spike from other work on the
machine shifts both sides. Needs root (``ip netns``, ``tc``) and the dev extra's SeaweedFS.
Run ``.venv/bin/python bench/shared_formats.py`` (``--quick``: the sample and 1k lineitem
rows, 2 repeats, results in ``bench/results/tmp/``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the tests' launcher of SeaweedFS
from tests.cluster.conftest import SeaweedFS, free_ports  # noqa: E402

from livedata.cache.formats.registry import ALL_FORMATS  # noqa: E402
from livedata.cache.shared import SharedTier  # noqa: E402
from livedata.cache.store import Store  # noqa: E402
from livedata.study.measure import touch  # noqa: E402
from livedata.study.shapes import shapes  # noqa: E402
from service_overhead import machine  # noqa: E402

LOCAL = "arrow"
FORMATS = ["arrow", "arrow-lz4", "arrow-zstd", "parquet-zstd", "vortex"]
SHAPES = {"quick": ["sample", "lineitem-1k"], "full": ["sample", "lineitem-100k", "lineitem-1m"]}
HOST_IP, STORE_IP = "10.213.7.1", "10.213.7.2"  # a /30 of our own, used by nothing else


@dataclass(frozen=True)
class Link:
    name: str
    rate: str
    rtt_ms: float

    def tbf(self) -> list[str]:
        # A burst of 2 ms at the rate (at least 16 KB, a few packets), a queue of 50 ms.
        bits = int(self.rate.removesuffix("mbit").removesuffix("gbit")) * (
            1000**3 if self.rate.endswith("gbit") else 1000**2
        )
        burst = max(bits // 8 // 500, 16 << 10)
        return ["tbf", "rate", self.rate, "burst", str(burst), "latency", "50ms"]


LINKS = [
    Link("same AZ: 1 Gbit/s, 0.5 ms", "1gbit", 0.5),
    Link("cross AZ: 100 Mbit/s, 5 ms", "100mbit", 5.0),
    Link("far: 25 Mbit/s, 20 ms", "25mbit", 20.0),
]


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)  # our own arguments


class Namespace:
    """A network namespace joined to this one by a veth pair; ``shape`` limits both ends."""

    def __init__(self) -> None:
        self.name = f"ldshared{os.getpid()}"
        self.host_dev, self.ns_dev = f"lds{os.getpid()}h", f"lds{os.getpid()}n"

    def __enter__(self) -> Namespace:
        try:
            run("ip", "netns", "add", self.name)
            run("ip", "link", "add", self.host_dev, "type", "veth", "peer", "name", self.ns_dev)
            run("ip", "link", "set", self.ns_dev, "netns", self.name)
            run("ip", "addr", "add", f"{HOST_IP}/30", "dev", self.host_dev)
            run("ip", "link", "set", self.host_dev, "up")
            for command in (
                ["ip", "addr", "add", f"{STORE_IP}/30", "dev", self.ns_dev],
                ["ip", "link", "set", self.ns_dev, "up"],
                ["ip", "link", "set", "lo", "up"],  # SeaweedFS's own ports talk on loopback
            ):
                self.inside(*command)
        except BaseException:
            self.__exit__()
            raise
        return self

    def inside(self, *command: str) -> None:
        run("ip", "netns", "exec", self.name, *command)

    def shape(self, link: Link) -> None:
        run("tc", "qdisc", "replace", "dev", self.host_dev, "root", *link.tbf())
        self.inside("tc", "qdisc", "replace", "dev", self.ns_dev, "root", *link.tbf())

    def __exit__(self, *exc: object) -> None:
        # Deleting the namespace deletes its end of the pair, and with it the host's end and
        # both qdiscs; the host end is deleted too in case the namespace never got its end.
        subprocess.run(["ip", "link", "del", self.host_dev], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


@contextmanager
def seaweedfs(folder: Path, namespace: Namespace) -> Iterator[SeaweedFS]:
    store = SeaweedFS(folder, host=STORE_IP, launcher=("ip", "netns", "exec", namespace.name))
    store.start()
    try:
        yield store
    finally:
        store.stop()


@contextmanager
def delayed(namespace: Namespace, store: SeaweedFS, link: Link) -> Iterator[SharedTier]:
    """A client of ``store`` through a relay in the namespace that adds ``link``'s delay."""
    port = free_ports(1)[0]
    relay = subprocess.Popen(  # our own arguments
        ["ip", "netns", "exec", namespace.name, sys.executable, str(HERE / "delay_line.py"),
         STORE_IP, str(port), STORE_IP, str(store.s3_port), str(link.rtt_ms / 2)],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert relay.stdout is not None
        assert relay.stdout.readline() == b"ready\n"
        os.environ["AWS_ENDPOINT_URL"] = f"http://{STORE_IP}:{port}"
        # The format is the bench's to choose per object: it converts as the cache does. The
        # transfer bound is lifted, so that what the cache's bound would refuse is measured.
        url = os.environ["LIVEDATA_CACHE_SHARED_URL"]
        yield SharedTier(url, 120.0, ALL_FORMATS[LOCAL], transfer=3600.0)
    finally:
        relay.terminate()
        relay.wait()


class Node:
    """One node's side of the shared tier: its cache directory and its S3 client."""

    def __init__(self, root: Path) -> None:
        self.store = Store(root)
        self.tier: SharedTier

    def upload(self, local: Path, fmt: str, name: str) -> tuple[float, int]:
        """Seconds to turn the local entry ``local`` into an object ``name``, and its size."""
        started = time.perf_counter()
        if fmt == LOCAL:
            path = local
        else:
            stored = self.store.read(local)
            assert stored is not None
            table = ALL_FORMATS[LOCAL].loads(stored.payload)
            path = self.store.entry_path(name.replace("/", "-"), fmt)
            assert self.store.write(path, ALL_FORMATS[fmt].dumps(table), {"format": fmt})
        assert asyncio.run(self.tier.upload(name, path)), name
        took, size = time.perf_counter() - started, path.stat().st_size
        if path != local:
            self.store.remove(path)
        return took, size

    def get(self, fmt: str, name: str) -> dict[str, float]:
        """Seconds to download object ``name``, check and decode it, and store it locally."""
        scratch = self.store.scratch(name.replace("/", "-"))
        started = time.perf_counter()
        assert asyncio.run(self.tier.download(name, scratch)), name
        downloaded = time.perf_counter()
        stored = self.store.adopt(scratch, self.store.entry_path(name.replace("/", "-"), fmt))
        assert stored is not None, name
        assert stored.header["format"] == fmt, name
        table = ALL_FORMATS[fmt].loads(stored.payload)
        touch(table)
        decoded = time.perf_counter()
        if fmt != LOCAL:
            path = self.store.entry_path(name.replace("/", "-"))
            assert self.store.write(path, ALL_FORMATS[LOCAL].dumps(table), {"format": LOCAL})
        ended = time.perf_counter()
        for leftover in self.store.root.glob("entries/*/*"):  # the next repeat starts afresh
            self.store.remove(leftover)
        asyncio.run(self.tier.delete(name))
        return {
            "download": downloaded - started,
            "decode": decoded - downloaded,
            "to local": ended - decoded,
            "get": ended - started,
        }


def measure(
    report: dict[str, Any], out: Path, namespace: Namespace, store: SeaweedFS, folder: Path
) -> None:
    """Every link, shape and format into ``report``, formats interleaved within each repeat."""
    quick, repeats = report["quick"], report["repeats"]
    writer, reader = Node(folder / "writer"), Node(folder / "reader")
    wanted = SHAPES["quick" if quick else "full"]
    tables = {s.name: s.build() for s in shapes(quick, HERE / "data") if s.name in wanted}
    locals_ = {}
    for name, table in tables.items():
        path = writer.store.entry_path(f"source-{name}")
        assert writer.store.write(path, ALL_FORMATS[LOCAL].dumps(table), {"format": LOCAL})
        locals_[name] = path
    for link in LINKS:
        namespace.shape(link)
        with delayed(namespace, store, link) as tier:
            writer.tier = reader.tier = tier
            report["results"][link.name] = measure_link(
                link, writer, reader, tables, locals_, repeats
            )
        save(report, out)  # a link's figures are kept if a later one fails


def measure_link(
    link: Link,
    writer: Node,
    reader: Node,
    tables: dict[str, Any],
    locals_: dict[str, Path],
    repeats: int,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for shape in tables:
        samples: dict[str, list[dict[str, float]]] = {f: [] for f in FORMATS}
        sizes: dict[str, int] = {}
        # A first, untimed repeat on the link's first shape opens its connections.
        first = 0 if shape == next(iter(tables)) else 1
        for repeat in range(first, repeats + 1):
            for fmt in FORMATS:
                name = f"{link.rate}/{shape}/{fmt}/{repeat}"
                upload, sizes[fmt] = writer.upload(locals_[shape], fmt, name)
                figures = {"upload": upload, **reader.get(fmt, name)}
                if repeat:
                    samples[fmt].append(figures)
            print(
                f"\r{link.name}, {shape}: repeat {repeat}/{repeats} done, "
                f"load {os.getloadavg()[0]:.2f}   ",
                end="",
                flush=True,
            )
        results[shape] = summarise(samples, sizes)
        print(f"\n{table_text(link.name, shape, results[shape])}", flush=True)
    return results


def summarise(samples: dict[str, list[dict[str, float]]], sizes: dict[str, int]) -> dict[str, Any]:
    """Medians per figure, and the median of each repeat's ratio to ``arrow``."""
    summary = {}
    for fmt, runs in samples.items():
        figures = {
            what: {
                "median": statistics.median(r[what] for r in runs),
                "low": min(r[what] for r in runs),
                "high": max(r[what] for r in runs),
                "over_arrow": statistics.median(
                    r[what] / base[what] if base[what] else 1.0
                    for r, base in zip(runs, samples[LOCAL], strict=True)
                ),
                "runs": [r[what] for r in runs],
            }
            for what in runs[0]
        }
        summary[fmt] = {"size": sizes[fmt], **figures}
    return summary


def table_text(link: str, shape: str, cells: dict[str, Any]) -> str:
    lines = [
        f"{link}, {shape}: medians (ratio to arrow in the same repeats)",
        f"{'format':<13}{'object':>11}{'upload':>18}{'get':>18}"
        f"{'  download / decode / to local':>33}",
    ]
    for fmt, cell in cells.items():
        parts = " / ".join(
            f"{cell[w]['median'] * 1000:.0f}" for w in ("download", "decode", "to local")
        )
        lines.append(
            f"{fmt:<13}{cell['size'] / 1e6:>9.2f}MB"
            f"{cell['upload']['median'] * 1000:>9.0f} ms {cell['upload']['over_arrow']:>5.2f}x"
            f"{cell['get']['median'] * 1000:>9.0f} ms {cell['get']['over_arrow']:>5.2f}x"
            f"{parts:>27} ms"
        )
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    """Per shape, a shared hit (top) and an upload (bottom), per link and format."""
    results = report["results"]
    shape_names = list(next(iter(results.values())))
    figure = Figure(figsize=(5 * len(shape_names), 8), layout="constrained")
    grid = figure.subplots(2, len(shape_names), squeeze=False)
    width = 0.8 / len(FORMATS)
    for row, (what, label) in enumerate(
        (("get", "ms to get: download, check, decode, store"), ("upload", "ms to upload"))
    ):
        for axis, shape in zip(grid[row], shape_names, strict=True):
            for i, fmt in enumerate(FORMATS):
                heights = [results[link][shape][fmt][what]["median"] * 1000 for link in results]
                axis.bar([x + i * width for x in range(len(results))], heights, width, label=fmt)
            axis.set_xticks(
                [x + 0.4 - width / 2 for x in range(len(results))],
                [link.replace(": ", "\n") for link in results],
                fontsize=8,
            )
            axis.set_yscale("log")
            axis.set_ylabel(f"{label} (median)", fontsize=9)
            axis.set_title(f"{shape}: {what}")
    grid[0][0].legend(fontsize=8)
    load = report["machine"]["load_average_at_start"][0]
    figure.suptitle(
        f"livedata shared tier: an entry through object storage, per stored format "
        f"(load average {load:.2f} at start)"
    )
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 3)
    out: Path = args.out or (HERE / "results" / ("tmp" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "benchmark": "shared_formats",
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "links": [link.__dict__ for link in LINKS],
        "repeats": repeats,
        "quick": args.quick,
        "results": {},
    }
    print(f"load average at start: {report['machine']['load_average_at_start']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="livedata-shared-formats-") as work:
        folder = Path(work)
        with Namespace() as namespace, seaweedfs(folder / "s3", namespace) as store:
            os.environ.update(store.env("bench"))
            measure(report, out, namespace, store, folder)
    print(f"load average at end: {report['machine']['load_average_at_end']}")
    print(f"wrote {out / 'shared_formats.json'} and {out / 'shared_formats.png'}")


def save(report: dict[str, Any], out: Path) -> None:
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in psutil.getloadavg()]
    (out / "shared_formats.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, out / "shared_formats.png")


if __name__ == "__main__":
    main()
