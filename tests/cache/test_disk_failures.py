"""A failing cache disk never costs a client a row: full, filling up mid-write, read-only,
at start-up or later. Real file systems: a small tmpfs, folders made immutable."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cache.conftest import leftovers
from tests.cache.traffic import BOUND, STORED, Body, ask, fire, same_data
from tests.conftest import require_service

LINEITEM: Body = {
    "table": "tpch_lineitem",
    "order_by": [{"column": "l_orderkey"}, {"column": "l_linenumber"}],
}
WAITERS = 8  # identical requests released together


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """``make(size)``: a tmpfs of that size (``1m``: room for the SQLite index, no more),
    unmounted at the end (lazily: a server may still hold files there)."""
    mounted: list[Path] = []

    def make(size: str) -> Path:
        where = tmp_path / f"tmpfs-{len(mounted)}"
        where.mkdir()
        require_service(
            "mount (root, to mount a small tmpfs)",
            lambda: _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)),
        )
        mounted.append(where)
        return where

    yield make
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=True)


def fill(folder: Path) -> None:
    """Write zeros until the file system says it is full."""
    with pytest.raises(OSError, match="No space left on device"):
        (folder / "filler").write_bytes(bytes(64 << 20))  # more than the file system holds


def test_a_full_disk_still_serves_every_request(
    serve: Callable[..., str],
    tmpfs: Callable[[str], Path],
    reference: Callable[[Body], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache_dir = tmpfs("1m")
    url = serve(cache_dir=cache_dir)
    fill(cache_dir)
    bodies = [{"table": "tpch_lineitem", "limit": n} for n in (100, 200, 300)]

    with caplog.at_level(logging.ERROR, logger="livedata.cache"):
        responses = [ask(url, body) for body in bodies * 2]

    for body, response in zip(bodies * 2, responses, strict=True):
        assert response.status_code == 200, response.text
        assert same_data(response) == reference(body)
        assert response.headers["cache-control"] == "no-store"
    failures = [r for r in caplog.records if "cache write failed" in r.getMessage()]
    assert len(failures) == 1  # six failed writes, one log line (at most one a minute)
    assert leftovers(cache_dir) == []  # each failed write removed its temporary file
    assert list(cache_dir.glob("entries/*/*")) == []
    for response in responses:  # RFC 9211: "stored" would say the cache kept the response
        status = response.headers["cache-status"].split("; ")
        assert "fwd=miss" in status
        assert "stored" not in status, response.headers["cache-status"]


@pytest.mark.parametrize(
    ("body", "size"),
    [
        pytest.param({"table": "tpch_lineitem", "limit": 3000}, "1m", id="small-json-full"),
        pytest.param({**LINEITEM, "format": "json"}, "1m", id="120k-json-full"),
        pytest.param({**LINEITEM, "format": "ndjson"}, "1m", id="120k-ndjson-full"),
        pytest.param({**LINEITEM, "format": "json"}, "4m", id="120k-json-fills-mid-write"),
        pytest.param({**LINEITEM, "format": "ndjson"}, "4m", id="120k-ndjson-fills-mid-write"),
    ],
)
def test_identical_requests_released_together_on_a_failing_disk_each_get_every_row(
    serve: Callable[..., str],
    tmpfs: Callable[[str], Path],
    reference: Callable[[Body], Any],
    body: Body,
    size: str,
) -> None:
    """Whoever joins a fetch whose result the disk refused gets the rows too, never a
    short or empty 200 (they once shared one single-use stream)."""
    cache_dir = tmpfs(size)
    url = serve(cache_dir=cache_dir)
    if size == "1m":
        fill(cache_dir)  # else the index fits, and the result's entry does not

    responses = fire(url, [body] * WAITERS, WAITERS, **{"accept-encoding": "identity"})

    expected = reference(body)
    for response in responses:
        assert response.status_code == 200, response.text
        assert same_data(response) == expected, response.headers["cache-status"]
    assert leftovers(cache_dir) == []


CACHE_FOLDERS = ("entries", "bodies", "tmp", "locks")


@pytest.fixture
def immutable_later(tmp_path: Path) -> Iterator[Callable[[Path], None]]:
    """Make a cache's folders immutable (``chattr +i``: nothing can be created in them, not
    even by root); undone at the end. A read-only bind remount is refused (EBUSY) while the
    server holds its SQLite index open for writing, and ``chmod`` does not stop root."""
    frozen: list[Path] = []
    probe = tmp_path / "probe"
    probe.mkdir()
    require_service(
        "chattr (root, on a file system with the immutable flag)", lambda: _chattr("+i", probe)
    )
    _chattr("-i", probe)

    def freeze(cache_dir: Path) -> None:
        """The cache's folders, or the directory itself when it holds none yet."""
        folders = [cache_dir / n for n in CACHE_FOLDERS if (cache_dir / n).exists()]
        for folder in folders or [cache_dir]:
            _chattr("+i", folder)
            frozen.append(folder)

    yield freeze
    for folder in frozen:
        _chattr("-i", folder)


