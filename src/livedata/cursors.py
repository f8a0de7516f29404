"""Paging cursors: where the next page of a pinned snapshot starts, signed by the server.

A cursor is ``base64url(JSON) "." base64url(HMAC-SHA256)``: opaque to clients, but readable
by any node that holds the same key (LIVEDATA_CURSOR_SECRET), so no node has to remember
cursors. It names the snapshot (cache key and entry version), the next row, the page size,
the target, the caller and a digest of the caller's restrictions, and when it expires; a
cursor that fails any of these checks pages nothing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from livedata.errors import CursorExpired, InvalidCursor

MAC_BYTES = 16  # a truncated HMAC-SHA256: 128 bits is beyond guessing
KEY_FILE = "cursor.key"  # in the cache directory, when no secret is configured


@dataclass(frozen=True)
class Cursor:
    key: str  # the snapshot: its cache key and entry version
    version: str
    offset: int  # the first row of the page it asks for
    limit: int
    target: str  # "table:NAME" or "query:NAME"
    caller: str | None
    restrictions: str  # digest of the caller's restrictions when it was issued
    expires: float
    # Keyset paging (nothing cached: key and version are empty): the request's shape, and
    # the order_by values, as JSON, of the last row sent (livedata.keyset).
    shape: dict[str, Any] | None = None
    after: list[Any] | None = None


def restrictions_digest(restrictions: Mapping[str, Any]) -> str:
    """The caller's restrictions, hashed: a cursor must not outlive a change to them."""
    canonical = orjson.dumps(dict(restrictions), option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.blake2b(canonical, digest_size=12).hexdigest()


def derive_secret(
    configured: str | None, access_file: Path | None, cache_dir: Path | None
) -> bytes:
    """The signing key: the configured secret; else one derived from the access file, which
    every node of a deployment already shares (it holds key hashes, so it is secret enough
    to derive from, and rotating it ends open cursors); else the cache directory's own key,
    which the workers of one host share (another host's then refuse its cursors)."""
    if configured:
        material = configured.encode()
    elif access_file is not None:
        material = b"access-file:" + access_file.read_bytes()
    else:
        return secrets.token_bytes(32) if cache_dir is None else directory_key(cache_dir)
    return hashlib.blake2b(material, key=b"livedata cursors", digest_size=32).digest()


def directory_key(cache_dir: Path) -> bytes:
    """A random key kept in ``cache_dir`` (made by the first process to look, by a link that
    fails if another made it first); a key of this process's own if the directory cannot
    keep one. Anyone who may read the cache may read the rows it holds anyway."""
    path = cache_dir / KEY_FILE
    try:
        if not path.exists():
            # Named like the store's files in flight, so a crash leaves nothing behind.
            scratch = cache_dir / "tmp" / f"{KEY_FILE}.{os.getpid()}.{time.monotonic_ns()}"
            scratch.write_bytes(secrets.token_bytes(32))
            with contextlib.suppress(FileExistsError):
                os.link(scratch, path)
            scratch.unlink()
        key = path.read_bytes()
    except OSError:
        return secrets.token_bytes(32)
    return key if len(key) == 32 else secrets.token_bytes(32)


class Signer:
    """Issues and checks cursors with one key; pure apart from the clock it is given."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def sign(self, cursor: Cursor) -> str:
        payload = orjson.dumps(asdict(cursor))
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def open(self, token: str, now: float) -> Cursor:
        """The cursor ``token`` stands for; InvalidCursor when it was not issued by a node
        with this key (or was altered), CursorExpired when its time is up."""
        text, _, mac = token.partition(".")
        try:
            payload = _unb64(text)
            valid = hmac.compare_digest(_unb64(mac), self._mac(payload))
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise InvalidCursor(
                "This cursor was not issued by this service, or was altered; start again "
                "from the first page (without a cursor)."
            )
        try:
            cursor = Cursor(**orjson.loads(payload))
        except (orjson.JSONDecodeError, TypeError) as exc:  # signed, but by another version
            raise InvalidCursor("This cursor is from another version; start again.") from exc
        if cursor.expires <= now:
            raise CursorExpired(
                "This cursor has expired (LIVEDATA_CURSOR_TTL); start again from the first page."
            )
        return cursor

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:MAC_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
