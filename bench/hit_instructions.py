"""Instructions per cache hit from memory, against a bare Starlette floor, in one run.

Wall-clock throughput is meaningless on a machine other jobs share, but instruction counts
are repeatable whatever the load. This script builds the apps with ``create_app`` (the
sample table as JSON, audit log to a file; no credentials, an API key, an RS256 embed token;
and, as a diagnostic, no credentials with the audit log off)
and the floor (a bare Starlette app answering the same POST with the same bytes from memory),
and drives each 1,000 times two ways, with no socket: in process through ASGI, and through
uvicorn's HTTP protocol (httptools) on an in-memory connection, which adds the parsing and
writing a server does for both. Under ``valgrind --tool=callgrind --dump-before=getppid`` an
``os.getppid()`` before and after each case's hits makes each dump hold exactly those hits
(the audit writer's thread included: the queue is drained inside the window).

    .venv/bin/python bench/hit_instructions.py            # ~3 min: valgrind runs it again
    .venv/bin/python bench/hit_instructions.py --profile api-key   # cProfile, no valgrind

It prints instructions per hit for each case and the floor, and floor / livedata: the ratio
of throughputs were instructions all a hit cost. The kernel's socket work (the same for
both) is left out, and the event loop is asyncio's, not uvloop's: a real server's ratio is
closer to 1 than "via uvicorn", which is closer than "in process". Writes
``results/hit_instructions.json``.
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
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from cache_hits import SAMPLE, access_file  # bench/ is on the path: the script's folder
from livedata.settings import Settings
from livedata.web import audit
from livedata.web.app import create_app

RESULTS = Path(__file__).resolve().parent / "results"
HITS = 1000
BODY = json.dumps(SAMPLE).encode()
FLOOR = "floor"
CASES = ("no-credentials", "api-key", "embed-token", "audit-off")  # the last: a diagnostic


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


class Connection(asyncio.Transport):
    """A keep-alive connection into uvicorn's HTTP protocol (httptools, as ``livedata
    serve`` and the floor's uvicorn pick), in memory: the socket's reads and writes, and the
    kernel's work, are left out; uvicorn's parsing, scope building and writing are in."""

    def __init__(self, app: ASGIApp, server_header: bool) -> None:
        super().__init__()
        self.app = app
        self.written: list[bytes] = []
        self.answered: asyncio.Future[None] | None = None
        config = Config(
            self.served, interface="asgi3", http="httptools", lifespan="off", log_config=None,
            access_log=False, server_header=server_header,
        )  # fmt: skip
        self.protocol = HttpToolsProtocol(config, ServerState(), {}, asyncio.get_running_loop())
        self.protocol.connection_made(self)

    async def served(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        assert self.answered is not None
        self.answered.set_result(None)

    async def hit(self, request: bytes) -> None:
        self.answered = asyncio.get_running_loop().create_future()
        self.written.clear()
        self.protocol.data_received(request)
        await self.answered

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        addresses = {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 5000)}
        return addresses.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        raise AssertionError("a keep-alive connection closed: " + repr(self.written))


def raw(authorization: str | None) -> bytes:
    """The request of ``scope`` as it crosses the wire."""
    fields = [f"{k.decode().title()}: {v.decode()}" for k, v in scope(authorization)["headers"]]
    return ("POST /query HTTP/1.1\r\n" + "".join(f + "\r\n" for f in fields)).encode() + (
        b"\r\n" + BODY
    )


Hit = Callable[[], Awaitable[Any]]


async def prepare(stack: AsyncExitStack, work: Path) -> dict[str, tuple[Hit, Hit]]:
    """Each case's hit in process and through uvicorn, warmed up until it comes from memory."""
    credentials = access_file(work)
    authorization = {"api-key": credentials["api_key"], "embed-token": credentials["token"]}
    cases: dict[str, tuple[Hit, Hit]] = {}
    for name in CASES:
        settings = Settings(
            cache_dir=work / "cache",
            cache_ttl=3600,
            audit_log="off" if name == "audit-off" else str(work / "audit.log"),
            auth_file=work / "access.toml" if name in authorization else None,
        )
        app = create_app(settings)
        await stack.enter_async_context(app.router.lifespan_context(app))
        request = scope(authorization.get(name))
        for _ in range(3):  # a miss, a hit that remembers the body, a hit from memory
            sent = await hit(app, request)
        start = dict(sent[0]["headers"])
        assert start[b"cache-status"] == b"livedata; hit", (name, sent[0])
        connection = Connection(app, server_header=False)  # as ``livedata serve`` runs it
        wire = raw(authorization.get(name))
        await connection.hit(wire)
        assert b"cache-status: livedata; hit" in connection.written[0], connection.written
        cases[name] = (
            lambda app=app, request=request: hit(app, request),
            lambda connection=connection, wire=wire: connection.hit(wire),
        )
    floor = floor_app(sent[1]["body"])
    connection = Connection(floor, server_header=True)  # as bench/cache_hits.py runs it
    cases[FLOOR] = (lambda: hit(floor, scope(None)), lambda: connection.hit(raw(None)))
    return cases


async def run(profile: str | None, order: Path | None) -> None:
    work = Path(tempfile.mkdtemp(prefix="livedata-instructions-"))
    async with AsyncExitStack() as stack:
        stack.callback(shutil.rmtree, work)  # last: after the apps have shut down
        cases = await prepare(stack, work)
        writer = audit.configure(str(work / "audit.log"))
        assert writer is not None
        if profile is not None:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(5000):
                await cases[profile][0]()
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
            return
        for answers in cases.values():
            for answer in answers:
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


def measure() -> dict[str, tuple[float, float]]:
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
    # Dump 1 is start-up; then each case's hits in process, then through uvicorn.
    return {
        name: (totals[2 * i + 2] / HITS, totals[2 * i + 3] / HITS) for i, name in enumerate(names)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", choices=[*CASES, FLOOR], help="cProfile 5,000 hits in process")
    parser.add_argument("--inner", type=Path, help=argparse.SUPPRESS)  # under valgrind
    args = parser.parse_args()
    if args.profile or args.inner:
        asyncio.run(run(args.profile, args.inner))
        return
    print("running the cases under callgrind (~3 min)...", flush=True)
    per_hit = measure()
    floor_asgi, floor_uvicorn = per_hit[FLOOR]
    print(f"instructions per hit ({HITS} hits a case); floor/livedata: the ratio of throughputs")
    print(f"{'case':<16} {'in process':>11} {'floor/it':>9} {'via uvicorn':>12} {'floor/it':>9}")
    for name, (asgi, uvicorn) in per_hit.items():
        print(
            f"{name:<16} {asgi:>11,.0f} {floor_asgi / asgi:>9.2f}"
            f" {uvicorn:>12,.0f} {floor_uvicorn / uvicorn:>9.2f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "hit_instructions.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": "hit_instructions",
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "hits": HITS,
                "instructions_per_hit": {
                    name: {"in_process": asgi, "via_uvicorn": uvicorn}
                    for name, (asgi, uvicorn) in per_hit.items()
                },
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
