"""The format study runs end to end on tiny data (``--quick``): the code works, the report,
the results and the plots are written. No timing is asserted: CI machines vary."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from livedata.study import memory
from livedata.study.fidelity import compare
from livedata.study.formats import STUDY_FORMATS
from livedata.study.shapes import shapes


def test_the_quick_study_writes_results_report_and_plots(tmp_path: Path) -> None:
    """Through the real command, with no --out: results go under XDG_DATA_HOME (never the
    source tree), stdout holds the tables and their footnotes and no log line."""
    done = subprocess.run(
        [sys.executable, "-m", "livedata.cli", "bench", "formats", "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={
            **os.environ,
            "XDG_DATA_HOME": str(tmp_path / "share"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
        },
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (out,) = (tmp_path / "share" / "livedata-bench").glob("formats-*")
    assert "request_id" not in done.stdout + done.stderr  # the servers' audit log is off
    assert "No credentials configured" not in done.stdout + done.stderr  # in their log files
    results = orjson.loads((out / "results.json").read_bytes())
    quick_shapes = [s.name for s in shapes(True, tmp_path)]
    assert list(results["shapes"]) == quick_shapes
    measured = {(c["format"], c["shape"]) for c in results["cells"]}
    assert measured == {(f, s) for f in STUDY_FORMATS for s in quick_shapes}
    arrow = next(c for c in results["cells"] if c["format"] == "arrow" and c["shape"] == "tricky")
    assert arrow["status"] == "ok"
    assert set(arrow["read"]) == {"hot-mmap", "cold-mmap", "hot-read", "cold-read"}
    assert set(arrow["fidelity"].values()) == {"exact"}
    hits = [h for h in results["hits"] if "latency" in h]
    assert {(h["response"], h["mode"]) for h in hits} >= {("json", "first"), ("arrow", "hot")}
    assert results["meta"]["versions"]["pyarrow"] == pa.__version__
    report = (out / "report.md").read_text()
    assert "Read, page cache cold" in report
    assert "What each format loses" in report
    for marker in set(re.findall(r"\| [a-z/-]+ (\[\d+\])", report)):  # each has its footnote
        assert f"\n{marker} " in report, marker
    assert re.search(r"\| (n/a|-|fails|slow) \|", report) is None  # no word without a reason
    assert "[1] " in done.stdout  # the console tables carry their footnotes too
    for png in ("read-vs-size.png", "hits.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_peak_memory_is_taken_in_a_fresh_process(tmp_path: Path) -> None:
    table = pa.table({"n": list(range(100_000))})
    source, data = tmp_path / "source.arrow", tmp_path / "data"
    with pa.OSFile(str(source), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    data.write_bytes(STUDY_FORMATS["parquet-zstd"].dumps(table))
    for phase in ("write", "read"):
        peaks = memory.measure("parquet-zstd", phase, data, source)
        assert peaks["rss_peak"] >= 0, peaks
        assert peaks["arrow_peak"] > 0, peaks


@pytest.mark.parametrize(
    ("back", "verdict"),
    [
        pytest.param(pa.table({"x": pa.array([1.5, float("nan")])}), "exact", id="nan-equals-nan"),
        pytest.param(
            pa.table({"x": pa.array([1.5, float("nan")], pa.float32())}), "retyped", id="retyped"
        ),
        pytest.param(pa.table({"x": pa.array([1.5, 2.0])}), "lost", id="lost"),
        pytest.param(pa.table({"y": pa.array([1.5, float("nan")])}), "missing", id="missing"),
    ],
)
def test_fidelity_verdicts(back: pa.Table, verdict: str) -> None:
    original = pa.table({"x": pa.array([1.5, float("nan")])})
    assert compare(original, back) == {"x": verdict}
