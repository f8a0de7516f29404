"""An HTTP cache in front: `GET /query` answers are kept by nginx's `proxy_cache`."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson

from tests.cli_server import CliServer
from tests.cluster.conftest import BOUND, wait_until
from tests.scrape import Scrape

CLIENTS = 16
BODY = {"limit": 20, "table": "world_country_list"}


def gets_answered(node: str) -> float:
    """`GET /query` requests the node answered, from its own metrics."""
    requests = "livedata_http_request_duration_seconds_count"
    return Scrape(node)(requests, method="GET", path="/query", status="200")


def test_identical_gets_behind_nginx_reach_livedata_once(
    tmp_path: Path, cli_server: Callable[..., CliServer], balancer: Callable[..., str]
) -> None:
    node = cli_server(tmp_path / "cache")
    front = balancer([node.url], cache=True)
    q = {"q": orjson.dumps(BODY, option=orjson.OPT_SORT_KEYS).decode()}
    release = threading.Barrier(CLIENTS)

    def get(_: int) -> httpx.Response:
        release.wait()  # every client asks at once
        return httpx.get(f"{front}/query", params=q, timeout=BOUND)

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(get, range(CLIENTS)))
    assert {a.status_code for a in answers} == {200}
    assert all(a.json()["rows"] == answers[0].json()["rows"] for a in answers)
    assert len(answers[0].json()["rows"]) == 20
    assert Counter(a.headers["x-cache"] for a in answers) == {"MISS": 1, "HIT": CLIENTS - 1}
    wait_until(lambda: gets_answered(node.url) or 1 / 0, "the node counting its answer")
    assert gets_answered(node.url) == 1
