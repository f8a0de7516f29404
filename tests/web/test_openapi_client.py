"""The OpenAPI document as generators use it: a client made by openapi-python-client runs real
requests against a real server (the generator and the client run in .venv-openapi)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import httpx
import orjson
import pyarrow as pa
import pytest

from livedata.web.errors import client_codes
from tests.conftest import require_service

GENERATOR_VENV = Path(__file__).parents[2] / ".venv-openapi" / "bin"

# Run by the generator venv's Python: the generated package, its models, its parsing.
CLIENT_SCRIPT = """
import json, sys
from livedata_api import Client
from livedata_api.api.default import query_query_post, queries_queries_get
from livedata_api.models import WorldCountryList, WorldCountryListFormatType0

client = Client(base_url=sys.argv[1], headers={"X-Request-Id": "generated-client-1"})
body = WorldCountryList.from_dict({
    "table": "world_country_list",
    "columns": ["alpha_3", "name"],
    "filters": [{"column": "region", "op": "eq", "value": "Oceania"}],
    "order_by": [{"column": "alpha_3", "desc": True}],
    "limit": 3,
})
ok = query_query_post.sync_detailed(client=client, body=body)
wrong = query_query_post.sync_detailed(
    client=client, body=WorldCountryList(table="world_country_list", columns=["populaton"])
)
listing = queries_queries_get.sync(client=client)
arrow = WorldCountryList(
    table="world_country_list", limit=2, format_=WorldCountryListFormatType0.ARROW
)
# One parser per response is all this generator makes (JSON here): binary formats are read
# with the generated client's own HTTP client, configured as the generated calls are.
binary = client.get_httpx_client().post("/query", json=arrow.to_dict())
sys.stdout.buffer.write(json.dumps({
    "status": ok.status_code,
    "request_id": ok.headers["x-request-id"],
    "columns": [c.name for c in ok.parsed.columns],
    "rows": ok.parsed.rows,
    "meta_rows": ok.parsed.meta.rows,
    "error": [wrong.status_code, wrong.parsed.error.code],
    "tables": sorted(listing.tables.additional_properties),
    "arrow_type": binary.headers["content-type"],
}).encode() + b"\\n" + binary.content)
"""


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory, base_url: str) -> Path:
    """The client package generated from the served document; the folder that holds it."""
    generator = GENERATOR_VENV / "openapi-python-client"
    require_service("openapi-python-client (make .venv-openapi/installed)", generator.stat)
    folder = tmp_path_factory.mktemp("generated")
    document = folder / "openapi.json"
    document.write_bytes(httpx.get(f"{base_url}/openapi.json").content)
    output = folder / "livedata_api"
    done = subprocess.run(
        [generator, "generate", "--path", document, "--meta", "none", "--output-path", output],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Unable to" not in done.stdout + done.stderr, done.stdout + done.stderr
    return folder


def test_a_generated_client_runs_real_requests(generated: Path, base_url: str) -> None:
    done = subprocess.run(
        [GENERATOR_VENV / "python", "-c", CLIENT_SCRIPT, base_url],
        capture_output=True,
        cwd=generated,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    summary, arrow = done.stdout.split(b"\n", 1)
    answer = orjson.loads(summary)
    assert answer["status"] == 200
    assert answer["request_id"] == "generated-client-1"
    assert answer["columns"] == ["alpha_3", "name"]
    assert answer["meta_rows"] == len(answer["rows"]) == 3
    assert answer["rows"] == sorted(answer["rows"], reverse=True)
    assert answer["error"] == [422, "invalid_option"]
    assert "world_country_list" in answer["tables"]
    assert answer["arrow_type"] == "application/vnd.apache.arrow.stream"
    assert pa.ipc.open_stream(io.BytesIO(arrow)).read_all().num_rows == 2


def test_the_document_declares_what_the_server_sends(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    assert set(document["components"]["securitySchemes"]) == {"apiKey", "token"}
    query = document["paths"]["/query"]["post"]["responses"]
    assert set(query["200"]["content"]) == {
        "application/json",
        "application/x-ndjson",
        "text/csv",
        "application/vnd.apache.arrow.stream",
        "application/vnd.apache.parquet",
    }
    assert query["200"]["content"]["application/vnd.apache.parquet"]["schema"]["format"] == "binary"
    assert {"ETag", "Cache-Status", "X-Row-Count", "X-Request-Id"} <= set(query["200"]["headers"])
    assert "Retry-After" in query["503"]["headers"]
    assert "Retry-After" in query["429"]["headers"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                assert "X-Request-Id" in response["headers"], (path, method, status)
                if status == "200":
                    assert response.get("content"), (path, method)
                    for media in response["content"].values():
                        assert media.get("schema"), (path, method)
                for name, example in (
                    response.get("content", {})
                    .get("application/json", {})
                    .get("examples", {})
                    .items()
                ):
                    assert client_codes()[example["value"]["error"]["code"]] == int(status), name
    examples = document["components"]["schemas"]["ErrorDetail"]["properties"]["code"]
    assert set(examples["examples"]) <= set(client_codes())
    variants = document["components"]["schemas"]["QueryBody"]["anyOf"]
    for variant in variants:
        assert {"columns", "filters", "order_by", "limit", "offset", "format"} <= set(
            variant["properties"]
        ), variant["title"]


def test_error_examples_show_the_codes_the_server_sends(client: httpx.Client) -> None:
    not_found = client.post("/query", json={"table": "nowhere"}).json()["error"]["code"]
    not_allowed = client.put("/query").json()["error"]["code"]
    document = client.get("/openapi.json").json()
    responses = document["paths"]["/query"]["post"]["responses"]
    assert not_found in responses["404"]["content"]["application/json"]["examples"]
    assert client_codes()[not_allowed] == 405
