"""The audit log: one JSON line per request, hot path included, with no secret in it."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from livedata.web import audit
from livedata.web.tracing import MAX_REQUEST_ID
from tests.cli_server import CliServer
from tests.scrape import Scrape


class _Written:
    """Wakes the test once the lines of given requests are written. A line is written after
    its response is sent, so a client can hold a response whose line does not exist yet."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.changed = threading.Condition()

    def __call__(self, lines: list[bytes]) -> None:
        with self.changed:
            self.lines += map(orjson.loads, lines)
            self.changed.notify_all()

    def wait_for(self, ids: set[str]) -> None:
        def written() -> set[str]:
            return {line["request_id"] for line in self.lines}

        with self.changed:
            assert self.changed.wait_for(lambda: ids <= written(), timeout=60), ids - written()


@contextmanager
def _watching_audit_lines() -> Iterator[_Written]:
    """Told of each batch once it is in the file."""
    writer = audit._writer
    assert writer is not None
    written = _Written()
    writer.listeners.append(written)
    try:
        yield written
    finally:
        writer.listeners.remove(written)


def test_one_line_per_request_and_no_secrets(serve: Callable[..., str], tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    url = serve(audit_log=str(log))
    with _watching_audit_lines() as written:
        responses = _requests(url)
        written.wait_for({r.headers["x-request-id"] for r in responses})
    text = log.read_text()
    assert "s3cret-token-value" not in text
    assert "Oceania" not in text  # parameters appear as a digest, never as values
    lines = {line["request_id"]: line for line in map(orjson.loads, text.splitlines())}
    miss, hit, hot, missing, health = (lines[r.headers["x-request-id"]] for r in responses)
    assert miss["cache"] == "miss"
    assert miss["cost"]["queries"] == 1
    assert miss["source_ms"] > 0
    assert hit["cache"] == hot["cache"] == "hit"
    assert hot["cost"] == {"queries": 0, "source_seconds": 0.0}
    for line in (miss, hit, hot):
        assert line["query"] == "countries_by_region"
        assert line["caller"] == "anonymous"
        assert line["status"] == 200
        assert line["rows"] == miss["rows"] > 0
        assert line["params_digest"] == miss["params_digest"]
        assert line["duration_ms"] >= 0
    assert missing["status"] == 404
    assert missing["error"] == "not_found"
    assert missing["table"] == "nowhere"
    assert health["path"] == "/health"
    assert health["status"] == 200


def _requests(url: str) -> list[httpx.Response]:
    body = {"query": "countries_by_region", "params": {"region": "Oceania", "min_population": 1}}
    responses = [httpx.post(f"{url}/query", json=body) for _ in range(3)]  # miss, hit, hot hit
    responses.append(
        httpx.post(
            f"{url}/query",
            json={"table": "nowhere"},
            headers={"Authorization": "Bearer s3cret-token-value"},
        )
    )
    responses.append(httpx.get(f"{url}/health"))
    return responses


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        pytest.param("lb-7f3a.19:2/x+y=", True, id="safe-charset"),
        pytest.param("0f8fad5b-d9cb-469f-a165-70867728950e", True, id="uuid"),
        pytest.param("a" * MAX_REQUEST_ID, True, id="longest"),
        pytest.param("a" * (MAX_REQUEST_ID + 1), False, id="too-long"),
        pytest.param('x"}, "caller": "admin', False, id="forges-json"),
        pytest.param("two words", False, id="space"),
        pytest.param("", False, id="empty"),
    ],
)
def test_an_incoming_request_id_is_kept_when_safe(
    serve: Callable[..., str], tmp_path: Path, given: str, kept: bool
) -> None:
    log = tmp_path / "audit.jsonl"
    url = serve(audit_log=str(log))
    with _watching_audit_lines() as written:
        missing = httpx.post(
            f"{url}/query", json={"table": "nowhere"}, headers={"X-Request-Id": given}
        )
        written.wait_for({missing.headers["x-request-id"]})
    answered = missing.headers["x-request-id"]
    assert (answered == given) is kept
    assert re.fullmatch(r"[A-Za-z0-9._:+/=-]{1,128}", answered)
    assert missing.json()["error"]["request_id"] == answered
    (line,) = map(orjson.loads, log.read_text().splitlines())
    assert line["request_id"] == answered


