"""Batches the store could not take, kept on local disk until it can.

One batch is one file, `<folder>/NNNNN.jsonl` (one `WatchEvent` per line, numbered in
the order they were spooled). A file is written to a temporary name and then linked
into place, so a reader never sees half a batch, and two processes spooling at once
never take the same number. A file is removed only after the store has taken its
events; a file the store keeps refusing for a reason other than being unreachable is
set aside as `NNNNN.jsonl.rejected`, for a person to look at, so it cannot block the
others. Delivery holds an exclusive lock on the folder (`.lock`, released by the
kernel if the process dies), so each file is delivered by one process at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from clipsync.analytics.events import WatchEvent, dumps, loads

SUFFIX = ".jsonl"
REJECTED_SUFFIX = ".rejected"


class Spool:
    """A folder of spooled batches for one backend."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _numbered(self) -> list[tuple[int, Path]]:
        if not self.folder.is_dir():
            return []
        found = []
        for path in self.folder.iterdir():
            if path.suffix == SUFFIX and path.stem.isdigit():
                found.append((int(path.stem), path))
        return sorted(found)

    def files(self) -> list[Path]:
        """The batches waiting for delivery, oldest first."""
        return [path for _, path in self._numbered()]

    def __len__(self) -> int:
        return len(self._numbered())

    def put(self, events: list[WatchEvent]) -> Path:
        """Write one batch durably and return its file."""
        self.folder.mkdir(parents=True, exist_ok=True)
        draft = self.folder / f".{uuid.uuid4().hex}.tmp"
        try:
            with draft.open("w", encoding="utf-8") as fh:
                fh.write(dumps(events))
                fh.flush()
                os.fsync(fh.fileno())
            numbered = self._numbered()
            number = numbered[-1][0] + 1 if numbered else 1
            while True:
                target = self.folder / f"{number:05d}{SUFFIX}"
                try:
                    # link() refuses to replace an existing file, unlike rename().
                    os.link(draft, target)
                except FileExistsError:
                    number += 1
                    continue
                break
            self._sync_folder()
            return target
        finally:
            draft.unlink(missing_ok=True)

    def read(self, path: Path) -> list[WatchEvent]:
        return loads(path.read_text(encoding="utf-8"))

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._sync_folder()

    def reject(self, path: Path) -> Path:
        """Set a batch aside so it is no longer delivered."""
        target = path.with_name(path.name + REJECTED_SUFFIX)
        path.replace(target)
        return target

    def rejected(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob(f"*{SUFFIX}{REJECTED_SUFFIX}"))

    @contextlib.contextmanager
    def delivering(self) -> Iterator[bool]:
        """Hold the delivery lock; yields False when another process holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _sync_folder(self) -> None:
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
