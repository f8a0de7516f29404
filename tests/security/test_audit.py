"""The audit log: one JSON line per request, hot path included, with no secret in it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson


def test_one_line_per_request_and_no_secrets(serve: Callable[..., str], tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    url = serve(audit_log=str(log))
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
    text = logged(log, [r.headers["x-request-id"] for r in responses])
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


def logged(log: Path, request_ids: list[str]) -> str:
    """The log once it has a line for each request: a line is written once the response
    is sent, so the client may read the response a moment before."""
    deadline = time.monotonic() + 30
    while not all(f'"request_id":"{rid}"' in (text := log.read_text()) for rid in request_ids):
        assert time.monotonic() < deadline, text
        time.sleep(0.01)  # polling a file another thread appends to, within the bound
    return text