@pytest.mark.parametrize(
    ("given", "logged"),
    [
        pytest.param(TRACEPARENT, TRACEPARENT, id="version-00"),
        pytest.param(f"cc{TRACEPARENT[2:]}-future", f"cc{TRACEPARENT[2:]}-future", id="later"),
        pytest.param(f"{TRACEPARENT}-extra", None, id="00-with-extra-field"),
        pytest.param(f"ff{TRACEPARENT[2:]}", None, id="version-ff"),
        pytest.param(TRACEPARENT.upper(), None, id="upper-case"),
        pytest.param(f"00-{'0' * 32}-00f067aa0ba902b7-01", None, id="zero-trace-id"),
        pytest.param(f"00-4bf92f3577b34da6a3ce929d0e0e4736-{'0' * 16}-01", None, id="zero-parent"),
        pytest.param("00-4bf92f35-00f067aa0ba902b7-01", None, id="short-trace-id"),
    ],
)
def test_a_valid_traceparent_reaches_the_audit_line(
    serve: Callable[..., str], tmp_path: Path, given: str, logged: str | None
) -> None:
    log = tmp_path / "audit.jsonl"
    url = serve(audit_log=str(log))
    with _watching_audit_lines() as written:
        health = httpx.get(f"{url}/health", headers={"traceparent": given})
        written.wait_for({health.headers["x-request-id"]})
    (line,) = map(orjson.loads, log.read_text().splitlines())
    assert line["traceparent"] == logged


def _at_once(url: str, count: int) -> list[httpx.Response]:
    """``count`` hits sent together (a barrier), each on a connection of its own."""
    barrier = threading.Barrier(count)
    responses: list[httpx.Response] = []

    def one() -> None:
        barrier.wait()
        responses.append(httpx.post(f"{url}/query", json={"table": "world_country_list"}))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in responses] == [200] * count
    return responses


def test_every_line_is_written_under_concurrent_requests(
    serve: Callable[..., str], tmp_path: Path
) -> None:
    log = tmp_path / "audit.jsonl"
    url = serve(audit_log=str(log))
    with _watching_audit_lines() as written:
        responses = [*_at_once(url, 2), *_at_once(url, 48)]  # then on the fast path
        ids = {r.headers["x-request-id"] for r in responses}
        written.wait_for(ids)
    logged = [orjson.loads(line)["request_id"] for line in log.read_text().splitlines()]
    assert sorted(logged) == sorted(ids)


