"""Resumable uploads (tus 1.0): their state and their bytes, without the HTTP.

Where an upload's bytes wait depends on the storage:

- Storage that assembles objects from parts (`MultipartStorage`, the `s3` backend)
  holds every byte of the upload, so the next request may reach any web host. Each
  `part_size` bytes are sent as a part as soon as they have arrived; when a request
  ends, the bytes after the last full part (less than a part) go to the store as
  one object, the upload's *tail* (`tail_key`). The row records the stored parts,
  the offset they and the tail add up to, and the SHA-256 state at that offset: it
  is the truth, and never promises a byte the store does not hold. A request fetches
  the tail into a scratch folder of its own under `[uploads] resumable_dir`, appends
  to it, and deletes the folder when it ends; at most one part per upload waits on
  disk, and memory holds a few MiB of incoming bytes plus the parts being sent. A
  request cut off by a crash loses what arrived after its last stored part: the
  offset the next HEAD answers is lower, and the client sends those bytes again.
- Otherwise the bytes wait as one file, `data`, in the upload's folder on this
  host, which the store takes over when it is complete (`AdoptingStorage.adopt_file`:
  a rename for local storage), or copies. The file is the truth; the row is a
  checkpoint saved every `CHECKPOINT_BYTES` and when a request ends, and after a
  crash the SHA-256 saved with it is brought forward over the bytes staged after it
  (see `services/checksums.py`). Like local storage itself, this serves one host:
  several web hosts need object storage (`clipsync doctor` says so).

Either way the finished video's checksum never needs the file read back.

One request at a time writes to an upload. With parts, it holds the upload's lease
in the database (`resumable_lease`), which every host sees; with one file, an
exclusive `flock` on the upload's `lock` file, which the kernel releases when the
process dies.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clipsync.backends import AdoptingStorage, MultipartStorage, StorageBackend
from clipsync.errors import (
    BadRequest,
    Conflict,
    Gone,
    NotFound,
    UnsupportedUpload,
)
from clipsync.models import ResumableUpload, User, Video
from clipsync.services import disk_space, quotas, resumable_lease
from clipsync.services.checksums import Sha256
from clipsync.services.resumable_lease import UploadLease
from clipsync.services.resumable_session import (
    PARTS_IN_FLIGHT,
    Checksum,
    Lock,
    Progress,
    Session,
    tail_key,
)
from clipsync.services.resumable_staging import Stage, UploadLock
from clipsync.services.uploads import record_upload, too_large
from clipsync.settings import Settings
from clipsync.storage import keys

log = logging.getLogger(__name__)


def byte_count(value: str | None) -> int | None:
    """A header's number of bytes: ASCII digits, at most 19 of them; None otherwise.

    str.isdigit() also takes "²" (which int() refuses) and any number of digits
    (int() refuses more than 4300): both were a 500.
    """
    if value is None or not (value.isascii() and value.isdigit() and len(value) <= 19):
        return None
    return int(value)


def parse_length(value: str | None) -> int:
    length = byte_count(value)
    if length is None:
        raise BadRequest("Upload-Length must be the file's size in bytes.")
    return length


def parse_offset(value: str | None) -> int:
    offset = byte_count(value)
    if offset is None:
        raise BadRequest("Upload-Offset must be a number of bytes.")
    return offset


def parse_metadata(header: str | None) -> dict[str, str]:
    """`Upload-Metadata`: comma-separated `key base64(value)` pairs (the value is optional)."""
    values: dict[str, str] = {}
    for pair in (header or "").split(","):
        if not pair.strip():
            continue
        name, _, encoded = pair.strip().partition(" ")
        try:
            values[name] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest(f"Upload-Metadata: the value of {name!r} is not base64.") from None
    return values


def parse_checksum(header: str | None) -> Checksum | None:
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm.lower() != "sha256":
        raise BadRequest(f"Upload-Checksum: {algorithm!r} is not supported; use sha256.")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        digest = b""
    if len(digest) != 32:
        raise BadRequest("Upload-Checksum: the checksum is not a base64 SHA-256.")
    return Checksum(digest)


class ResumableService:
    def __init__(self, settings: Settings, storage: StorageBackend) -> None:
        self.settings = settings
        self.storage = storage
        self.root = settings.data_dir / settings.uploads.resumable_dir
        self.multipart = isinstance(storage, MultipartStorage)

    # -- the protocol's operations -------------------------------------------------------

    async def create(
        self, owner: User, length_header: str | None, metadata_header: str | None
    ) -> ResumableUpload:
        length = parse_length(length_header)
        if length > self.settings.uploads.max_size:
            raise too_large(self.settings)
        if length == 0:
            raise UnsupportedUpload("The file is empty.")
        metadata = parse_metadata(metadata_header)
        filename = metadata.get("filename", "").strip()
        if not filename:
            raise BadRequest("Upload-Metadata must name the file (filename).")
        if not filename.lower().endswith(keys.SOURCE_EXTENSIONS):
            accepted = ", ".join(keys.SOURCE_EXTENSIONS)
            raise UnsupportedUpload(f"Only video files can be uploaded ({accepted}).")
        await quotas.ensure_allowed(self.settings, owner, length)
        # Room for every byte promised now, so that the upload cannot fill the disk
        # half-way (with multipart storage only a few parts wait on disk at once).
        staged = length
        if self.multipart:
            staged = min(length, self.storage.part_size * (PARTS_IN_FLIGHT + 1))  # type: ignore[attr-defined]
        await disk_space.ensure_room_for_upload(
            self.settings, self.storage, staged, staging=self.root
        )
        upload_id = uuid.uuid4()
        upload = await ResumableUpload.create(
            id=upload_id,
            owner=owner,
            filename=filename[:255],
            content_type=metadata.get("filetype", "")[:255],
            metadata=(metadata_header or "").strip(),
            length=length,
            storage_key=keys.source_key(upload_id, filename),
            sha256_state=Sha256().state(),
            expires_at=self._expiry(),
        )
        if not self.multipart:
            await asyncio.to_thread(self._folder(upload).mkdir, parents=True, exist_ok=True)
        log.info("resumable upload %s of user %s: %d bytes", upload.id, owner.id, length)
        return upload

    async def get(self, owner: User, upload_id: str) -> ResumableUpload:
        """The caller's upload; someone else's answers like a missing one."""
        try:
            key = uuid.UUID(upload_id)
        except ValueError:
            raise NotFound("There is no such upload.") from None
        upload = await ResumableUpload.get_or_none(id=key, owner_id=owner.id)
        if upload is None:
            raise NotFound("There is no such upload.")
        if upload.expires_at <= datetime.now(UTC):
            raise Gone("This upload has expired; start it again.")
        return upload

    async def status(self, owner: User, upload_id: str) -> ResumableUpload:
        """The upload with its true offset.

        With parts, the row's (every byte it counts is in the store); with one file,
        brought up to date from disk when nobody writes.
        """
        upload = await self.get(owner, upload_id)
        if upload.finished or self.multipart:
            return upload
        try:
            lock = UploadLock(self._folder(upload))
        except Conflict:
            return upload  # a request is writing: its last checkpoint is the answer
        try:
            await self._recover(upload)
        finally:
            await lock.release()
        return upload

    async def patch(
        self,
        owner: User,
        upload_id: str,
        offset_header: str | None,
        checksum_header: str | None,
        content_length: str | None,
        body: AsyncIterator[bytes],
    ) -> ResumableUpload:
        """Append a request's body at `Upload-Offset`; returns the upload with its new offset."""
        upload = await self.get(owner, upload_id)
        offset = parse_offset(offset_header)
        checksum = parse_checksum(checksum_header)
        if upload.finished:
            raise Conflict("This upload is already complete.")
        declared = int(content_length) if content_length and content_length.isdigit() else 0
        if offset + declared > upload.length:
            raise BadRequest("The request body goes beyond Upload-Length.")
        lock = await self.lock(upload)
        try:
            progress = await self._recover(upload)
            if progress.offset != offset:
                raise Conflict(
                    f"Upload-Offset is {offset} but the upload has {progress.offset} bytes.",
                    headers={"Upload-Offset": str(progress.offset)},
                )
            session = Session(self, upload, progress, lock, checksum)
            await asyncio.to_thread(session.open)
        except BaseException:
            await self._let_go(upload, lock)
            raise
        error: BaseException | None = None
        try:
            await session.pump(body)
        except BaseException as exc:  # the client went away (CancelledError) or sent too much
            error = exc
        # Ending the request stores what arrived and releases the lock even when the
        # client is gone and this task is cancelled again: it runs as a task of its own.
        ending = asyncio.ensure_future(session.end(error))
        await asyncio.shield(ending)
        if error is not None:
            raise error
        return upload

    async def terminate(self, owner: User, upload_id: str) -> None:
        upload = await self.get(owner, upload_id)
        await self.discard(upload, await self.lock(upload))

    async def delete_expired(self) -> int:
        """Delete every expired upload that no request is writing to; return how many."""
        count = 0
        for upload in await ResumableUpload.filter(expires_at__lt=datetime.now(UTC)):
            if upload.finished:
                await upload.delete()  # the video lives on; only the record goes
                continue
            try:
                lock = await self.lock(upload)
            except Conflict:
                continue
            await self.discard(upload, lock)
            log.info("deleted resumable upload %s: expired", upload.id)
            count += 1
        return count

    async def discard(self, upload: ResumableUpload, lock: Lock) -> None:
        """Delete an unfinished upload's bytes, staged and stored, and its row."""
        try:
            if upload.multipart_id and not upload.finished:
                await self.storage.abort_multipart(  # type: ignore[attr-defined]
                    upload.storage_key, upload.multipart_id
                )
            if self.multipart and not upload.finished:
                await self.storage.delete_prefix(tail_key(upload))
            await asyncio.to_thread(shutil.rmtree, self._folder(upload), True)
            await upload.delete()
        finally:
            await lock.release()
        if self.multipart:
            await resumable_lease.forget(upload.id)

    # -- internals ---------------------------------------------------------------------------

    async def lock(self, upload: ResumableUpload) -> Lock:
        """Hold the upload for one request (raises Conflict while another holds it)."""
        if self.multipart:
            return await UploadLease.take(upload.id)
        return UploadLock(self._folder(upload))

    async def _let_go(self, upload: ResumableUpload, lock: Lock) -> None:
        """End a request's hold; with parts, its scratch folder goes too."""
        try:
            if self.multipart:
                await asyncio.to_thread(shutil.rmtree, self._folder(upload), True)
        finally:
            await lock.release()

    def _folder(self, upload: ResumableUpload) -> Path:
        return self.root / str(upload.id)

    def _expiry(self) -> datetime:
        return datetime.now(UTC) + timedelta(hours=self.settings.uploads.resumable_expiry_hours)

    def stage(self, upload: ResumableUpload) -> Stage:
        part_size = self.storage.part_size if self.multipart else None  # type: ignore[attr-defined]
        return Stage(self._folder(upload), part_size)

    async def _recover(self, upload: ResumableUpload) -> Progress:
        """What the upload holds (lock held), staged here for the request to append to."""
        if self.multipart:
            return await self._fetch_tail(upload)
        progress = await asyncio.to_thread(self._reconcile, upload)
        state = progress.sha256.state() if progress.sha256 else None
        if progress.offset != upload.offset or state != upload.sha256_state:
            log.info(
                "resumable upload %s: %d bytes on record, %d found",
                upload.id,
                upload.offset,
                progress.offset,
            )
            upload.offset = progress.offset
            upload.sha256_state = state
            await upload.save(update_fields=["offset", "sha256_state", "updated_at"])
        if progress.offset == upload.length:
            # Every byte was here before a crash cut the end short: finish now.
            await self.finish(upload, progress)
        return progress

    def _reconcile(self, upload: ResumableUpload) -> Progress:
        """Square the row with the staged file: the file wins (one file, this host)."""
        stage = self.stage(upload)
        stage.folder.mkdir(parents=True, exist_ok=True)
        total = min(stage.size(1) or 0, upload.length)
        stage.truncate(total)  # anything after the last consistent byte goes
        sha256 = Sha256.resume(upload.sha256_state)
        if sha256 is None or not upload.offset <= total:
            # The saved progress does not fit what is on disk (the machine crashed, or
            # there is no libcrypto): hash again what is here.
            sha256, start = Sha256(), 0
        else:
            start = upload.offset
        stage.hash_range(sha256, start, total)
        return Progress(total, sha256)

    async def _fetch_tail(self, upload: ResumableUpload) -> Progress:
        """With parts: the row's progress, and its tail fetched into a fresh scratch folder."""
        stage = self.stage(upload)
        await asyncio.to_thread(shutil.rmtree, stage.folder, True)
        await asyncio.to_thread(stage.folder.mkdir, parents=True, exist_ok=True)
        stored = {int(n): (str(etag), int(size)) for n, etag, size in upload.parts}
        progress = Progress(upload.offset, Sha256.resume(upload.sha256_state), stored)
        if upload.offset == 0:
            progress.sha256 = Sha256()
        if upload.multipart_id and await self.storage.size(upload.storage_key) == upload.length:
            # A request joined the parts but was cut off before it recorded so.
            progress.offset, progress.sha256 = upload.length, None
            await self.finish(upload, progress)
            return progress
        stored_end = sum(size for _, size in progress.stored_prefix().values())
        tail = upload.offset - stored_end
        if tail > 0 and await self._download(tail_key(upload), stage.path(len(stored) + 1), tail):
            return progress
        if tail > 0:
            log.warning("resumable upload %s: its tail is missing from the store", upload.id)
            upload.offset, upload.sha256_state = stored_end, None
            await upload.save(update_fields=["offset", "sha256_state", "updated_at"])
            progress.offset, progress.sha256 = stored_end, None
        return progress

    async def _download(self, key: str, path: Path, length: int) -> bool:
        """Copy the first `length` bytes of `key` to `path`; False when the store has fewer."""
        got = 0
        with path.open("wb") as fh:
            async for chunk in self.storage.read(key, 0, length - 1):
                await asyncio.to_thread(fh.write, chunk)
                got += len(chunk)
        return got == length

    async def _store_staged(self, upload: ResumableUpload, progress: Progress) -> None:
        """Send every staged part not stored yet (multipart storage), one after another."""
        stage = self.stage(upload)
        number = 1
        while number in progress.stored or stage.size(number) is not None:
            size = stage.size(number) or 0
            if number not in progress.stored and size:
                if upload.multipart_id is None:
                    upload.multipart_id = await self.storage.create_multipart(  # type: ignore[attr-defined]
                        upload.storage_key, upload.content_type or None
                    )
                etag = await self.storage.upload_part(  # type: ignore[attr-defined]
                    upload.storage_key, upload.multipart_id, number, stage.path(number)
                )
                progress.stored[number] = (etag, size)
            number += 1
        upload.parts = [[n, e, s] for n, (e, s) in sorted(progress.stored.items())]
        await upload.save(update_fields=["multipart_id", "parts", "updated_at"])

    async def finish(self, upload: ResumableUpload, progress: Progress) -> Video:
        """The last byte has arrived: the object is made whole and becomes an UPLOADED video."""
        key = upload.storage_key
        stage = self.stage(upload)
        if await self.storage.size(key) != upload.length:
            if self.multipart and upload.multipart_id is None and not progress.stored:
                # It all fits in one part: one plain PUT, no multipart upload.
                await self.storage.put_file(key, stage.path(1), upload.content_type or None)
            elif self.multipart:
                await self._store_staged(upload, progress)
                parts = sorted((n, etag) for n, (etag, _) in progress.stored.items())
                await self.storage.complete_multipart(  # type: ignore[attr-defined]
                    key, upload.multipart_id, parts
                )
            elif isinstance(self.storage, AdoptingStorage):
                await self.storage.adopt_file(key, stage.path(1))
            else:
                await self.storage.put_file(key, stage.path(1), upload.content_type or None)
        video = await Video.get_or_none(id=upload.id)
        if video is None:
            owner = await User.get(id=upload.owner_id)  # type: ignore[attr-defined]
            checksum = progress.sha256.hexdigest() if progress.sha256 else None
            video = await record_upload(
                owner, upload.id, key, upload.filename, upload.length, checksum
            )
        upload.offset = upload.length
        upload.sha256_state = None
        upload.expires_at = self._expiry()
        await upload.save()
        if self.multipart:
            await self.storage.delete_prefix(tail_key(upload))
        await asyncio.to_thread(shutil.rmtree, stage.folder, True)
        log.info("resumable upload %s finished: video %s", upload.id, video.id)
        return video
