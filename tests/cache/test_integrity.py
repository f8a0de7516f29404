"""Crash safety and integrity: kill -9 mid-write never leads to a wrong body; damaged entries
and bodies are misses, replaced, and never served for another entry. Real `livedata serve`
processes, real files."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from livedata.cache.store import MAGIC
from tests.cache.conftest import leftovers
from tests.cache.traffic import BOUND, HIT, STORED, Body, Clock, ask, same_data
from tests.cli_server import CliServer


def crash_round(round_: int) -> list[tuple[Body, dict[str, str]]]:
    """Distinct cold requests for one round: large results in every format, and small ones."""
    lineitem: Body = {
        "table": "tpch_lineitem",
        "order_by": [{"column": "l_orderkey"}, {"column": "l_linenumber"}],
    }
    large = [
        ({**lineitem, "limit": 4000 + 10 * round_ + i, "format": fmt}, headers)
        for i, (fmt, headers) in enumerate(
            [
                ("json", {"accept-encoding": "identity"}),
                ("json", {"accept-encoding": "gzip"}),
                ("csv", {"accept-encoding": "identity"}),
                ("arrow", {"accept-encoding": "gzip"}),
                ("parquet", {"accept-encoding": "identity"}),
            ]
        )
    ]
    small: list[tuple[Body, dict[str, str]]] = [
        (
            {
                "query": "countries_by_region",
                "params": {"region": region, "min_population": 1000 * round_ + 1},
            },
            {},
        )
        for region in ("Europe", "Asia", "Africa")
    ]
    return large + small


class Killer:
    """SIGKILLs a server the moment a file shows up in its cache's ``tmp/``: mid-write."""

    def __init__(self, server: CliServer, tmp: Path) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, args=(server, tmp), daemon=True)
        self.thread.start()

    def _watch(self, server: CliServer, tmp: Path) -> None:
        while not self.stop.is_set():
            with os.scandir(tmp) as files:
                if any(files):
                    server.process.send_signal(signal.SIGKILL)
                    return

    def join(self) -> None:
        self.stop.set()
        self.thread.join()


def crash_during(
    server: CliServer, asks: list[tuple[Body, dict[str, str]]], after: int, cache_dir: Path
) -> list[tuple[Body, httpx.Response]]:
    """Send ``asks`` at once and kill -9 the server after ``after`` responses (0: at the
    first write). Returns the responses that arrived before the kill."""

    async def send(client: httpx.AsyncClient, body: Body, headers: dict[str, str]) -> Any:
        return body, await client.post("/query", json=body, headers=headers)

    async def run() -> list[tuple[Body, httpx.Response]]:
        answered: list[tuple[Body, httpx.Response]] = []
        killer = Killer(server, cache_dir / "tmp") if after == 0 else None
        async with httpx.AsyncClient(base_url=server.url, timeout=BOUND) as client:
            pending = {asyncio.ensure_future(send(client, b, h)) for b, h in asks}
            while pending and (killer is not None or len(answered) < after):
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if not isinstance(task.exception(), httpx.TransportError):
                        answered.append(task.result())  # else the kill cut it off: unanswered
            if killer is not None:
                killer.join()
            server.kill()
            await asyncio.gather(*pending, return_exceptions=True)
        return answered

    return asyncio.run(run())


def test_kill_9_never_leads_to_a_wrong_body(
    tmp_path: Path, cli_server: Callable[..., CliServer], reference: Callable[[Body], Any]
) -> None:
    rounds = 20
    cache_dir = tmp_path / "cache"
    checked: list[tuple[Body, dict[str, str]]] = []
    for round_ in range(rounds + 1):
        server = cli_server(cache_dir)
        assert leftovers(cache_dir) == [], f"round {round_}: tmp/ not cleaned at start-up"
        for body, headers in checked:  # the last round's requests, after its crash
            response = ask(server.url, body, **headers)
            assert response.status_code == 200, (round_, body, response.text)
            assert same_data(response) == reference(body), (round_, body, headers)
        if round_ == rounds:
            break
        asks = crash_round(round_)
        answered = crash_during(server, asks, round_ % (len(asks) + 1), cache_dir)
        for body, response in answered:
            assert response.status_code == 200, (round_, body, response.text)
            assert same_data(response) == reference(body), (round_, body)
        # A half write by a writer that is gone. A fixed pid (4242) was once alive on this
        # machine, and start-up rightly kept a live writer's file: the test failed.
        (cache_dir / "tmp" / f"entry.{gone_pid()}.1").write_bytes(MAGIC + b"half a write")
        checked = asks


