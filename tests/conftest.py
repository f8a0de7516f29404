"""Shared fixtures: real databases (skipped with a reason on a laptop, failures under CI=true)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from livedata.auth.caller import ANONYMOUS, Caller
from livedata.cache.entries import EntryHeader
from livedata.catalog import Catalog
from livedata.encoders.registry import ENCODERS
from livedata.plan import QueryRequest
from livedata.results import LiveResult
from livedata.service import QueryService
from livedata.settings import Settings
from livedata.web.app import create_app
from tests.cli_server import CliServer
from tests.samples import Sample, sample_loader

IN_CI = os.environ.get("CI", "").lower() == "true"
_skipped: list[str] = []


def require_service(what: str, check: Callable[[], object]) -> None:
    """Skip (or, under CI=true, fail) the test when a real service does not answer."""
    try:
        check()
    except Exception as exc:
        reason = f"{what} does not answer ({type(exc).__name__}: {exc}); start it to run this test"
        if IN_CI:
            pytest.fail(f"CI=true needs every integration service: {reason}")
        pytest.skip(reason)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Under CI a skipped test is a test that did not prove anything: fail the run.
    if IN_CI and _skipped:
        print(f"\nCI=true: {len(_skipped)} test(s) skipped, which CI treats as failure:")
        for nodeid in _skipped:
            print(f"  {nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def sample_of(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Sample]:
    """Sources of each kind holding the sample tables, each loaded once per session."""
    return sample_loader(tmp_path_factory.mktemp("samples"), require_service)


@pytest.fixture(scope="session")
def serve_app() -> Iterator[Callable[[FastAPI], str]]:
    """Serve an app with real uvicorn on a socket bound to port 0; return its base URL.

    The socket is listening before the server thread starts, so a client may connect at
    once: the kernel queues the connection until uvicorn accepts it. No readiness polling.
    """
    started: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: FastAPI) -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        started.append((server, thread))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for server, thread in started:
        server.should_exit = True
        thread.join()


@pytest.fixture(scope="session")
def serve(
    tmp_path_factory: pytest.TempPathFactory, serve_app: Callable[[FastAPI], str]
) -> Callable[..., str]:
    """Start real servers of livedata's app (see ``serve_app``); return their base URLs.
    Each server gets its own cache directory unless ``cache_dir`` is given."""

    def start(
        catalog: Catalog | None = None, clock: Callable[[], float] = time.time, **settings: object
    ) -> str:
        settings.setdefault("cache_dir", tmp_path_factory.mktemp("cache"))
        return serve_app(create_app(Settings(**settings), catalog, clock))  # type: ignore[arg-type]

    return start


@pytest.fixture(scope="session")
def base_url(serve: Callable[..., str]) -> str:
    """The out-of-the-box service: bundled catalog, embedded DuckDB."""
    return serve()


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        yield http


@pytest.fixture
def cli_server() -> Iterator[Callable[..., CliServer]]:
    """Start the real command line, `livedata serve`, and wait until every worker is ready.

    Readiness is read from stderr: uvicorn says "Application startup complete." once per
    worker (after the cache has removed its leftovers) and "Uvicorn running on" once it
    listens. Whatever is still running at the end of the test is killed.
    """
    started: list[CliServer] = []

    def start(cache_dir: Path, *args: str, workers: int = 1, **env: str) -> CliServer:
        server = CliServer(cache_dir, list(args), workers, env)
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.kill()


async def answer(
    service: QueryService, request: QueryRequest, caller: Caller = ANONYMOUS
) -> EntryHeader:
    """Run ``request`` through the service as the web layer would (a live body read to its
    end, a stored miss awaited until committed); the header of what was answered."""
    result = await service.run(request, ENCODERS["json"], caller=caller)
    if not isinstance(result, LiveResult):
        return result.header
    async for _ in result.body:
        pass
    if result.stored is not None:
        await result.stored()
    return result.header()
