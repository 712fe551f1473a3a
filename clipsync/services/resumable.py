"""Resumable uploads (tus 1.0): their state and their bytes, without the HTTP.

An upload's bytes wait in a folder of its own under `[uploads] resumable_dir`:

- with storage that assembles objects from parts (`MultipartStorage`, the `s3`
  backend), as `part-00001`, `part-00002`…, each `part_size` bytes but the last; a
  part is sent to the store as soon as it is full, and its file is deleted once the
  row records it. At most one part per upload waits on disk, and memory holds a few
  MiB of incoming bytes plus the parts being sent;
- otherwise as one file, `data`, that the store takes over when it is complete
  (`AdoptingStorage.adopt_file`: a rename for local storage), or copies.

The row (`ResumableUpload`) is a checkpoint, saved every `CHECKPOINT_BYTES`, when a
part is stored and when a request ends (also when the client goes away), never per
chunk. After a crash the files on disk and the parts recorded as stored are trusted:
the offset is what they add up to, and the SHA-256 saved with the checkpoint is
brought forward over the bytes staged after it (see `services/checksums.py`), so the
finished video's checksum never needs the file read back from the store.

One request at a time writes to an upload: it holds an exclusive `flock` on the
upload's `lock` file, which the kernel releases when the process dies, so several
server workers (and a restart) never corrupt an upload or leave it locked.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clipsync.backends import AdoptingStorage, MultipartStorage, StorageBackend
from clipsync.errors import (
    BadRequest,
    ChecksumMismatch,
    Conflict,
    Gone,
    NotFound,
    UnsupportedUpload,
)
from clipsync.models import ResumableUpload, User, Video
from clipsync.services import disk_space, quotas
from clipsync.services.checksums import Sha256
from clipsync.services.resumable_staging import Sink, Stage, UploadLock
from clipsync.services.uploads import record_upload, too_large
from clipsync.settings import Settings
from clipsync.storage import keys

log = logging.getLogger(__name__)

MiB = 1024 * 1024
# Incoming bytes gathered before one write (and hash) on a worker thread.
WRITE_SIZE = 2 * MiB
# Without parts to record, the row is saved at least this often during a request.
CHECKPOINT_BYTES = 64 * MiB
# Parts of one upload being sent to the store at once.
PARTS_IN_FLIGHT = 2


@dataclass(frozen=True)
class Checksum:
    """An `Upload-Checksum` header: the request body's expected SHA-256."""

    digest: bytes


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


@dataclass
class Progress:
    """What the lock holder knows of an upload: the truth, ahead of the row."""

    offset: int
    sha256: Sha256 | None
    # part number -> (etag, size), stored in the store.
    stored: dict[int, tuple[str, int]] = field(default_factory=dict)


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
        """The upload with its true offset (brought up to date from disk when nobody writes)."""
        upload = await self.get(owner, upload_id)
        if upload.finished:
            return upload
        try:
            lock = UploadLock(self._folder(upload))
        except Conflict:
            return upload  # a request is writing: its last checkpoint is the answer
        try:
            await self._recover(upload)
        finally:
            lock.release()
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
        lock = UploadLock(self._folder(upload))
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
            lock.release()
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
        lock = UploadLock(self._folder(upload))
        await self.discard(upload, lock)

    async def delete_expired(self) -> int:
        """Delete every expired upload that no request is writing to; return how many."""
        count = 0
        for upload in await ResumableUpload.filter(expires_at__lt=datetime.now(UTC)):
            if upload.finished:
                await upload.delete()  # the video lives on; only the record goes
                continue
            try:
                lock = UploadLock(self._folder(upload))
            except Conflict:
                continue
            await self.discard(upload, lock)
            log.info("deleted resumable upload %s: expired", upload.id)
            count += 1
        return count

    async def discard(self, upload: ResumableUpload, lock: UploadLock) -> None:
        """Delete an unfinished upload's bytes, staged and stored, and its row."""
        try:
            if upload.multipart_id and not upload.finished:
                await self.storage.abort_multipart(  # type: ignore[attr-defined]
                    upload.storage_key, upload.multipart_id
                )
            await asyncio.to_thread(shutil.rmtree, self._folder(upload), True)
            await upload.delete()
        finally:
            lock.release()

    # -- internals ---------------------------------------------------------------------------

    def _folder(self, upload: ResumableUpload) -> Path:
        return self.root / str(upload.id)

    def _expiry(self) -> datetime:
        return datetime.now(UTC) + timedelta(hours=self.settings.uploads.resumable_expiry_hours)

    def stage(self, upload: ResumableUpload) -> Stage:
        part_size = self.storage.part_size if self.multipart else None  # type: ignore[attr-defined]
        return Stage(self._folder(upload), part_size)

    async def _recover(self, upload: ResumableUpload) -> Progress:
        """Square the row with the disk (lock held): the staged files and stored parts win."""
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
        stage = self.stage(upload)
        stage.folder.mkdir(parents=True, exist_ok=True)
        stored = {int(n): (str(etag), int(size)) for n, etag, size in upload.parts}
        total, number = 0, 1
        while True:
            size = stored[number][1] if number in stored else stage.size(number)
            if size is None:
                break
            total += size
            if stage.part_size is None or size < stage.part_size:
                break
            number += 1
        total = min(total, upload.length)
        stage.truncate(total)  # anything after the last consistent byte goes
        for recorded in stored:  # staged copies of parts already stored are leftovers
            stage.path(recorded).unlink(missing_ok=True)
        sha256 = Sha256.resume(upload.sha256_state)
        stored_end = max(stored, default=0) * (stage.part_size or 0)
        if sha256 is None or not stored_end <= upload.offset <= total:
            # The saved progress does not fit what is on disk (the machine crashed, or
            # there is no libcrypto): hash again what is here, when that is everything.
            sha256, start = (None if stored else Sha256()), 0
        else:
            start = upload.offset
        if sha256 is not None:
            stage.hash_range(sha256, start, total)
        return Progress(total, sha256, stored)

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
        await asyncio.to_thread(shutil.rmtree, stage.folder, True)
        log.info("resumable upload %s finished: video %s", upload.id, video.id)
        return video


