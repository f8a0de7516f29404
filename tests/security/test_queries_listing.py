"""GET /queries per caller: each API key gets its own listing and its own ETag, which never
revalidates another key's listing, and the listing is marked private."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.security.conftest import Credentials, write_access


def test_two_keys_never_share_a_listing_or_its_etag(
    serve: Callable[..., str], credentials: Credentials
) -> None:
    grants = {
        "wide": {"queries": ["*"], "tables": ["*"]},
        "narrow": {"queries": ["country"], "tables": []},
    }
    access, keys = write_access(credentials.access_file.parent, grants, name="listing")
    url = serve(auth_file=access)
    answers = {}
    for key_id, key in keys.items():
        response = httpx.get(f"{url}/queries", headers=credentials.bearer(key), timeout=30)
        assert response.headers["Cache-Control"] == "private, no-cache"
        assert response.headers["Vary"] == "Authorization"
        answers[key_id] = response
    assert set(answers["narrow"].json()["queries"]) == {"country"}
    assert set(answers["wide"].json()["queries"]) > {"country"}
    assert answers["wide"].headers["ETag"] != answers["narrow"].headers["ETag"]
    crossed = httpx.get(
        f"{url}/queries",
        headers={
            **credentials.bearer(keys["narrow"]),
            "If-None-Match": answers["wide"].headers["ETag"],
        },
        timeout=30,
    )
    assert (crossed.status_code, crossed.content) == (200, answers["narrow"].content)
    revalidated = httpx.get(
        f"{url}/queries",
        headers={
            **credentials.bearer(keys["narrow"]),
            "If-None-Match": answers["narrow"].headers["ETag"],
        },
        timeout=30,
    )
    assert revalidated.status_code == 304
