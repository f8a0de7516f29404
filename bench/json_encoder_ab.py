"""The JSON encoder of two checkouts, A/B: did a change slow the flat path? (issue 10)

Each side is a Python whose ``livedata`` is one checkout (e.g. a worktree's .venv/bin/python).
Both encode the same seeded, lineitem-shaped table (50,000 rows: BIGINT, DECIMAL(15, 2), DATE,
short and long text), read from one Arrow file. What is compared is the number of
instructions the encoding executes, counted by valgrind's callgrind (a run that encodes minus
a run that only loads): unlike seconds, it does not move when other work shares the cores.
Needs valgrind; about 2 minutes.

    .venv/bin/python bench/json_encoder_ab.py OLD_PYTHON NEW_PYTHON
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

ROWS = 50_000
RUN = """
import sys, pyarrow as pa, pyarrow.ipc as ipc
from livedata.encoders.json import JSONEncoder
table = ipc.open_file(pa.memory_map(sys.argv[1])).read_all()
if sys.argv[2] == "encode":
    body = JSONEncoder().encode(table.to_reader(max_chunksize=65536), lambda: {"rows": 0})
    print(sum(len(block) for block in body))
"""


def lineitem_like(path: Path) -> None:
    pick = random.Random(7)  # noqa: S311  # the same data on both sides, not a secret
    table = pa.table(
        {
            "l_orderkey": pa.array([pick.randrange(6_000_000) for _ in range(ROWS)], pa.int64()),
            "l_quantity": pa.array(
                [decimal.Decimal(pick.randrange(100, 5000)) / 100 for _ in range(ROWS)],
                pa.decimal128(15, 2),
            ),
            "l_extendedprice": pa.array(
                [decimal.Decimal(pick.randrange(100, 10**7)) / 100 for _ in range(ROWS)],
                pa.decimal128(15, 2),
            ),
            "l_shipdate": pa.array(
                [dt.date(1992, 1, 1) + dt.timedelta(days=pick.randrange(2500)) for _ in range(ROWS)]
            ),
            "l_shipmode": pa.array([pick.choice(["AIR", "MAIL", "SHIP"]) for _ in range(ROWS)]),
            "l_comment": pa.array(
                ["".join(pick.choice("abcdefgh ") for _ in range(27)) for _ in range(ROWS)]
            ),
        }
    )
    with ipc.new_file(path, table.schema) as writer:
        writer.write_table(table)


def instructions(python: str, data: Path, mode: str, folder: Path) -> int:
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={folder / 'out'}",
         python, "-c", RUN, str(data), mode],
        capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # the same hashing, run after run
    )  # fmt: skip
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("a", help="the Python of the baseline checkout")
    parser.add_argument("b", help="the Python of the changed checkout")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "lineitem_like.arrow"
        lineitem_like(data)
        counts = {}
        for side in (args.a, args.b):
            encode, load = (instructions(side, data, m, Path(folder)) for m in ("encode", "load"))
            counts[side] = encode - load
            print(f"{side}: {counts[side] / 1e6:,.1f} M instructions", file=sys.stderr)
    a, b = counts[args.a], counts[args.b]
    print(
        f"encoding {ROWS:,} rows: A {a / 1e6:,.1f} M, B {b / 1e6:,.1f} M instructions: "
        f"B/A = {b / a:.3f}"
    )


if __name__ == "__main__":
    main()
