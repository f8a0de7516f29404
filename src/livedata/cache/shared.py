"""The shared cache tier: entries on S3-compatible object storage, under every node's disk.

Objects are the same checked containers as the disk entries (``store.py``), in the shared
tier's own format (``LIVEDATA_CACHE_SHARED_FORMAT``, rewritten in each node's format on the
way in and out: ``livedata.sharing``), named
``<prefix>/entries/<key[:2]>/<key>/<fence>``: a fence comes with the key's lease
(``livedata.cluster``), so each fetch writes an object of its own, and a conditional create
(``If-None-Match: *``) means two nodes never overwrite each other's committed entry. A node
reads an object into a temporary file of its disk cache, where it is verified like any file
before it is adopted; a corrupt, foreign or partial object is a miss, deleted, and the next
fetch writes a new one.

Any S3-compatible store works (AWS S3, GCS interoperability, MinIO, SeaweedFS, Ceph RGW):
the client is obstore (object_store in Rust), chosen by measurement (``bench/cluster.py``).
Endpoint and credentials come from the standard ``AWS_*`` environment variables, or the
AWS shared credentials file (``AWS_SHARED_CREDENTIALS_FILE``, profile ``AWS_PROFILE``), never
from the catalog. Object storage that fails is skipped for a while, and no request waits on
it beyond ``timeout`` to connect or between two reads.
"""

from __future__ import annotations

import configparser
import datetime as dt
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio.to_thread
import obstore
from obstore.exceptions import AlreadyExistsError, NotFoundError
from obstore.store import S3Store

from livedata.cache.formats.base import CacheFormat

if TYPE_CHECKING:
    from obstore.store import S3Config

log = logging.getLogger("livedata.cache")
SKIP_SECONDS = 10.0  # after a failure, object storage is left alone this long
# The longest one upload or download may take (object_store's own default, made explicit): an
# object that takes longer fails, so the shared format is compressed (docs/cache-formats.md).
TRANSFER_SECONDS = 30.0
_CHUNK = 4 << 20


class SharedTier:
    """Objects in ``format`` (``LIVEDATA_CACHE_SHARED_FORMAT``), whatever each node's disk uses."""

    def __init__(
        self, url: str, timeout: float, format: CacheFormat, transfer: float = TRANSFER_SECONDS
    ) -> None:
        bucket, prefix = parse_url(url)
        self.format = format
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
        wait = dt.timedelta(seconds=timeout)
        self.url = url
        self.store = S3Store(
            bucket,
            prefix=prefix or None,
            client_options={
                "allow_http": endpoint.startswith("http://"),
                "connect_timeout": wait,
                "read_timeout": wait,
                "timeout": dt.timedelta(seconds=transfer),
            },
            retry_config={"max_retries": 1, "retry_timeout": wait},
            config=credentials_file(),
        )
        self._problem: str | None = None
        self._skip_until = 0.0

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._skip_until

    @property
    def problem(self) -> str | None:
        """Why the tier is being skipped right now (None: it is used)."""
        return None if self.available else self._problem

    @staticmethod
    def name(key: str, fence: int) -> str:
        return f"entries/{key[:2]}/{key}/{fence}"

    async def download(self, name: str, into: Path) -> bool:
        """Write object ``name`` to the file ``into``; False when it is not there or object
        storage fails (unverified: the cache checks the file before adopting it)."""
        return await self._call(self._download, name, into, missing=False)

    async def upload(self, name: str, path: Path) -> bool:
        """Store the file ``path`` as ``name`` unless an object of that name exists."""
        return await self._call(self._upload, name, path, missing=False)

    async def delete(self, name: str) -> None:
        await self._call(self._delete, name, missing=True)

    async def _call(self, work: Callable[..., bool], *args: object, missing: bool) -> bool:
        if not self.available:
            return False
        try:
            result = await anyio.to_thread.run_sync(work, *args)
        except NotFoundError:
            return missing
        except AlreadyExistsError:
            return False
        except Exception as exc:  # any failure of the store: go on without it for a while
            self._failed(exc)
            return False
        if self._problem is not None:
            log.warning("object storage %s answers again; the shared tier is back", self.url)
            self._problem = None
        return result

    def _download(self, name: str, into: Path) -> bool:
        result = obstore.get(self.store, name)
        with open(into, "wb") as file:
            for chunk in result.stream(min_chunk_size=_CHUNK):
                file.write(chunk)
        return True

    def _upload(self, name: str, path: Path) -> bool:
        try:
            file = open(path, "rb")  # noqa: SIM115  # held open: a removed name keeps its inode
        except FileNotFoundError:  # evicted or replaced meanwhile: nothing to share
            return False
        with file:
            obstore.put(self.store, name, file, mode="create", use_multipart=False)
        return True

    def _delete(self, name: str) -> bool:
        obstore.delete(self.store, name)
        return True

    def _failed(self, exc: Exception) -> None:
        self._skip_until = time.monotonic() + SKIP_SECONDS
        if self._problem is None:
            log.warning(
                "object storage %s failed (%s); using each node's own cache meanwhile",
                self.url,
                exc,
            )
        self._problem = f"object storage failed: {type(exc).__name__}"


def credentials_file() -> S3Config:
    """The keys of the AWS shared credentials file, when the environment names none: how a
    container is handed them as a secret file. obstore reads only the environment, and its
    boto3 bridge would pull in boto3 for one INI section, hence configparser."""
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        return {}
    path = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")).expanduser()
    profile = os.environ.get("AWS_PROFILE", "default")
    parser = configparser.ConfigParser()
    config: S3Config = {}
    if parser.read(path) and parser.has_section(profile):
        section = parser[profile]
        if key := section.get("aws_access_key_id"):
            config["access_key_id"] = key
        if secret := section.get("aws_secret_access_key"):
            config["secret_access_key"] = secret
        if token := section.get("aws_session_token"):
            config["session_token"] = token
    return config


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"{url!r} is not s3://bucket/prefix")
    return parts.netloc, parts.path.strip("/")
