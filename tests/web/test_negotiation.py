"""Content negotiation per RFC 9110 (section 12.5): its own examples, then ours over a server."""

from __future__ import annotations

import httpx
import pytest
from werkzeug.datastructures import Accept

from livedata.errors import NotAcceptable
from livedata.web.responses import CODINGS, best_offer, choose_coding, choose_encoder
from tests.web.test_query import post

# RFC 9110, 12.5.1. Its table gives text/html;level=3 the q of text/plain (0.7), an erratum
# (ID 7138): text/* (0.3) is the most specific range that matches it.
QUALITY_EXAMPLE = (
    "text/*;q=0.3, text/plain;q=0.7, text/plain;format=flowed, "
    "text/plain;format=fixed;q=0.4, */*;q=0.5"
)


def _preference(header: str, offered: list[str]) -> list[str]:
    """The offers from most to least preferred, by asking for the best of those left."""
    ranked = []
    while (best := best_offer(header, tuple(offered))) is not None:
        ranked.append(best)
        offered.remove(best)
    return ranked


def test_the_most_specific_range_sets_the_quality() -> None:
    offered = [
        "text/plain;format=fixed",
        "text/html;level=3",
        "image/jpeg",
        "text/html",
        "text/plain",
        "text/plain;format=flowed",
    ]
    assert _preference(QUALITY_EXAMPLE, offered) == [
        "text/plain;format=flowed",  # 1
        "text/plain",  # 0.7
        "image/jpeg",  # 0.5
        "text/plain;format=fixed",  # 0.4
        "text/html;level=3",  # 0.3, offered before text/html
        "text/html",  # 0.3
    ]


@pytest.mark.parametrize(
    ("header", "offered", "chosen"),
    [
        pytest.param("audio/*; q=0.2, audio/basic", ["audio/mpeg", "audio/basic"], "audio/basic"),
        pytest.param("audio/*; q=0.2, audio/basic", ["audio/mpeg"], "audio/mpeg", id="fallback"),
        pytest.param(
            "text/plain; q=0.5, text/html, text/x-dvi; q=0.8, text/x-c",
            ["text/plain", "text/x-dvi", "text/html"],
            "text/html",
            id="verbose-best",
        ),
        pytest.param(
            "text/plain; q=0.5, text/html, text/x-dvi; q=0.8, text/x-c",
            ["text/plain", "text/x-dvi"],
            "text/x-dvi",
            id="verbose-second",
        ),
        pytest.param(
            "text/*, text/plain, text/plain;format=flowed, */*",
            ["image/png", "text/html", "text/plain"],
            "text/plain",
            id="precedence",
        ),
        pytest.param("text/*;q=0, */*", ["text/html"], None, id="q0-refuses"),
    ],
)
def test_rfc_9110_media_type_examples(header: str, offered: list[str], chosen: str) -> None:
    assert best_offer(header, tuple(offered)) == chosen


@pytest.mark.parametrize(
    ("accept", "name"),
    [
        pytest.param("application/json;q=0, */*", "ndjson", id="json-refused"),
        pytest.param("*/*", "json", id="any-is-json"),
        pytest.param("application/*", "json", id="application-any-is-json"),
        pytest.param("text/*", "csv", id="text-any"),
        pytest.param("*/*;q=0.1, text/csv;q=0.2", "csv", id="specific-beats-any"),
        pytest.param("text/csv, */*", "csv", id="equal-q-more-specific"),
        pytest.param(
            "application/*;q=0.5, application/vnd.apache.parquet", "parquet", id="range-vs-type"
        ),
        pytest.param("TEXT/CSV", "csv", id="case-insensitive"),
    ],
)
def test_our_formats(accept: str, name: str) -> None:
    assert choose_encoder(None, accept).name == name


@pytest.mark.parametrize(
    "accept", ["application/json;q=0", "text/html", "text/*, text/csv;q=0", "*/*;q=0"]
)
def test_nothing_acceptable(accept: str) -> None:
    with pytest.raises(NotAcceptable, match="None of the accepted types"):
        choose_encoder(None, accept)


# RFC 9110, 12.5.3, with our codings (zstd, br, gzip, preferred in that order).
@pytest.mark.parametrize(
    ("header", "coding"),
    [
        pytest.param("compress, gzip", "gzip", id="compress-gzip"),
        pytest.param("*", CODINGS[0], id="any"),
        pytest.param("compress;q=0.5, gzip;q=1.0", "gzip", id="q-values"),
        pytest.param("gzip;q=1.0, identity; q=0.5, *;q=0", "gzip", id="rest-refused"),
        pytest.param("zstd;q=0, *", CODINGS[1], id="zstd-refused"),
        pytest.param("identity", None, id="identity"),
    ],
)
def test_rfc_9110_coding_examples(header: str, coding: str | None) -> None:
    assert choose_coding(header) == coding
    assert best_offer(header, CODINGS, Accept) == coding


def test_json_refused_by_q0_is_not_sent(client: httpx.Client) -> None:
    response = post(client, {"table": "world_country_list"}, accept="application/json;q=0, */*")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/x-ndjson"


def test_nothing_acceptable_is_406_in_the_error_shape(client: httpx.Client) -> None:
    response = post(client, {"table": "world_country_list"}, accept="application/json;q=0")
    assert response.status_code == 406
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "not_acceptable"
    assert error["request_id"] == response.headers["x-request-id"]
    assert "application/vnd.apache.arrow.stream" in error["details"]["media_types"]
