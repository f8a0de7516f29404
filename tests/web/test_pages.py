"""The pages a browser opens load everything from livedata itself (the browser suite,
tests/browser, renders them offline)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

# Where an HTML page names another resource: attributes, and Swagger UI's inline set-up.
_REFERENCES = re.compile(rb"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""")

PAGES = [
    pytest.param("/", "page.js", id="data-page"),
    pytest.param("/docs", "swagger-ui-bundle.js", id="docs"),
]


@pytest.mark.parametrize(("path", "script"), PAGES)
def test_a_page_refers_to_no_other_host_and_its_assets_are_served(
    client: httpx.Client, path: str, script: str
) -> None:
    page = client.get(path)
    assert page.status_code == 200
    references = [r.decode() for r in _REFERENCES.findall(page.content)]
    assert any(r.endswith(script) for r in references), references
    assert b"//" not in b"".join(_REFERENCES.findall(page.content)), references
    for reference in references:
        asset = client.get(reference)
        assert asset.status_code == 200, reference
        assert int(asset.headers["content-length"]) > 0, reference


def test_only_the_asset_folders_are_served(client: httpx.Client) -> None:
    assert client.get("/static/pages.py").status_code == 404
    assert client.get("/static/nothing.js").status_code == 404


def test_the_page_and_the_npm_package_share_one_client(client: httpx.Client) -> None:
    """``static/livedata.js`` is a link to ``clients/js/livedata.js`` (a copy in the wheel)."""
    published = Path(__file__).parents[2] / "clients" / "js" / "livedata.js"
    assert client.get("/static/livedata.js").content == published.read_bytes()
