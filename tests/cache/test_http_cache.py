"""The result cache as a browser sees it: hits, keys, freshness, HTTP caching headers.

Time is a settable clock handed to the server, so expiry is tested without sleeping.
"""

from __future__ import annotations

import gzip
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from livedata.catalog import load_catalog
from livedata.settings import BUNDLED_CATALOG
from tests.cache.traffic import Clock, revalidate

REGION = {"query": "countries_by_region", "params": {"region": "Europe"}}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def url(serve: Callable[..., str], clock: Clock) -> str:
    catalog = load_catalog(BUNDLED_CATALOG)
    queries = dict(catalog.queries)
    queries["countries_by_region"] = queries["countries_by_region"].model_copy(
        update={"ttl": 60.0, "stale_while_revalidate": 30.0, "stale_if_error": 600.0}
    )
    queries["uncached"] = queries["country"].model_copy(update={"ttl": 0.0})
    return serve(
        catalog.model_copy(update={"queries": queries}), clock, cache_revalidate_interval=10
    )


def ask(url: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/query", json=body, headers=headers, timeout=30)


def status(response: httpx.Response) -> str:
    return response.headers["cache-status"]


def test_miss_then_hit_with_the_same_bytes(url: str) -> None:
    first = ask(url, REGION)
    second = ask(url, REGION)
    assert status(first) == "livedata; fwd=miss; stored"
    assert status(second) == "livedata; hit"
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    assert second.headers["cache-control"] == "max-age=60"


def test_converted_parameters_share_an_entry(url: str) -> None:
    ask(url, {**REGION, "params": {"region": "Asia", "min_population": 5}})
    again = ask(url, {**REGION, "params": {"region": "Asia", "min_population": "5"}})
    assert status(again) == "livedata; hit"


def test_different_options_are_different_entries(url: str) -> None:
    ask(url, {"table": "world_country_list", "limit": 3})
    other = ask(url, {"table": "world_country_list", "limit": 4})
    assert status(other) == "livedata; fwd=miss; stored"
    assert len(other.json()["rows"]) == 4


def test_if_none_match_answers_304(url: str) -> None:
    etag = ask(url, REGION).headers["etag"]
    response = revalidate(url, REGION, etag)
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert revalidate(url, REGION, '"other", ' + etag).status_code == 304  # one of a list
    assert revalidate(url, REGION, '"other"').status_code == 200


def test_if_none_match_star_matches_a_cached_result(url: str) -> None:
    body = {"table": "world_country_list", "limit": 9}
    assert revalidate(url, body, "*").status_code == 200  # nothing cached yet: the rows
    assert revalidate(url, body, "*").status_code == 304


def test_a_post_whose_if_none_match_matches_is_412(url: str) -> None:
    """RFC 9110 13.1.2: 304 is for GET and HEAD; any other method gets 412."""
    etag = ask(url, REGION).headers["etag"]
    for tag in (etag, "*"):
        refused = ask(url, REGION, **{"if-none-match": tag})
        assert refused.status_code == 412
        assert refused.json()["error"]["code"] == "precondition_failed"
        assert "GET /query" in refused.json()["error"]["message"]
    assert ask(url, REGION, **{"if-none-match": '"other"'}).status_code == 200


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_content_encoding_is_negotiated(url: str, coding: str) -> None:
    plain = ask(url, REGION, **{"accept-encoding": "identity"}).content
    headers = {"accept-encoding": f"{coding}, identity;q=0.1"}
    with httpx.stream("POST", f"{url}/query", json=REGION, headers=headers) as response:
        raw = b"".join(response.iter_raw())  # undecoded bytes, as they crossed the wire
    assert response.headers["content-encoding"] == coding
    assert response.headers["etag"].endswith(f'.json.{coding}"')
    codec = {"br": "brotli"}.get(coding, coding)
    if coding == "gzip":
        assert gzip.decompress(raw) == plain
    else:
        assert pa.Codec(codec).decompress(raw, len(plain), asbytes=True) == plain


def test_one_entry_answers_every_format(url: str) -> None:
    ask(url, REGION)
    for fmt in ("csv", "arrow", "ndjson", "parquet"):
        response = ask(url, {**REGION, "format": fmt})
        assert status(response) == "livedata; hit", fmt


def test_expired_entry_is_refetched(url: str, clock: Clock) -> None:
    first = ask(url, REGION)
    clock.now += 60 + 30 + 1  # past ttl and stale-while-revalidate
    again = ask(url, REGION)
    assert status(again) == "livedata; fwd=miss; stored"
    assert again.json()["meta"]["fetched_at"] > first.json()["meta"]["fetched_at"]


def test_stale_while_revalidate_answers_at_once(url: str, clock: Clock) -> None:
    first = ask(url, REGION)
    clock.now += 61
    stale = ask(url, REGION)
    assert stale.headers["cache-status"] == "livedata; hit; detail=stale-while-revalidate"
    assert stale.content == first.content
    assert int(stale.headers["age"]) == 61


def test_only_if_cached(url: str) -> None:
    response = ask(
        url, {"table": "world_country_list", "limit": 7}, **{"cache-control": "only-if-cached"}
    )
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "not_cached"


def test_no_cache_revalidates_but_is_throttled(url: str, clock: Clock) -> None:
    ask(url, REGION)
    clock.now += 11
    forced = ask(url, REGION, **{"cache-control": "no-cache"})
    assert status(forced) == "livedata; fwd=miss; stored"
    again = ask(url, REGION, **{"cache-control": "no-cache"})
    assert status(again) == "livedata; hit"  # within the interval: the browser is ignored


def test_client_max_age(url: str, clock: Clock) -> None:
    ask(url, REGION)
    clock.now += 20
    young = ask(url, REGION, **{"cache-control": "max-age=30"})
    assert status(young) == "livedata; hit"
    old = ask(url, REGION, **{"cache-control": "max-age=5"})
    assert status(old) == "livedata; fwd=miss; stored"


def test_ttl_zero_is_never_cached(url: str) -> None:
    body = {"query": "uncached", "params": {"codes": ["FRA"]}}
    for _ in range(2):
        response = ask(url, body)
        assert status(response) == "livedata; fwd=bypass"
        assert response.headers["cache-control"] == "no-store"


def test_the_memory_fast_path_never_outlives_its_file(url: str) -> None:
    first = ask(url, REGION)
    assert status(ask(url, REGION)) == "livedata; hit"  # now answered from memory
    again = ask(url, REGION)
    assert again.content == first.content
    assert status(again) == "livedata; hit"
    invalidated = httpx.post(f"{url}/cache/invalidate", json={"query": "countries_by_region"})
    assert invalidated.json()["removed"] == 1
    after = ask(url, REGION)
    assert status(after) == "livedata; fwd=miss; stored"  # the file is gone: not from memory


@pytest.fixture
def sqlite_url(serve: Callable[..., str], clock: Clock, tmp_path: Path) -> tuple[str, Path]:
    """A server over a SQLite file this test may change; its entries live 60 s."""
    database = tmp_path / "shop.sqlite"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE stock (item TEXT, count INTEGER)")
        db.execute("INSERT INTO stock VALUES ('pen', 3)")
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        f'[sources.shop]\nkind = "sqlite"\npath = "{database}"\nttl = 60\n'
        '[tables.stock]\nsource = "shop"\n'
    )
    return serve(load_catalog(catalog), clock), database


