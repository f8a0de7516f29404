"""The audit log: one JSON line per request, hot path included, with no secret in it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson


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