class Session:
    """One PATCH request, holding the upload's lock from start to end."""

    def __init__(
        self,
        service: ResumableService,
        upload: ResumableUpload,
        progress: Progress,
        lock: UploadLock,
        checksum: Checksum | None,
    ) -> None:
        self.service = service
        self.upload = upload
        self.progress = progress
        self.lock = lock
        self.checksum = checksum
        self.stage = service.stage(upload)
        self.start = progress.offset
        self.start_sha256 = progress.sha256.copy() if progress.sha256 and checksum else None
        self.checkpointed = progress.offset
        self.sending: dict[int, asyncio.Task[str]] = {}
        self.filled: list[int] = []
        self.saving = asyncio.Lock()
        self.sink: Sink | None = None

    def open(self) -> None:
        self.sink = Sink(self.stage, self.start, self.progress.sha256, self.checksum is not None)

    async def pump(self, body: AsyncIterator[bytes]) -> None:
        """Stage the body as it arrives: a write on a thread overlaps the next read."""
        assert self.sink is not None
        room = self.upload.length - self.start
        batch: list[bytes] = []
        gathered = 0
        writing: asyncio.Future[list[int]] | None = None
        try:
            async for chunk in body:
                if len(chunk) > room:
                    raise BadRequest("The request body goes beyond Upload-Length.")
                room -= len(chunk)
                batch.append(chunk)
                gathered += len(chunk)
                if gathered >= WRITE_SIZE:
                    if writing is not None:
                        await self._wrote(await writing)
                    writing = asyncio.ensure_future(asyncio.to_thread(self.sink.write, batch))
                    batch, gathered = [], 0
        finally:
            # Whatever happens, what was read is staged (`end` may discard it).
            if writing is not None:
                await self._wrote(await asyncio.shield(writing))
            if batch:
                await self._wrote(await asyncio.to_thread(self.sink.write, batch))

    async def _wrote(self, filled: list[int]) -> None:
        self.filled.extend(filled)
        if self.checksum is not None:
            return  # nothing leaves the stage until the checksum is verified
        await self._send_filled()
        assert self.sink is not None
        if not self.service.multipart and self.sink.offset - self.checkpointed >= CHECKPOINT_BYTES:
            await self._checkpoint()

    async def _send_filled(self, limit: int = PARTS_IN_FLIGHT) -> None:
        while self.filled:
            while len(self.sending) >= limit:
                await asyncio.wait(list(self.sending.values()), return_when=asyncio.FIRST_COMPLETED)
                await self._collect()
            number = self.filled.pop(0)
            if self.upload.multipart_id is None:
                self.upload.multipart_id = await self.service.storage.create_multipart(  # type: ignore[attr-defined]
                    self.upload.storage_key, self.upload.content_type or None
                )
                await self.upload.save(update_fields=["multipart_id", "updated_at"])
            self.sending[number] = asyncio.create_task(
                self.service.storage.upload_part(  # type: ignore[attr-defined]
                    self.upload.storage_key,
                    self.upload.multipart_id,
                    number,
                    self.stage.path(number),
                )
            )

    async def _collect(self) -> None:
        """Record the parts that were stored, then drop their staged files."""
        done = [n for n, task in self.sending.items() if task.done()]
        if not done:
            return
        for number in done:
            etag = self.sending.pop(number).result()
            self.progress.stored[number] = (etag, self.stage.size(number) or 0)
        await self._checkpoint()
        for number in done:
            await asyncio.to_thread(self.stage.path(number).unlink, True)

    async def _checkpoint(self) -> None:
        assert self.sink is not None
        async with self.saving:
            offset = self.sink.offset
            sha256 = self.sink.sha256
            self.upload.offset = offset
            self.upload.sha256_state = sha256.state() if sha256 else None
            self.upload.parts = [[n, e, s] for n, (e, s) in sorted(self.progress.stored.items())]
            self.upload.expires_at = self.service._expiry()
            await self.upload.save(
                update_fields=["offset", "sha256_state", "parts", "expires_at", "updated_at"]
            )
            self.checkpointed = offset

    async def end(self, error: BaseException | None) -> None:
        """Verify, store what is due, checkpoint, maybe finish; always release the lock."""
        assert self.sink is not None
        try:
            await asyncio.to_thread(self.sink.close)
            if self.checksum is not None:
                body = self.sink.body
                if error is not None or body is None or body.digest() != self.checksum.digest:
                    await asyncio.to_thread(self.stage.truncate, self.start)
                    self.sink.offset = self.start
                    self.sink.sha256 = self.start_sha256
                    self.filled.clear()
                    if error is None:
                        error = ChecksumMismatch()
                        raise error
                    return
            await self._send_filled()
            if self.sending:
                await asyncio.wait(list(self.sending.values()))
                await self._collect()
            await self._checkpoint()
            self.progress.offset = self.sink.offset
            self.progress.sha256 = self.sink.sha256
            if self.sink.offset == self.upload.length and error is None:
                await self.service.finish(self.upload, self.progress)
        finally:
            for task in self.sending.values():
                task.cancel()
            self.lock.release()