def gone_pid() -> int:
    """The pid of a process that has ended (reaped: no other takes it this soon)."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    return ended.pid


def damage_flip_payload(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def damage_flip_header(data: bytes) -> bytes:
    inside = len(MAGIC) + 4 + 3  # a byte of the JSON header
    return data[:inside] + bytes([data[inside] ^ 0x01]) + data[inside + 1 :]


def damage_truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def damage_foreign(data: bytes) -> bytes:
    return (b"PK\x03\x04" + bytes(range(256)) * (len(data) // 256 + 1))[: len(data)]


def damage_empty(data: bytes) -> bytes:
    return b""


# (damage, a number that makes each case's request, so its entry, its own)
DAMAGES = [
    pytest.param(damage_flip_payload, 1, id="flipped-payload-byte"),
    pytest.param(damage_flip_header, 2, id="flipped-header-byte"),
    pytest.param(damage_truncate, 3, id="truncated"),
    pytest.param(damage_foreign, 4, id="foreign-bytes"),
    pytest.param(damage_empty, 5, id="empty"),
]


@pytest.fixture(scope="module")
def integrity(
    serve: Callable[..., str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    cache_dir = tmp_path_factory.mktemp("integrity")
    return serve(cache_dir=cache_dir), cache_dir


def _files(cache_dir: Path, pattern: str) -> set[Path]:
    return set(cache_dir.glob(pattern))


def integrity_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The files the cache logged as failing their check (and removed)."""
    return [
        str(r.args[0])  # type: ignore[index]
        for r in caplog.records
        if r.name == "livedata.cache" and "integrity check" in r.getMessage()
    ]


@pytest.mark.parametrize(("damage", "case"), DAMAGES)
def test_a_damaged_entry_is_a_miss_and_is_replaced(
    integrity: tuple[str, Path],
    reference: Callable[[Body], Any],
    damage: Callable[[bytes], bytes],
    case: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, cache_dir = integrity
    body = {"table": "tpch_lineitem", "limit": 500 + case}
    before = _files(cache_dir, "entries/*/*.entry")
    assert ask(url, body).headers["cache-status"] == STORED
    (entry,) = _files(cache_dir, "entries/*/*.entry") - before
    damaged = damage(entry.read_bytes())
    entry.write_bytes(damaged)

    with caplog.at_level(logging.WARNING, logger="livedata.cache"):
        again = ask(url, body)

    assert integrity_failures(caplog) == [entry.name]
    assert again.headers["cache-status"] == STORED
    assert same_data(again) == reference(body)
    assert entry.read_bytes() != damaged
    third = ask(url, body)
    assert third.headers["cache-status"] == HIT
    assert third.content == again.content


@pytest.mark.parametrize(("damage", "case"), DAMAGES)
def test_a_damaged_stored_body_is_encoded_again(
    integrity: tuple[str, Path],
    damage: Callable[[bytes], bytes],
    case: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, cache_dir = integrity
    body = {"table": "tpch_lineitem", "limit": 600 + case}
    plain = {"accept-encoding": "identity"}  # so the stored body is the bytes sent
    first = ask(url, body, **plain)
    key = first.headers["etag"].removeprefix('W/"').split(".")[0]
    (stored,) = (cache_dir / "bodies" / key[:2]).glob(f"{key}.*.json")  # <key>.<version>.json
    assert stored.read_bytes().endswith(first.content)
    damaged = damage(stored.read_bytes())
    stored.write_bytes(damaged)

    with caplog.at_level(logging.WARNING, logger="livedata.cache"):
        # A Cache-Control header takes the path that reads files: the memory fast path keeps
        # serving the verified bytes it holds, and never reads the damaged file at all.
        again = ask(url, body, **plain, **{"cache-control": "max-age=86400"})

    assert integrity_failures(caplog) == [stored.name]
    assert again.headers["cache-status"] == HIT  # the entry is sound; only its body was not
    assert again.content == first.content
    assert stored.read_bytes() != damaged
    assert stored.read_bytes().endswith(first.content)


def test_a_body_is_never_served_for_another_entry(
    serve: Callable[..., str], reference: Callable[[Body], Any]
) -> None:
    """Two requests whose rows happen to be equal, fetched at the same instant."""
    clock = Clock()
    url = serve(None, clock)
    one, two = (
        {"query": "countries_by_region", "params": {"region": "Oceania", "min_population": n}}
        for n in (1, 2)
    )
    first, second = ask(url, one), ask(url, two)
    assert first.json()["rows"] == second.json()["rows"]  # the precondition: the same rows

    assert second.json()["meta"]["params"] == {"region": "Oceania", "min_population": 2}
    assert same_data(second) == reference(two)