def test_a_slow_destination_makes_requests_wait_never_drops_a_line(
    serve: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The destination is a pipe nobody reads until the queue has filled: writes block as
    they would on a stalled disk or a stuck log collector."""
    monkeypatch.setattr(audit, "QUEUE_LINES", 2)
    monkeypatch.setattr(audit, "_writer", None)  # a writer with the small queue
    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so the server may open it
    fcntl.fcntl(reader, fcntl.F_SETPIPE_SZ, 4096)  # the smallest pipe: ~12 lines
    url = serve(audit_log=str(fifo))
    writer = audit._writer
    assert writer is not None
    full = threading.Event()
    count_it = writer.on_full
    writer.on_full = lambda: (count_it(), full.set())
    sent: list[httpx.Response] = []
    requests = threading.Thread(target=lambda: sent.extend(_at_once(url, 40)))
    requests.start()
    assert full.wait(timeout=60), "the queue never filled"
    # Only the requests whose lines wait for room wait: the process still answers (its
    # writers once blocked the event loop, and every request with it).
    health = httpx.get(f"{url}/health")
    assert health.status_code == 200
    os.set_blocking(reader, True)
    lines: list[bytes] = []
    with os.fdopen(reader, "rb") as pipe:
        while len(lines) < 41:
            lines.append(pipe.readline())
        requests.join()
        scrape = httpx.get(f"{url}/metrics").text
        audit.configure("off")  # closes the pipe's write end once its lines are written
        lines += pipe.read().splitlines()
    assert {orjson.loads(line)["request_id"] for line in lines[:41]} == {
        r.headers["x-request-id"] for r in [*sent, health]
    }
    assert len(lines) == 42  # and the scrape's own
    (waits,) = (
        s.value
        for family in text_string_to_metric_families(scrape)
        for s in family.samples
        if s.name == "livedata_audit_queue_full_total"
    )
    assert waits >= 1


def test_a_batch_is_written_in_whole_lines_of_at_most_pipe_buf() -> None:
    """Writes that small never interleave with another worker's in a shared stderr pipe."""
    lines = [b"x" * 999 + b"\n"] * 9 + [b"y" * 5000 + b"\n", b"z\n"]
    chunks = [b"".join(chunk) for chunk in audit._atomic_chunks(lines, select.PIPE_BUF)]
    assert b"".join(chunks) == b"".join(lines)
    assert [len(chunk) for chunk in chunks] == [4000, 4000, 1000, 5001, 2]


class _Lost:
    """Wakes the test once ``count`` lines were reported lost (wraps the writer's hook)."""

    def __init__(self, writer: audit.AuditWriter) -> None:
        self.count = 0
        self.changed = threading.Condition()
        self._counted = writer.on_lost
        writer.on_lost = self

    def __call__(self, lines: int) -> None:
        self._counted(lines)
        with self.changed:
            self.count += lines
            self.changed.notify_all()

    def wait_for(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.count >= count, timeout=60), self.count


def test_a_destination_that_fails_loses_lines_says_so_and_the_writer_goes_on(
    serve: Callable[..., str], tmp_path: Path
) -> None:
    """/dev/full fails every write with ENOSPC, as a full disk does. The writer's thread
    once died on the first failed write: every later line stayed queued, a full queue then
    blocked every request, and shutdown (which waits for queued lines) never ended. Lines
    that cannot be written are counted as lost, /ready says why, and the next line that can
    be written is."""
    url = serve(audit_log="/dev/full")
    writer = audit._writer
    assert writer is not None
    lost = _Lost(writer)
    _at_once(url, 24)
    lost.wait_for(24)
    drained = threading.Thread(target=writer.drain, daemon=True)
    drained.start()
    drained.join(timeout=60)
    assert not drained.is_alive(), "lines queued after a failed write are never handled"
    assert Scrape(url).total("livedata_audit_lines_lost_total") >= 24
    ready = httpx.get(f"{url}/ready").json()
    assert ready["status"] == "degraded"
    assert "No space left on device" in ready["audit_log"]

    log = tmp_path / "audit.jsonl"
    audit.configure(str(log))  # as if the disk had room again
    with _watching_audit_lines() as written:
        again = httpx.post(f"{url}/query", json={"table": "world_country_list"})
        written.wait_for({again.headers["x-request-id"]})
    ready = httpx.get(f"{url}/ready").json()
    assert ready["status"] == "ok"
    assert ready["audit_log"] == "ok"


def test_a_server_whose_audit_log_fails_still_answers_and_shuts_down(
    cli_server: Callable[..., CliServer], tmp_path: Path
) -> None:
    server = cli_server(tmp_path / "cache", LIVEDATA_AUDIT_LOG="/dev/full")
    _at_once(server.url, 16)
    server.stop()  # SIGTERM; killed (SIGKILL) after a bound if it does not end
    # uvicorn raises the signal it got again once its shutdown is complete
    assert server.process.returncode == -signal.SIGTERM, "".join(server.log)
    assert any("Application shutdown complete." in line for line in server.log)
    failures = [line for line in server.log if "audit log" in line and "No space left" in line]
    assert len(failures) == 1, "".join(server.log)  # once per streak, not once per line
