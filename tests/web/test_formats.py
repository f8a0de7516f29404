"""Response formats: chosen by the ``format`` field or by ``Accept``, each holding the rows."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tests.web.test_query import COUNTRIES, post


def _arrow_from(fmt: str, content: bytes) -> pa.Table:
    if fmt == "arrow":
        return pa.ipc.open_stream(content).read_all()
    return pq.read_table(io.BytesIO(content))


@pytest.mark.parametrize(
    ("accept", "fmt", "media_type"),
    [
        pytest.param(None, None, "application/json", id="default-json"),
        pytest.param("*/*", None, "application/json", id="any"),
        pytest.param("text/csv", None, "text/csv", id="csv"),
        pytest.param("application/x-ndjson", None, "application/x-ndjson", id="ndjson"),
        pytest.param(
            "text/csv;q=0.5, application/vnd.apache.arrow.stream",
            None,
            "application/vnd.apache.arrow.stream",
            id="q-values",
        ),
        pytest.param(
            "application/vnd.apache.parquet;q=0.9, text/csv;q=0.1",
            None,
            "application/vnd.apache.parquet",
            id="parquet",
        ),
        pytest.param(
            "text/csv", "arrow", "application/vnd.apache.arrow.stream", id="format-field-wins"
        ),
    ],
)
def test_formats_are_negotiated(
    client: httpx.Client, accept: str | None, fmt: str | None, media_type: str
) -> None:
    body: dict[str, Any] = {"table": "world_country_list"}
    if fmt:
        body["format"] = fmt
    response = post(client, body, **({"accept": accept} if accept else {}))
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    if media_type.endswith(("arrow.stream", "parquet")):
        assert (
            _arrow_from(
                "arrow" if "arrow" in media_type else "parquet", response.content
            ).to_pylist()
            == COUNTRIES.to_pylist()
        )
    elif media_type == "text/csv":
        table = pacsv.read_csv(io.BytesIO(response.content))
        assert table.column("alpha_3").to_pylist() == COUNTRIES.column("alpha_3").to_pylist()
    elif media_type == "application/x-ndjson":
        lines = response.text.splitlines()
        assert len(lines) == 249
        assert '"alpha_3":"ABW"' in lines[0]


def test_no_acceptable_format_is_406(client: httpx.Client) -> None:
    response = post(client, {"table": "world_country_list"}, accept="image/png")
    assert response.status_code == 406
    assert "application/json" in response.json()["error"]["message"]
