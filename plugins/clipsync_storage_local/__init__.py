"""Local disk storage: every object is a file under one root folder.

Keys come from `clipsync.storage.keys` and are checked again here, so no key can
name a file outside the root. Files are written to a temporary name and renamed
into place, so a reader never sees half a file and a failed upload leaves nothing.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from clipsync import hookimpl
from clipsync.backends import Availability, BackendContext
from clipsync.storage.keys import check_key

CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class StorageLocalSettings:
    # Folder that holds the media; relative paths are inside the data directory.
    root: str = "media"


def _root(context: BackendContext) -> Path:
    config: StorageLocalSettings = context.config
    root = Path(config.root).expanduser()
    return root if root.is_absolute() else context.data_dir / root


class LocalStorage:
    """The `local` storage backend."""

    name: ClassVar[str] = "local"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        # As strings, for `path()`: every media request resolves a key.
        self._root = str(self.root)
        self._inside = os.path.join(self._root, "")

    @classmethod
    def probe(cls, context: BackendContext) -> Availability:
        root = _root(context)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return Availability.no(f"cannot create {root}: {exc.strerror}")
        if not os.access(root, os.W_OK):
            return Availability.no(f"{root} is not writable by this user")
        return Availability.yes(f"files under {root}")

    @classmethod
    def create(cls, context: BackendContext) -> LocalStorage:
        return cls(_root(context))

    def path(self, key: str) -> Path:
        """The file that holds `key`."""
        # os.path rather than pathlib, which costs more: the same resolution (symlinks
        # followed, so one pointing out of the root is refused).
        path = os.path.realpath(os.path.join(self._root, check_key(key)))
        if not path.startswith(self._inside):
            raise ValueError(f"storage key escapes the storage root: {key!r}")
        return Path(path)

    def _draft(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")

    async def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        target = self.path(key)
        draft = self._draft(target)
        try:
            await asyncio.to_thread(shutil.copyfile, path, draft)
            draft.replace(target)
        finally:
            draft.unlink(missing_ok=True)

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str | None = None
    ) -> int:
        target = self.path(key)
        draft = self._draft(target)
        written = 0
        try:
            with draft.open("wb") as fh:
                async for chunk in chunks:
                    await asyncio.to_thread(fh.write, chunk)
                    written += len(chunk)
            draft.replace(target)
        finally:
            draft.unlink(missing_ok=True)
        return written

    async def adopt_file(self, key: str, path: Path) -> None:
        """Make the local file `path` the object `key`, moving it (a finished resumable upload).

        A rename when `path` is on the same file system as the root, a copy otherwise.
        """
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            await self.put_file(key, path)
            os.unlink(path)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self.path(key)
        with path.open("rb") as fh:
            fh.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                size = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
                chunk = await asyncio.to_thread(fh.read, size)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    async def size(self, key: str) -> int | None:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            return None

    async def delete_prefix(self, prefix: str) -> int:
        target = self.path(prefix)
        if target.is_file():
            target.unlink()
            return 1
        if not target.is_dir():
            return 0
        count = sum(1 for p in target.rglob("*") if p.is_file())
        await asyncio.to_thread(shutil.rmtree, target)
        return count

    @asynccontextmanager
    async def open_local(self, key: str) -> AsyncIterator[Path]:
        path = self.path(key)
        if not path.is_file():
            raise FileNotFoundError(f"nothing stored under {key!r}")
        yield path

    async def list(self, prefix: str) -> list[str]:
        target = self.path(prefix)
        if target.is_file():
            return [prefix]
        if not target.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in target.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )


@hookimpl
def settings_schema() -> type:
    return StorageLocalSettings


@hookimpl
def register_storage_backends() -> list[type]:
    return [LocalStorage]
