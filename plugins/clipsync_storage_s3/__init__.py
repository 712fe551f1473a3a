"""S3-compatible object storage (MinIO, AWS S3, and others) through the minio SDK.

Every object lives in one bucket, under `prefix` + a key from `clipsync.storage.keys`
(checked again here), so the layout is the same as on local disk. The minio SDK is
synchronous: each call runs on a thread (`asyncio.to_thread`), never on the event
loop. Streams are uploaded in parts of `part_size` bytes, so an upload of any size
needs about one part of memory; a stream that fails half-way aborts its multipart
upload and leaves nothing behind.

Objects are private: clients read them through the app, or through a presigned URL
(`presigned_get`, `presigned_put`) that expires. With presigned playback, the probe
also makes sure the bucket's CORS rules let the site's pages read them (cors.py).
Keys and secrets never appear in logs, errors or probe reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import certifi
import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import MinioException, S3Error
from urllib3.exceptions import HTTPError

from clipsync import hookimpl
from clipsync.backends import Availability, BackendContext
from clipsync.settings import Secret, check
from clipsync.storage.keys import check_key

from . import cors, multipart
from .errors import DEFAULT_REGION, S3StorageError, explain
from .presign import resign_with_headers

log = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest part (except the last one)
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's longest validity
# `open_local` downloads are named so, and swept once this old (see `sweep_scratch`).
DOWNLOAD_PREFIX = "download-"
DOWNLOADS_KEPT = timedelta(days=1)
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 120.0
PROBE_CONNECT_TIMEOUT = 3.0
PROBE_READ_TIMEOUT = 10.0
# A stream that sends nothing for this long aborts its upload.
STALL_SECONDS = 600.0
MISSING_ERRORS = frozenset({"NoSuchKey", "NotFound", "ResourceNotFound"})
# The key a CORS preflight asks about; it need not exist.
CORS_CHECK_KEY = "clipsync-probe/cors-check"


def _part_size(value: int) -> str | None:
    if MIN_PART_SIZE <= value <= MAX_PART_SIZE:
        return None
    return f"must be between {MIN_PART_SIZE} (5 MiB) and {MAX_PART_SIZE} (5 GiB)"


def _endpoint(value: str) -> str | None:
    if not value or "://" in value or "/" in value:
        return 'must be host:port without a scheme or path, e.g. "127.0.0.1:9000"'
    return None


def _bucket(value: str) -> str | None:
    ok = 3 <= len(value) <= 63 and all(c.islower() or c.isdigit() or c in ".-" for c in value)
    if ok and value[0].isalnum() and value[-1].isalnum():
        return None
    return "must be 3 to 63 lower-case letters, digits, '.' or '-' (an S3 bucket name)"


def _prefix(value: str) -> str | None:
    stripped = value.strip("/")
    if not stripped:
        return None
    try:
        check_key(stripped)
    except ValueError:
        return 'must be a relative path of letters, digits, ".", "_" and "-", e.g. "clipsync/"'
    return None


@dataclass(frozen=True)
class S3Settings:
    # host:port of the S3 API, without scheme, e.g. "127.0.0.1:9000" or "s3.amazonaws.com".
    endpoint: str = check(_endpoint, "127.0.0.1:9000")
    # Created by the start-up probe when it is missing.
    bucket: str = check(_bucket, "clipsync")
    # The bucket's region; empty means us-east-1 (MinIO's default).
    region: str = ""
    access_key: Secret = field(default_factory=Secret)
    secret_key: Secret = field(default_factory=Secret)
    # TLS to the endpoint.
    secure: bool = True
    # Every key is stored under this prefix inside the bucket, e.g. "clipsync/".
    prefix: str = check(_prefix, "")
    # Path-style URLs (http://host/bucket/key), as MinIO wants; false for AWS's
    # virtual-host style (http://bucket.host/key).
    path_style: bool = True
    # Multipart upload part size in bytes: the memory one streamed upload needs.
    part_size: int = check(_part_size, 16 * 1024 * 1024)
    # Where `open_local` downloads objects for ffprobe and ffmpeg; relative paths are
    # inside the data directory.
    scratch_dir: str = "scratch"


# -- the client --------------------------------------------------------------------------


def _http(connect: float, read: float, retries: int) -> urllib3.PoolManager:
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=connect, read=read),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(
            total=retries,
            backoff_factor=0.2,
            status_forcelist=[500, 502, 503, 504],
        ),
    )


def make_client(config: S3Settings, *, probe: bool = False) -> Minio:
    """A minio client for `config`; it does no network I/O until it is used.

    The region is always set, so the SDK never asks the server for it behind a call
    (and presigning a URL is pure computation). The probe's client gives up quickly.
    """
    http = (
        _http(PROBE_CONNECT_TIMEOUT, PROBE_READ_TIMEOUT, 0)
        if probe
        else _http(CONNECT_TIMEOUT, READ_TIMEOUT, 3)
    )
    client = Minio(
        config.endpoint,
        access_key=config.access_key.reveal() or None,
        secret_key=config.secret_key.reveal() or None,
        secure=config.secure,
        region=config.region or DEFAULT_REGION,
        http_client=http,
    )
    if config.path_style:
        client.disable_virtual_style_endpoint()
    else:
        client.enable_virtual_style_endpoint()
    return client


def _normal_prefix(prefix: str) -> str:
    stripped = prefix.strip("/")
    return f"{stripped}/" if stripped else ""


def _scratch(context: BackendContext) -> Path:
    config: S3Settings = context.config
    folder = Path(config.scratch_dir).expanduser()
    return folder if folder.is_absolute() else context.data_dir / folder


# -- bridging an async stream into the SDK's blocking reader ------------------------------


class _StreamReader:
    """A file-like `read(n)` for the SDK's upload thread, fed from an async iterator.

    Each `read` asks the event loop for the next chunks, so no more than one part
    (plus one chunk) is ever held in memory.
    """

    def __init__(self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._chunks = aiter(chunks)
        self._loop = loop
        self._buffer = bytearray()
        self._done = False
        self.total = 0

    async def _next(self) -> bytes | None:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return None

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            pending = asyncio.run_coroutine_threadsafe(self._next(), self._loop)
            chunk = pending.result(timeout=STALL_SECONDS)
            if chunk is None:
                self._done = True
            elif chunk:
                self._buffer += chunk
                self.total += len(chunk)
        if size < 0 or size >= len(self._buffer):
            data, self._buffer = bytes(self._buffer), bytearray()
        else:
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
        return data


# -- the backend ----------------------------------------------------------------------------


class S3Storage:
    """The `s3` storage backend."""

    name: ClassVar[str] = "s3"

    def __init__(self, config: S3Settings, scratch: Path, client: Minio | None = None) -> None:
        self.config = config
        self.bucket = config.bucket
        self.prefix = _normal_prefix(config.prefix)
        self.scratch = scratch
        self.client = client or make_client(config)

    def __repr__(self) -> str:
        return f"<S3Storage {self.config.endpoint}/{self.bucket}/{self.prefix}>"

    # -- choosing and building ------------------------------------------------------------

    @classmethod
    def probe(cls, context: BackendContext) -> Availability:
        config: S3Settings = context.config
        if not config.access_key or not config.secret_key:
            return Availability.no(
                "[plugins.storage_s3] needs access_key and secret_key "
                '(a string, { "$env" = "NAME" } or { "$file" = "PATH" })'
            )
        scratch = _scratch(context)
        try:
            scratch.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return Availability.no(f"cannot create the scratch folder {scratch}: {exc.strerror}")
        availability = probe_bucket(config)
        if availability.ok and context.settings.storage.playback == "presigned":
            origin = cors.site_origin(context.settings.server.base_url)
            availability = Availability.yes(
                f"{availability.reason}; {playback_cors(config, origin)}"
            )
        return availability

    @classmethod
    def create(cls, context: BackendContext) -> S3Storage:
        storage = cls(context.config, _scratch(context))
        storage.sweep_scratch()
        return storage

    def sweep_scratch(self, older_than: timedelta = DOWNLOADS_KEPT) -> int:
        """Delete downloads a killed process left in scratch space; return how many.

        `open_local` removes its download when it is done, unless its process is
        killed first. Nothing reads one download for a day, whatever the video.
        """
        cutoff = time.time() - older_than.total_seconds()
        deleted = 0
        for path in self.scratch.glob(f"{DOWNLOAD_PREFIX}*"):
            with contextlib.suppress(OSError):
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    deleted += 1
        if deleted:
            log.info("deleted %d downloads left in %s by stopped processes", deleted, self.scratch)
        return deleted

    # -- keys -------------------------------------------------------------------------------

    def object_name(self, key: str) -> str:
        """The object that holds `key` in the bucket."""
        return self.prefix + check_key(key)

    def _key(self, name: str) -> str:
        return name[len(self.prefix) :]

    def _fail(self, exc: BaseException, action: str) -> S3StorageError:
        return S3StorageError(explain(exc, self.config, action))

    # -- writing ----------------------------------------------------------------------------

    async def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        name = self.object_name(key)
        try:
            await asyncio.to_thread(
                self.client.fput_object,
                self.bucket,
                name,
                str(path),
                content_type=content_type or "application/octet-stream",
                part_size=self.config.part_size,
            )
        except (MinioException, HTTPError) as exc:
            raise self._fail(exc, f"store {key}") from exc

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str | None = None
    ) -> int:
        name = self.object_name(key)
        reader = _StreamReader(chunks, asyncio.get_running_loop())
        try:
            await asyncio.to_thread(
                self.client.put_object,
                self.bucket,
                name,
                reader,
                length=-1,
                content_type=content_type or "application/octet-stream",
                part_size=self.config.part_size,
                # One part in flight: memory stays at about one part per upload.
                num_parallel_uploads=1,
            )
        except (MinioException, HTTPError) as exc:
            raise self._fail(exc, f"store {key}") from exc
        return reader.total

    # -- reading ----------------------------------------------------------------------------

    def _get(self, name: str, start: int, end: int | None) -> Any:
        length = 0 if end is None else end - start + 1
        try:
            return self.client.get_object(self.bucket, name, offset=start, length=length)
        except S3Error as exc:
            if exc.code in MISSING_ERRORS:
                raise FileNotFoundError(f"nothing stored under {self._key(name)!r}") from None
            raise

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        name = self.object_name(key)
        if end is not None and end < start:
            return
        try:
            response = await asyncio.to_thread(self._get, name, start, end)
        except (MinioException, HTTPError) as exc:
            raise self._fail(exc, f"read {key}") from exc
        try:
            while True:
                chunk = await asyncio.to_thread(response.read, CHUNK_SIZE)
                if not chunk:
                    break
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def size(self, key: str) -> int | None:
        name = self.object_name(key)

        def stat() -> int | None:
            try:
                return self.client.stat_object(self.bucket, name).size
            except S3Error as exc:
                if exc.code in MISSING_ERRORS:
                    return None
                raise

        try:
            return await asyncio.to_thread(stat)
        except (MinioException, HTTPError) as exc:
            raise self._fail(exc, f"look up {key}") from exc

    @asynccontextmanager
    async def open_local(self, key: str) -> AsyncIterator[Path]:
        name = self.object_name(key)
        suffix = Path(key).suffix
        self.scratch.mkdir(parents=True, exist_ok=True)
        path = self.scratch / f"{DOWNLOAD_PREFIX}{uuid.uuid4().hex}{suffix}"

        def download() -> None:
            response = self._get(name, 0, None)
            try:
                with path.open("wb") as fh:
                    shutil.copyfileobj(response, fh, CHUNK_SIZE)
            finally:
                response.close()
                response.release_conn()

        try:
            try:
                await asyncio.to_thread(download)
            except (MinioException, HTTPError) as exc:
                raise self._fail(exc, f"download {key}") from exc
            yield path
        finally:
            path.unlink(missing_ok=True)

    # -- listing and deleting -----------------------------------------------------------------

    def _names(self, prefix: str) -> Iterator[str]:
        """Objects that are `prefix` itself or lie in the folder `prefix/`."""
        base = self.object_name(prefix)
        for obj in self.client.list_objects(self.bucket, prefix=base, recursive=True):
            name = obj.object_name
            if name is not None and (name == base or name.startswith(base + "/")):
                yield name

    async def list(self, prefix: str) -> list[str]:
        try:
            names = await asyncio.to_thread(lambda: list(self._names(prefix)))
        except (MinioException, HTTPError) as exc:
            raise self._fail(exc, f"list {prefix}") from exc
        return sorted(self._key(name) for name in names)

    async def delete_prefix(self, prefix: str) -> int:
        def delete() -> tuple[int, list[str]]:
            names = list(self._names(prefix))
            if not names:
                return 0, []
            errors = self.client.remove_objects(self.bucket, (DeleteObject(name) for name in names))
            # remove_objects is lazy: nothing is deleted until its errors are read.
            failed = [f"{e.name}: {e.code}" for e in errors]
            return len(names) - len(failed), failed

        try:
            deleted, failed = await asyncio.to_thread(delete)
        except (MinioException, HTTPError) as exc:
            raise self._fail(exc, f"delete {prefix}") from exc
        if failed:
            raise S3StorageError(
                f"deleted {deleted} objects under {prefix!r} but not {len(failed)}: "
                + "; ".join(failed[:5])
            )
        return deleted

    # -- multipart uploads, part by part (resumable uploads; see multipart.py) ------------------

    @property
    def part_size(self) -> int:
        return self.config.part_size

    create_multipart = multipart.create_multipart
    upload_part = multipart.upload_part
    complete_multipart = multipart.complete_multipart
    abort_multipart = multipart.abort_multipart

    # -- presigned URLs -------------------------------------------------------------------------

    @staticmethod
    def _expiry(expires: int | float | timedelta) -> timedelta:
        if not isinstance(expires, timedelta):
            expires = timedelta(seconds=expires)
        if not 1 <= expires.total_seconds() <= MAX_PRESIGN_SECONDS:
            raise ValueError("a presigned URL must be valid for 1 second to 7 days")
        return expires

    def presigned_get(self, key: str, expires: int | float | timedelta) -> str:
        """A URL that lets anyone holding it GET `key` for `expires` (seconds).

        Pure computation (the region is configured): cheap enough to sign every
        segment of a playlist.
        """
        return self.client.presigned_get_object(
            self.bucket, self.object_name(key), expires=self._expiry(expires)
        )

    def presigned_put(
        self,
        key: str,
        expires: int | float | timedelta,
        content_type: str | None = None,
    ) -> str:
        """A URL that lets anyone holding it PUT `key` for `expires` (seconds).

        With `content_type`, the signature covers the Content-Type header, so the
        upload must send exactly that type.
        """
        url = self.client.presigned_put_object(
            self.bucket, self.object_name(key), expires=self._expiry(expires)
        )
        if content_type is None:
            return url
        return resign_with_headers(url, self.config.secret_key, {"content-type": content_type})

    def cross_origin_problem(self, origin: str) -> str | None:
        """Why a page on `origin` could not play presigned media from the store, or None.

        Asks the store as a browser would (a CORS preflight for a presigned GET), so
        the answer holds whatever set the rules; `clipsync doctor` reports it when
        `[storage] playback = "presigned"`.
        """
        url = self.presigned_get(CORS_CHECK_KEY, 60)
        try:
            http = _http(PROBE_CONNECT_TIMEOUT, PROBE_READ_TIMEOUT, 0)
            if cors.preflight(http, url, origin):
                return None
        except HTTPError as exc:
            return explain(exc, self.config, "answer a CORS preflight")
        return (
            f"browsers on {origin} are refused media from bucket {self.bucket!r}: its CORS "
            f'rules do not allow that origin, so with [storage] playback = "presigned" '
            f"players there fail. ClipSync sets its rule when it starts if the key may "
            f"(s3:PutBucketCORS); or add a rule allowing GET from {origin}, or set "
            f'[storage] playback = "proxy"'
        )


# -- the start-up probe -------------------------------------------------------------------------


def probe_bucket(config: S3Settings) -> Availability:
    """Really connect: the bucket exists or is created; a small object round-trips."""
    client = make_client(config, probe=True)
    bucket = config.bucket
    name = f"{_normal_prefix(config.prefix)}clipsync-probe/{uuid.uuid4().hex}"
    body = b"clipsync storage probe\n"
    step = f"list bucket {bucket!r}"
    try:
        try:
            # A listing (not a HEAD) first: its error has a body, so wrong keys and
            # missing permissions can be told apart.
            next(iter(client.list_objects(bucket, prefix=name)), None)
            created = ""
        except S3Error as exc:
            if exc.code != "NoSuchBucket":
                raise
            step = f"create bucket {bucket!r}"
            client.make_bucket(bucket, location=config.region or None)
            created = ", created"
        step = "write a test object"
        client.put_object(bucket, name, io.BytesIO(body), len(body))
        step = "read a test object"
        response = client.get_object(bucket, name)
        try:
            data = response.read()
        finally:
            response.close()
            response.release_conn()
        if data != body:
            return Availability.no(
                f"{config.endpoint}: a test object read back differently from what was written"
            )
        step = "delete a test object"
        client.remove_object(bucket, name)
    except Exception as exc:
        reason = explain(exc, config, step)
        log.info("S3 storage probe failed: %s", reason)
        return Availability.no(reason)
    scheme = "https" if config.secure else "http"
    where = f"{scheme}://{config.endpoint}/{bucket}/{_normal_prefix(config.prefix)}"
    return Availability.yes(f"objects in {where}{created}")


def playback_cors(config: S3Settings, origin: str) -> str:
    """Let pages on `origin` read presigned media (see cors.py); say how that stands.

    Never fails the probe: proxy playback and uploads work without the rule.
    """
    client = make_client(config, probe=True)
    try:
        return cors.ensure_playback_rule(client, config.bucket, origin)
    except S3Error as exc:
        if exc.code in cors.NO_API:
            return (
                f"the store has no bucket CORS API ({exc.code}): it must let pages on "
                f"{origin} read presigned media by itself (MinIO lets every origin)"
            )
        reason = explain(exc, config, "set the bucket's CORS rule")
    except (MinioException, HTTPError) as exc:
        reason = explain(exc, config, "set the bucket's CORS rule")
    log.warning("%s: browsers on %s may be refused presigned media", reason, origin)
    return f"{reason}: browsers on {origin} may be refused presigned media"


@hookimpl
def settings_schema() -> type:
    return S3Settings


@hookimpl
def register_storage_backends() -> list[type]:
    return [S3Storage]
