"""The result cache as a browser sees it: hits, keys, freshness, HTTP caching headers.

Time is a settable clock handed to the server, so expiry is tested without sleeping.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import httpx
import pyarrow as pa
import pytest

from livedata.catalog import load_catalog
from livedata.settings import BUNDLED_CATALOG
from tests.cache.traffic import Clock

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
    response = ask(url, REGION, **{"if-none-match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag


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
