"""Cursors as values: signed by one key, refused when altered, foreign or expired (pure,
no server: the web suites check the same through HTTP)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from livedata.cursors import Cursor, Signer, derive_secret, directory_key
from livedata.errors import CursorExpired, InvalidCursor

KEY = b"k" * 32
CURSOR = Cursor("ab" * 20, "v1", 100, 100, "table:rows", "key:reader", "digest", expires=1000.0)


def altered(token: str) -> str:
    payload, mac = token.split(".")
    return f"{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}.{mac}"


@pytest.mark.parametrize(
    ("token", "now", "error"),
    [
        pytest.param(Signer(KEY).sign(CURSOR), 999.0, None, id="valid"),
        pytest.param(Signer(KEY).sign(CURSOR), 1000.0, CursorExpired, id="expired"),
        pytest.param(Signer(b"o" * 32).sign(CURSOR), 0.0, InvalidCursor, id="another-key"),
        pytest.param(altered(Signer(KEY).sign(CURSOR)), 0.0, InvalidCursor, id="altered"),
        pytest.param("", 0.0, InvalidCursor, id="empty"),
        pytest.param("no.dots.here", 0.0, InvalidCursor, id="three-parts"),
        pytest.param("é.ü", 0.0, InvalidCursor, id="not-base64"),
    ],
)
def test_a_cursor_opens_only_as_it_was_signed(
    token: str, now: float, error: type[Exception] | None
) -> None:
    if error is None:
        assert Signer(KEY).open(token, now) == CURSOR
    else:
        with pytest.raises(error):
            Signer(KEY).open(token, now)


def test_every_field_is_signed() -> None:
    tokens = {Signer(KEY).sign(replace(CURSOR, offset=n)) for n in range(50)}
    assert len(tokens) == 50


def test_the_key_comes_from_the_secret_then_the_access_file_then_the_cache(
    tmp_path: Path,
) -> None:
    access = tmp_path / "access.toml"
    access.write_text("[api_keys.a]\n")
    (tmp_path / "tmp").mkdir()

    assert derive_secret("s", access, tmp_path) == derive_secret("s", None, None)
    assert derive_secret(None, access, tmp_path) != derive_secret("s", access, tmp_path)
    kept = derive_secret(None, None, tmp_path)
    assert kept == directory_key(tmp_path) == (tmp_path / "cursor.key").read_bytes()
    assert list((tmp_path / "tmp").iterdir()) == []  # the scratch file went
    assert derive_secret(None, None, None) != derive_secret(None, None, None)  # per process
