"""Instructions per cache hit from memory, against a bare Starlette floor, in one run.

Wall-clock throughput is meaningless on a machine other jobs share, but instruction counts
are repeatable whatever the load. This script builds the apps with ``create_app`` and drives
them in process through ASGI (no server, no sockets): the sample table as JSON, audit log to
a file, with no credentials, an API key and an RS256 embed token; and the floor, a bare
Starlette app answering the same POST with the same bytes from memory. Under
``valgrind --tool=callgrind --dump-before=getppid`` an ``os.getppid()`` before and after
the hits of each case makes each dump hold exactly those hits (the audit writer's thread
included: the queue is drained inside the window).

    .venv/bin/python bench/hit_instructions.py            # ~2 min: valgrind runs it again
    .venv/bin/python bench/hit_instructions.py --profile api-key   # cProfile, no valgrind

It prints instructions per hit for each case and the floor, and floor / livedata: what a
hit would reach of the floor's throughput if the server's own work were free (it is not:
uvicorn's parsing and writing, the same for both, bring the wall-clock ratio closer to 1).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from cache_hits import SAMPLE, access_file  # bench/ is on the path: the script's folder
from livedata.settings import Settings
from livedata.web import audit
from livedata.web.app import create_app

HITS = 1000
BODY = json.dumps(SAMPLE).encode()
FLOOR = "floor"
CASES = ("no-credentials", "api-key", "embed-token")


def floor_app(answer: bytes) -> ASGIApp:
    """What any Starlette app pays to answer this POST (``bench/cache_hits.py``'s floor)."""

    async def query(request: Request) -> Response:
        await request.body()
        return Response(answer, media_type="application/json")

    return Starlette(routes=[Route("/query", query, methods=["POST"])])


def scope(authorization: str | None) -> dict[str, Any]:
    """What uvicorn hands the app for the POST that ``bench/cache_hits.py``'s wrk sends."""
    headers = [
        (b"host", b"127.0.0.1:5000"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ]
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 5000),
        "client": ("127.0.0.1", 40000),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": "/query",
        "raw_path": b"/query",
        "query_string": b"",
        "headers": headers,
        "state": {},
    }


async def hit(app: ASGIApp, request: dict[str, Any]) -> list[Message]:
    """One request, a fresh scope each time (the layers write into its state)."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(dict(request, headers=list(request["headers"]), state={}), receive, send)
    return sent


async def prepare(
    stack: AsyncExitStack, work: Path
) -> dict[str, Callable[[], Awaitable[list[Message]]]]:
    """Each case's hit, warmed up until it comes from memory."""
    credentials = access_file(work)
    cases: dict[str, Callable[[], Awaitable[list[Message]]]] = {}
    for name in CASES:
        settings = Settings(
            cache_dir=work / "cache",
            cache_ttl=3600,
            audit_log=str(work / "audit.log"),
            auth_file=None if name == "no-credentials" else work / "access.toml",
        )
        app = create_app(settings)
        await stack.enter_async_context(app.router.lifespan_context(app))
        authorization = {"api-key": credentials["api_key"], "embed-token": credentials["token"]}
        request = scope(authorization.get(name))
        for _ in range(3):  # a miss, a hit that remembers the body, a hit from memory
            sent = await hit(app, request)
        start = dict(sent[0]["headers"])
        assert start[b"cache-status"] == b"livedata; hit", (name, sent[0])
        cases[name] = lambda app=app, request=request: hit(app, request)
    floor = floor_app(sent[1]["body"])
    cases[FLOOR] = lambda: hit(floor, scope(None))
    return cases


async def run(profile: str | None, order: Path | None) -> None:
    work = Path(tempfile.mkdtemp(prefix="livedata-instructions-"))
    async with AsyncExitStack() as stack:
        cases = await prepare(stack, work)
        writer = audit.configure(str(work / "audit.log"))
        assert writer is not None
        if profile is not None:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(5000):
                await cases[profile]()
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
            return
        for answer in cases.values():
            for _ in range(10):  # first calls fill caches (labels, specialised bytecode)
                await answer()
            writer.drain()
            os.getppid()  # the dump before this call ends the previous window
            for _ in range(HITS):
                await answer()
            writer.drain()  # the writer thread's work for these hits, inside the window
        os.getppid()
    if order is not None:
        order.write_text(json.dumps(list(cases)))


def measure() -> dict[str, float]:
    """Run this script again under callgrind; instructions per hit by case."""
    out = Path(tempfile.mkdtemp(prefix="livedata-callgrind-"))
    order = out / "order.json"
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--dump-before=getppid",
            f"--callgrind-out-file={out}/callgrind.out",
            sys.executable,
            __file__,
            "--inner",
            str(order),
        ],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    totals = {}
    for dump in out.glob("callgrind.out.*"):
        match = re.search(rb"^totals: (\d+)", dump.read_bytes(), re.MULTILINE)
        assert match, dump
        totals[int(dump.name.rsplit(".", 1)[1])] = int(match[1])
    names = json.loads(order.read_text())
    shutil.rmtree(out)
    # Dump 1 is start-up; dump i + 2 holds the hits of case i.
    return {name: totals[i + 2] / HITS for i, name in enumerate(names)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", choices=[*CASES, FLOOR], help="cProfile 5,000 hits")
    parser.add_argument("--inner", type=Path, help=argparse.SUPPRESS)  # under valgrind
    args = parser.parse_args()
    if args.profile or args.inner:
        asyncio.run(run(args.profile, args.inner))
        return
    per_hit = measure()
    floor = per_hit[FLOOR]
    print(f"{'case':<16} {'instructions/hit':>17} {'floor/livedata':>15}")
    for name, count in per_hit.items():
        print(f"{name:<16} {count:>17,.0f} {floor / count:>15.2f}")


if __name__ == "__main__":
    main()
