"""Every cache format by name; ``LIVEDATA_CACHE_FORMAT`` picks one (default: the study's)."""

from __future__ import annotations

from livedata.cache.formats.arrow_ipc import ArrowIPC
from livedata.cache.formats.base import CacheFormat

FORMATS: dict[str, CacheFormat] = {f.name: f for f in (ArrowIPC(),)}
DEFAULT_FORMAT = "arrow"
