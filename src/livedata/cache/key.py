"""Cache keys: a hash of canonical JSON of everything that changes a result.

Computed after parameter conversion, so ``"5"`` and ``5`` for an int parameter share an entry;
identical across processes and machines (sorted keys, no ``hash()``, no memory addresses). The
key is hex, so no client input ever becomes part of a file path.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

KEY_VERSION = 1  # bump when the meaning of an entry changes: every old key then misses


def cache_key(parts: Mapping[str, Any]) -> str:
    canonical = orjson.dumps(
        {"v": KEY_VERSION, **parts}, option=orjson.OPT_SORT_KEYS, default=_canonical
    )
    return hashlib.blake2b(canonical, digest_size=20).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} in a cache key")
