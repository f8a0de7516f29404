"""API keys: ``ld_<id>_<secret>``, stored only as a SHA-256 digest.

The id travels in the key, so checking one is a dictionary lookup plus one constant-time
comparison, not a scan over every stored hash. The ``ld_`` prefix lets secret scanners (and
people) recognise a leaked key.

Why SHA-256 and not bcrypt, scrypt or Argon2: those are slow on purpose, to make guessing
*low-entropy* passwords expensive. A key here is 256 random bits from ``secrets``; no
amount of guessing finds one, slow hash or not, so slowness would protect nothing and
would cost every request milliseconds of CPU (a denial-of-service lever). A stored digest
that leaks still does not let anyone call the service.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PREFIX = "ld_"
ID_PATTERN = re.compile(r"[A-Za-z0-9-]{1,64}")  # no "_": it separates the id from the secret
_HASH_PREFIX = "sha256:"
_SECRET_BYTES = 32


def new_key(key_id: str) -> tuple[str, str]:
    """A fresh key for ``key_id`` and the digest to store: (key, "sha256:<hex>")."""
    if not ID_PATTERN.fullmatch(key_id):
        raise ValueError("a key id is 1-64 letters, digits or '-'")
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    return key, digest(key)


def digest(key: str) -> str:
    return _HASH_PREFIX + hashlib.sha256(key.encode()).hexdigest()


def key_id(presented: str) -> str | None:
    """The id a presented key claims, or None when it is not shaped like one of our keys."""
    if not presented.startswith(PREFIX):
        return None
    claimed, sep, secret = presented.removeprefix(PREFIX).partition("_")
    return claimed if sep and secret and ID_PATTERN.fullmatch(claimed) else None


def matches(presented: str, stored: str | None) -> bool:
    """Constant-time check of a presented key against its stored digest. An unknown id is
    checked against a dummy digest, so a miss takes as long as a wrong secret."""
    expected = stored or _HASH_PREFIX + "0" * 64
    return hmac.compare_digest(digest(presented), expected) and stored is not None


def is_digest(value: str) -> bool:
    return re.fullmatch(r"sha256:[0-9a-f]{64}", value) is not None
