"""One PATCH request of a resumable upload: from its first byte to its last checkpoint.

The request's body is staged (`resumable_staging.Sink`) as it arrives; with storage
that assembles objects from parts, each full part is sent to the store at once, and
when the request ends the bytes after the last full part go to the store as the
upload's tail (see `clipsync.services.resumable`, which drives this).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clipsync.errors import BadRequest, ChecksumMismatch
from clipsync.models import ResumableUpload
from clipsync.services.checksums import Sha256
from clipsync.services.resumable_lease import UploadLease
from clipsync.services.resumable_staging import Sink, UploadLock
from clipsync.storage import keys

if TYPE_CHECKING:
    from clipsync.services.resumable import ResumableService

MiB = 1024 * 1024
# Incoming bytes gathered before one write (and hash) on a worker thread.
WRITE_SIZE = 2 * MiB
# Without parts to record, the row is saved at least this often during a request.
CHECKPOINT_BYTES = 64 * MiB
# Parts of one upload being sent to the store at once.
PARTS_IN_FLIGHT = 2

Lock = UploadLease | UploadLock


@dataclass(frozen=True)
class Checksum:
    """An `Upload-Checksum` header: the request body's expected SHA-256."""

    digest: bytes


@dataclass
class Progress:
    """What the lock holder knows of an upload: the truth, ahead of the row."""

    offset: int
    sha256: Sha256 | None
    # part number -> (etag, size), stored in the store.
    stored: dict[int, tuple[str, int]] = field(default_factory=dict)

    def stored_prefix(self) -> dict[int, tuple[str, int]]:
        """The stored parts 1, 2, ... up to the first one missing (parts are sent two
        at a time, so one may be stored before the one ahead of it)."""
        prefix: dict[int, tuple[str, int]] = {}
        while len(prefix) + 1 in self.stored:
            prefix[len(prefix) + 1] = self.stored[len(prefix) + 1]
        return prefix


def tail_key(upload: ResumableUpload) -> str:
    """Where the bytes after an upload's last stored part wait between requests."""
    return f"{keys.video_prefix(upload.id)}/upload-tail"


class Session:
    """One PATCH request, holding the upload's lock from start to end."""

    def __init__(
        self,
        service: ResumableService,
        upload: ResumableUpload,
        progress: Progress,
        lock: Lock,
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
        # The stored parts the row already counts (with parts).
        self.recorded = len(progress.stored_prefix())
        self.sending: dict[int, asyncio.Task[None]] = {}
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
        writing: asyncio.Future[None] | None = None
        try:
            async for chunk in body:
                if len(chunk) > room:
                    raise BadRequest("The request body goes beyond Upload-Length.")
                room -= len(chunk)
                batch.append(chunk)
                gathered += len(chunk)
                if gathered >= WRITE_SIZE:
                    if writing is not None:
                        await writing
                    writing = asyncio.ensure_future(self._stage(batch))
                    batch, gathered = [], 0
        finally:
            # Whatever happens, what was read is staged (`end` may discard it).
            if writing is not None:
                await asyncio.shield(writing)
            if batch:
                await self._stage(batch)

    async def _stage(self, batch: list[bytes]) -> None:
        """Write a batch, then at once send the parts it filled: a client that pauses
        after them still has them stored (and counted) meanwhile."""
        assert self.sink is not None
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
            self.sending[number] = asyncio.create_task(self._send(number))

    async def _send(self, number: int) -> None:
        """Store one part, record it at once (the client may send nothing more for a
        while), then drop its staged file."""
        path = self.stage.path(number)
        etag = await self.service.storage.upload_part(  # type: ignore[attr-defined]
            self.upload.storage_key, self.upload.multipart_id, number, path
        )
        self.progress.stored[number] = (etag, self.stage.size(number) or 0)
        await self._checkpoint_parts()
        await asyncio.to_thread(path.unlink, True)

    async def _collect(self) -> None:
        """Forget the parts whose sending ended (raising the error of one that failed)."""
        for number in [n for n, task in self.sending.items() if task.done()]:
            self.sending.pop(number).result()

    async def _checkpoint_parts(self) -> None:
        """Record the stored parts, and move the offset to their end once it passes the
        row's: the bytes staged after them are on this host only, so they are not counted."""
        prefix = self.progress.stored_prefix()
        if len(prefix) <= self.recorded:
            return
        assert self.sink is not None
        async with self.saving:
            self.recorded = len(prefix)
            self.upload.offset = sum(size for _, size in prefix.values())
            self.upload.sha256_state = self.sink.boundaries.get(len(prefix))
            await self._save_parts(prefix)

    async def _checkpoint(self) -> None:
        """Record every staged byte (one file on this host: the file is the upload)."""
        assert self.sink is not None
        async with self.saving:
            offset = self.sink.offset
            sha256 = self.sink.sha256
            self.upload.offset = offset
            self.upload.sha256_state = sha256.state() if sha256 else None
            await self._save_parts(self.progress.stored)
            self.checkpointed = offset

    async def _save_parts(self, parts: dict[int, tuple[str, int]]) -> None:
        self.upload.parts = [[n, e, s] for n, (e, s) in sorted(parts.items())]
        self.upload.expires_at = self.service._expiry()
        await self.upload.save(
            update_fields=["offset", "sha256_state", "parts", "expires_at", "updated_at"]
        )

    async def _store_tail(self) -> None:
        """With parts: put the bytes after the last full part into the store, then count
        them. All parts are stored by now (`end` waited for them)."""
        assert self.sink is not None
        prefix = self.progress.stored_prefix()
        stored_end = sum(size for _, size in prefix.values())
        if self.sink.offset > stored_end:
            path = self.stage.path(len(prefix) + 1)
            await self.service.storage.put_file(tail_key(self.upload), path, None)
        async with self.saving:
            self.recorded = len(prefix)
            self.upload.offset = self.sink.offset
            self.upload.sha256_state = self.sink.sha256.state() if self.sink.sha256 else None
            await self._save_parts(prefix)

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
            self.progress.offset = self.sink.offset
            self.progress.sha256 = self.sink.sha256
            complete = self.sink.offset == self.upload.length and error is None
            if self.service.multipart and complete:
                await self.service.finish(self.upload, self.progress)
            elif self.service.multipart:
                if self.sink.offset > self.start:
                    await self._store_tail()
            else:
                await self._checkpoint()
                if complete:
                    await self.service.finish(self.upload, self.progress)
        finally:
            for task in self.sending.values():
                task.cancel()
            await self.service._let_go(self.upload, self.lock)
