"""Secrets never show: not in the repr of settings, catalog or credentials, which end up in
logs and tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from livedata.auth.credentials import Authenticator
from livedata.catalog import load_catalog
from livedata.settings import BUNDLED_CATALOG, Settings
from tests.security.conftest import Credentials

PASSWORD = "source-password-never-shown"  # noqa: S105  # made for this test


def test_no_repr_shows_a_secret(
    credentials: Credentials, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_PASSWORD", PASSWORD)
    catalog_file = tmp_path / "catalog.toml"
    catalog_file.write_text(
        '[sources.shop]\nkind = "postgres"\ndatabase = "shop"\n'
        'password = { env = "SHOP_PASSWORD" }\n'
    )
    catalog = load_catalog(catalog_file)
    catalog.check_secrets()  # resolved, as at start-up
    authenticator = Authenticator.from_file(credentials.access_file, load_catalog(BUNDLED_CATALOG))
    assert authenticator is not None
    assert authenticator.tokens is not None
    hs_secret = credentials.signing["hs"][1]
    shown = [
        Settings(auth_file=credentials.access_file),
        catalog,
        authenticator.access,
        authenticator.tokens.keys,
    ]
    for thing in shown:
        assert PASSWORD not in repr(thing)
        assert hs_secret not in repr(thing)
        assert hs_secret.encode() not in repr(thing).encode()
    assert "hs.secret" in repr(authenticator.access)  # where it lives is shown, not what it is
