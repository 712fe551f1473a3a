"""The files of a resumable upload on local disk, and the `flock` on them.

The blocking side of `clipsync.services.resumable`: everything here runs on a worker
thread (or is quick), never holding the event loop for a write. With storage that
assembles objects from parts, these files are one request's scratch space (the
store holds every byte a later request needs, see `resumable.py`); otherwise they
are the upload itself, on this host.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from clipsync.errors import Conflict
from clipsync.services.checksums import Sha256

READ_SIZE = 4 * 1024 * 1024


def _write_all(fd: int, buffers: list[bytes | memoryview]) -> None:
    written = os.writev(fd, buffers) if buffers else 0
    total = sum(len(b) for b in buffers)
    if written < total:  # rare on regular files: finish byte by byte
        rest = memoryview(b"".join(buffers))[written:]
        while rest:
            rest = rest[os.write(fd, rest) :]


class Stage:
    """The files of one upload on local disk (a part size of None: one `data` file)."""

    def __init__(self, folder: Path, part_size: int | None) -> None:
        self.folder = folder
        self.part_size = part_size

    def path(self, number: int) -> Path:
        return self.folder / ("data" if self.part_size is None else f"part-{number:05d}")

    def locate(self, offset: int) -> tuple[int, int]:
        """The part that holds byte `offset`, and where in it."""
        if self.part_size is None:
            return 1, offset
        return offset // self.part_size + 1, offset % self.part_size

    def size(self, number: int) -> int | None:
        try:
            return self.path(number).stat().st_size
        except FileNotFoundError:
            return None

    def hash_range(self, sha256: Sha256, start: int, end: int) -> None:
        """Bring `sha256` forward over staged bytes `start`..`end` (all on disk)."""
        while start < end:
            number, position = self.locate(start)
            with self.path(number).open("rb") as fh:
                fh.seek(position)
                while start < end:
                    chunk = fh.read(min(READ_SIZE, end - start))
                    if not chunk:
                        break
                    sha256.update(chunk)
                    start += len(chunk)

    def truncate(self, offset: int) -> None:
        """Drop every staged byte from `offset` on."""
        number, position = self.locate(offset)
        if self.part_size is not None:
            later = number + 1
            while self.path(later).exists():
                self.path(later).unlink()
                later += 1
        if self.path(number).exists():
            os.truncate(self.path(number), position)


class Sink:
    """Appends a request's bytes to the stage, hashing them; runs on a worker thread.

    `boundaries` keeps the saved SHA-256 state at the end of each part this request
    filled, so the upload's row can record a checkpoint at any stored part's end.
    """

    def __init__(self, stage: Stage, offset: int, sha256: Sha256 | None, verify: bool) -> None:
        self.stage = stage
        self.offset = offset
        self.sha256 = sha256
        self.body = hashlib.sha256() if verify else None
        self.boundaries: dict[int, str | None] = {}
        self.number, position = stage.locate(offset)
        self.fd = self._open(self.number, position)

    def _open(self, number: int, position: int) -> int:
        fd = os.open(self.stage.path(number), os.O_WRONLY | os.O_CREAT, 0o600)
        os.ftruncate(fd, position)
        os.lseek(fd, position, os.SEEK_SET)
        return fd

    def write(self, chunks: list[bytes]) -> list[int]:
        """Append `chunks`; return the numbers of the parts this filled."""
        for chunk in chunks:
            if self.body is not None:
                self.body.update(chunk)
        filled: list[int] = []
        part_size = self.stage.part_size
        if part_size is None:
            for chunk in chunks:
                if self.sha256 is not None:
                    self.sha256.update(chunk)
            _write_all(self.fd, chunks)  # type: ignore[arg-type]
            self.offset += sum(len(c) for c in chunks)
            return filled
        batch: list[bytes | memoryview] = []
        room = part_size - self.offset % part_size
        for chunk in chunks:
            view = memoryview(chunk)
            if self.sha256 is not None and len(view) < room:
                self.sha256.update(chunk)  # the usual case: no part ends in this chunk
            while len(view) >= room:
                if self.sha256 is not None:
                    self.sha256.update(bytes(view[:room]))
                    self.boundaries[self.number] = self.sha256.state()
                batch.append(view[:room])
                _write_all(self.fd, batch)
                self.offset += sum(len(b) for b in batch)
                view, batch = view[room:], []
                os.close(self.fd)
                filled.append(self.number)
                self.number += 1
                self.fd = self._open(self.number, 0)
                room = part_size
                if self.sha256 is not None and 0 < len(view) < room:
                    self.sha256.update(bytes(view))
            if len(view):
                batch.append(view)
                room -= len(view)
        _write_all(self.fd, batch)
        self.offset += sum(len(b) for b in batch)
        return filled

    def close(self) -> None:
        os.close(self.fd)


class UploadLock:
    """An exclusive, non-blocking `flock` on the upload's lock file."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise Conflict(
                "Another request is sending bytes to this upload; try again when it ends."
            ) from None

    async def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing releases the lock
            self.fd = -1