def test_a_refetch_of_unchanged_rows_keeps_its_etag(url: str, clock: Clock) -> None:
    first = ask(url, REGION)
    clock.now += 60 + 30 + 1  # past ttl and stale-while-revalidate: the source is asked again
    refetched = ask(url, REGION)
    assert status(refetched) == "livedata; fwd=miss; stored"
    assert refetched.json()["meta"]["fetched_at"] > first.json()["meta"]["fetched_at"]
    assert refetched.headers["etag"] == first.headers["etag"]  # the rows are the same
    assert refetched.headers["etag"].startswith('W/"')  # meta (fetched_at) is not
    conditional = revalidate(url, REGION, first.headers["etag"])
    assert conditional.status_code == 304


def test_a_refetch_of_changed_rows_changes_its_etag(
    sqlite_url: tuple[str, Path], clock: Clock
) -> None:
    url, database = sqlite_url
    first = ask(url, {"table": "stock"})
    with sqlite3.connect(database) as db:
        db.execute("UPDATE stock SET count = 4")
    clock.now += 61
    conditional = revalidate(url, {"table": "stock"}, first.headers["etag"])
    assert conditional.status_code == 200
    assert conditional.json()["rows"] == [["pen", 4]]
    assert conditional.headers["etag"] != first.headers["etag"]


@pytest.mark.parametrize(
    "added",
    [
        pytest.param({"cache-control": "max-age=0"}, id="chromium"),
        pytest.param({"cache-control": "no-cache", "pragma": "no-cache"}, id="fetch-standard"),
    ],
)
def test_a_conditional_request_is_answered_from_the_cache_whatever_the_browser_adds(
    url: str, clock: Clock, added: dict[str, str]
) -> None:
    """What a browser adds to a request an app set If-None-Match on (Chromium 156, seen in
    tests/browser; the Fetch standard), which alone would ask the source again."""
    etag = ask(url, REGION).headers["etag"]
    clock.now += 11  # past the no-cache throttle: no-cache alone would refetch now
    conditional = revalidate(url, REGION, etag, **added)
    assert conditional.status_code == 304
    assert status(conditional) == "livedata; hit"
