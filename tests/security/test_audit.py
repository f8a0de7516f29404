"""The audit log: one JSON line per request, hot path included, with no secret in it."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import pytest

from livedata.web.tracing import MAX_REQUEST_ID


class _Written(logging.Handler):
    """Wakes the test once the lines of given requests are written. A line is written after
    its response is sent, so a client can hold a response whose line does not exist yet."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.changed:
            self.ids.add(orjson.loads(record.getMessage())["request_id"])
            self.changed.notify_all()

    def wait_for(self, ids: set[str]) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: ids <= self.ids, timeout=60), ids - self.ids


@contextmanager
def _watching_audit_lines() -> Iterator[_Written]:
    """Added after the server's own handler, so it runs once the line is in the file."""
    written = _Written()
    logging.getLogger("livedata.audit").addHandler(written)
    try:
        yield written
    finally:
        logging.getLogger("livedata.audit").removeHandler(written)


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
