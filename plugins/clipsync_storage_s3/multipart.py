"""Multipart uploads driven one part at a time: the storage side of resumable uploads.

`put_stream` lets the SDK run a whole multipart upload in one call; a resumable
(tus) upload instead sends each part when its bytes have arrived, possibly across
several requests and server restarts, and keeps the upload id and the parts' ETags
in its database row. The minio SDK has no public calls for that, so these use its
private `_create_multipart_upload`, `_upload_part`, `_complete_multipart_upload`
and `_abort_multipart_upload`: they have kept their signatures through minio 7.x
(checked on 7.2), and are what its own `put_object` calls.

The functions are methods of `S3Storage` (assigned in `__init__.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from minio.datatypes import Part
from minio.error import MinioException, S3Error
from urllib3.exceptions import HTTPError

if TYPE_CHECKING:
    from . import S3Storage

GONE_ERRORS = frozenset({"NoSuchUpload", "NoSuchKey", "NotFound"})


async def create_multipart(self: S3Storage, key: str, content_type: str | None = None) -> str:
    """Start assembling `key`; return the id of the multipart upload."""
    name = self.object_name(key)
    headers = {"Content-Type": content_type or "application/octet-stream"}
    try:
        return await asyncio.to_thread(
            self.client._create_multipart_upload, self.bucket, name, headers
        )
    except (MinioException, HTTPError) as exc:
        raise self._fail(exc, f"start a multipart upload of {key}") from exc


async def upload_part(self: S3Storage, key: str, upload_id: str, number: int, path: Path) -> str:
    """Store the file `path` as part `number`; return its ETag.

    The part is read whole (the SDK signs and sends bytes): one part of memory.
    """
    name = self.object_name(key)

    def send() -> str:
        data = path.read_bytes()
        return self.client._upload_part(self.bucket, name, data, None, upload_id, number)

    try:
        return await asyncio.to_thread(send)
    except (MinioException, HTTPError) as exc:
        raise self._fail(exc, f"store part {number} of {key}") from exc


async def complete_multipart(
    self: S3Storage, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
) -> None:
    """Join the parts `(number, etag)`, in order, into the object `key`."""
    name = self.object_name(key)
    listed = [Part(number, etag) for number, etag in sorted(parts)]
    try:
        await asyncio.to_thread(
            self.client._complete_multipart_upload, self.bucket, name, upload_id, listed
        )
    except (MinioException, HTTPError) as exc:
        raise self._fail(exc, f"complete the multipart upload of {key}") from exc


async def abort_multipart(self: S3Storage, key: str, upload_id: str) -> None:
    """Drop the multipart upload and its parts; harmless when it is already gone."""
    name = self.object_name(key)

    def abort() -> None:
        try:
            self.client._abort_multipart_upload(self.bucket, name, upload_id)
        except S3Error as exc:
            if exc.code not in GONE_ERRORS:
                raise

    try:
        await asyncio.to_thread(abort)
    except (MinioException, HTTPError) as exc:
        raise self._fail(exc, f"abort the multipart upload of {key}") from exc