def _chattr(flag: str, path: Path) -> None:
    subprocess.run(["chattr", flag, str(path)], check=True, capture_output=True)


def test_a_read_only_cache_dir_still_serves(
    serve: Callable[..., str],
    tmp_path: Path,
    immutable_later: Callable[[Path], None],
    reference: Callable[[Body], Any],
) -> None:
    cache_dir = tmp_path / "cache"
    url = serve(cache_dir=cache_dir)
    immutable_later(cache_dir)  # as when the kernel turns a failing disk read-only
    body = {"table": "world_country_list", "limit": 7}

    response = ask(url, body)

    assert response.status_code == 200, response.text
    assert same_data(response) == reference(body)
    assert response.headers["cache-control"] == "no-store"


def test_a_server_started_on_a_full_disk_serves_uncached_and_says_so(
    serve: Callable[..., str],
    tmpfs: Callable[[str], Path],
    reference: Callable[[Body], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache_dir = tmpfs("1m")
    fill(cache_dir)  # before start-up: the index cannot be made

    with caplog.at_level(logging.WARNING, logger="livedata.cache"):
        url = serve(cache_dir=cache_dir)
        body = {"table": "world_country_list", "limit": 7}
        responses = [ask(url, body) for _ in range(3)]

    for response in responses:
        assert response.status_code == 200, response.text
        assert same_data(response) == reference(body)
        assert response.headers["cache-control"] == "no-store"
    warnings = [r for r in caplog.records if "cannot be used" in r.getMessage()]
    assert len(warnings) == 1  # once, not per request
    ready = httpx.get(f"{url}/ready").json()
    assert ready["status"] == "ok"  # the node still answers
    assert "cannot be used" in ready["cache"]
    assert "livedata_cache_available 0.0" in httpx.get(f"{url}/metrics").text


def test_a_server_started_on_a_read_only_disk_serves_then_caches_once_it_can(
    serve: Callable[..., str],
    tmp_path: Path,
    immutable_later: Callable[[Path], None],
    reference: Callable[[Body], Any],
) -> None:
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    immutable_later(cache_dir)  # nothing can be made in it
    url = serve(cache_dir=cache_dir, cache_maintenance_interval=0.05)
    body = {"table": "world_country_list", "limit": 8}

    response = ask(url, body)

    assert response.status_code == 200, response.text
    assert same_data(response) == reference(body)
    assert "cannot be used" in httpx.get(f"{url}/ready").json()["cache"]
    _chattr("-i", cache_dir)  # the disk recovers: the next upkeep round opens the cache
    deadline = time.monotonic() + BOUND
    while httpx.get(f"{url}/ready").json()["cache"] != "ok":
        assert time.monotonic() < deadline, "the cache was never opened again"
        time.sleep(0.05)  # polling the server's report within the bound
    assert ask(url, body).headers["cache-status"] == STORED
    assert ask(url, body).headers["cache-status"] == "livedata; hit"
