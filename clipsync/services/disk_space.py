"""Disk space as a managed resource: room is checked before bytes are accepted.

ClipSync writes to the data directory's disk (the SQLite database, the queue, staged
resumable uploads, transcoding scratch space, the analytics spool) and, with local
storage, to the media folder's. `[disk] reserve_mb` of each is kept free, so the
database can always write: a resumable upload (`Upload-Length`), a form upload
(`Content-Length`) or a transcode (its estimated output) that would eat into the
reserve is refused up front with 507 and the numbers, rather than filling the disk
half-way and leaving sign-in and everything else failing with it.

Bytes already promised count as used: an unfinished resumable upload will still
write what it has not sent yet, so a new upload is only accepted when there is room
for both. A write that fails anyway (another program filled the disk) is reported
as "the disk is full": `is_disk_full()` recognises it, the error handler answers
507, and a transcode fails with that reason (`disk_full_as_media_error`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from clipsync.backends import MultipartStorage, StorageBackend
from clipsync.errors import InsufficientStorage, causes
from clipsync.media.errors import MediaError
from clipsync.media.ladder import MAXRATE_FACTOR
from clipsync.models import ResumableUpload, Video
from clipsync.settings import Settings
from clipsync.sizes import format_size

MiB = 1024 * 1024
# HLS output beyond the bitrates: fMP4 headers, playlists, VBR above the average.
OUTPUT_OVERHEAD = 1.15
# Poster, seek-preview sprite, thumbnails.vtt, init segments.
OUTPUT_EXTRAS = 8 * MiB
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# Errors that say "the disk is full" without an errno: SQLite's SQLITE_FULL, and
# PostgreSQL's SQLSTATE 53100 (asyncpg's DiskFullError, matched by name so the
# core does not import a driver).
SQLITE_FULL = "database or disk is full"
DISK_FULL_TYPES = frozenset({"asyncpg.exceptions.DiskFullError"})
DISK_FULL_REASON = "the disk is full"
# Less free than this after a failed transcode: the disk being full is why it failed.
NEARLY_FULL = 1 * MiB


@runtime_checkable
class LocalFiles(Protocol):
    """Storage that keeps its objects as files under a local folder (`local`)."""

    root: Path


class DiskFull(MediaError):
    """A transcode has no room on disk: not enough before it starts, or none left."""

    code = "disk_full"


@dataclass(frozen=True)
class Room:
    """The free space of the file system that holds `folder`."""

    folder: Path
    # Which file system (`st_dev`): two folders on one disk share their room.
    device: int
    # Bytes this process may still write (what `df` calls available).
    free: int
    total: int


def room(folder: Path) -> Room:
    """The room on `folder`'s file system (its nearest existing parent's, until it exists)."""
    path = folder
    while not path.exists() and path != path.parent:
        path = path.parent
    stats = os.statvfs(path)
    return Room(
        folder=folder,
        device=os.stat(path).st_dev,
        free=stats.f_bavail * stats.f_frsize,
        total=stats.f_blocks * stats.f_frsize,
    )


def reserve(settings: Settings) -> int:
    """Bytes kept free on every disk ClipSync writes to (`[disk] reserve_mb`)."""
    return settings.disk.reserve_mb * MiB


def watched_folders(settings: Settings, storage: StorageBackend) -> dict[str, Path]:
    """The folders ClipSync writes to, by what a person calls them."""
    folders = {"the data directory": settings.data_dir}
    if isinstance(storage, LocalFiles):
        folders["the media folder"] = Path(storage.root)
    return folders


def ensure_room(settings: Settings, needed: int, folders: Iterable[Path], what: str) -> None:
    """Raise `InsufficientStorage` (507) unless `needed` more bytes leave the reserve free.

    Each file system holding one of `folders` must have the room (one that holds
    several of them, once): a file moved within one disk is renamed, but one copied
    to another disk needs room on both.
    """
    kept = reserve(settings)
    seen: set[int] = set()
    for folder in folders:
        here = room(folder)
        if here.device in seen:
            continue
        seen.add(here.device)
        if here.free - needed < kept:
            raise InsufficientStorage(
                f"Not enough storage for {what}: it needs {format_size(needed)}, the "
                f"server has {format_size(here.free)} free and keeps "
                f"{format_size(kept)} of it in reserve. Try again once room has been "
                "made, or tell the site's administrator.",
                details={"needed": needed, "free": here.free, "reserve": kept},
            )


async def promised_bytes(storage: StorageBackend) -> int:
    """Bytes that unfinished resumable uploads will still write to the staging folder.

    With multipart storage (S3) at most one part per upload waits on disk.
    """
    part_size = storage.part_size if isinstance(storage, MultipartStorage) else None
    now = datetime.now(UTC)
    total = 0
    for length, offset in await ResumableUpload.filter(expires_at__gt=now).values_list(
        "length", "offset"
    ):
        left = max(0, int(length) - int(offset))
        total += min(left, part_size) if part_size else left
    return total


async def ensure_room_for_upload(
    settings: Settings, storage: StorageBackend, size: int, staging: Path | None = None
) -> None:
    """Refuse (507) an upload of `size` bytes that would leave less than the reserve free.

    The bytes land in `staging` (a resumable upload's folder) when given, and in
    the media folder with local storage; a form upload to an object store passes
    through memory only. The data directory always needs its reserve.
    """
    folders = list(watched_folders(settings, storage).values())
    if staging is not None:
        folders.append(staging)
    lands_here = staging is not None or isinstance(storage, LocalFiles)
    promised = await promised_bytes(storage)
    what = f"an upload of {format_size(size)}"
    if promised:
        what += f" (besides the {format_size(promised)} that unfinished uploads will still send)"
    ensure_room(settings, (size if lands_here else 0) + promised, folders, what)


def transcode_estimate(settings: Settings, video: Video) -> int:
    """About how many bytes transcoding `video` writes: every rendition, audio, extras.

    An upper bound from the ladder: the renditions its size gets (all of them when
    its size is unknown) at their peak rate, for its whole duration.
    """
    ladder = sorted(settings.transcoder.ladder, key=lambda rung: rung.height)
    if video.width and video.height:
        short_side = min(video.width, video.height)
        rungs = [rung for rung in ladder if rung.height <= short_side] or ladder[:1]
    else:
        rungs = ladder
    kbits = sum(rung.bitrate for rung in rungs) * MAXRATE_FACTOR
    kbits += settings.transcoder.audio_bitrate
    duration = float(video.duration or 0.0)
    return int(duration * kbits * 1000 / 8 * OUTPUT_OVERHEAD) + OUTPUT_EXTRAS


async def ensure_room_to_transcode(
    settings: Settings, storage: StorageBackend, video: Video
) -> None:
    """Raise `DiskFull` when the transcode's estimated output would eat into the reserve.

    The output is written to scratch space in the data directory, then renamed into
    the media folder (local storage on the same disk) or sent to the store; an
    object store's source is downloaded to scratch space first.
    """
    needed = transcode_estimate(settings, video)
    if not isinstance(storage, LocalFiles):
        needed += int(video.size or 0)
    needed += await promised_bytes(storage)
    scratch = settings.data_dir / "scratch"
    try:
        ensure_room(
            settings,
            needed,
            [scratch, *watched_folders(settings, storage).values()],
            "this video's renditions",
        )
    except InsufficientStorage as exc:
        raise DiskFull(
            f"The video could not be converted: {DISK_FULL_REASON} (it needs about "
            f"{format_size(exc.details['needed'])}, {format_size(exc.details['free'])} "
            f"are free and {format_size(exc.details['reserve'])} are kept in reserve).",
            detail=exc.message,
        ) from None


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) says a disk or a quota is full."""
    for error in causes(exc):
        if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
            return True
        if isinstance(error, sqlite3.OperationalError) and SQLITE_FULL in str(error):
            return True
        names = {f"{cls.__module__}.{cls.__qualname__}" for cls in type(error).__mro__}
        if names & DISK_FULL_TYPES:
            return True
        # Tortoise re-raises SQLite's error as its own, with the same words.
        if type(error).__module__.startswith("tortoise") and SQLITE_FULL in str(error):
            return True
    return False


@contextlib.contextmanager
def disk_full_as_media_error(scratch: Path) -> Iterator[None]:
    """Around a transcode: a failure on a full disk fails with "the disk is full".

    Not only an ENOSPC error: ffmpeg can exit as if all went well after writing an
    empty playlist, and what breaks next only says the file is wrong. So a failure
    that leaves the scratch disk (nearly) full is put down to it. On any failure
    `scratch` is emptied at once, before the failure is recorded: the database may
    need that room to write it.
    """
    try:
        yield
    except Exception as exc:
        out_of_room = _nearly_full(scratch)
        shutil.rmtree(scratch, ignore_errors=True)
        if isinstance(exc, DiskFull) or not (out_of_room or is_disk_full(exc)):
            raise
        raise DiskFull(
            f"The video could not be converted: {DISK_FULL_REASON}.", detail=repr(exc)
        ) from exc


def _nearly_full(folder: Path) -> bool:
    try:
        return room(folder).free < NEARLY_FULL
    except OSError:
        return False


def report(settings: Settings, storage: StorageBackend) -> dict[str, Any]:
    """The disk check of `/healthz/ready`: the fullest watched disk against the reserve."""
    kept = reserve(settings)
    rooms: dict[int, tuple[str, Room]] = {}
    for label, folder in watched_folders(settings, storage).items():
        here = room(folder)
        rooms.setdefault(here.device, (label, here))
    label, worst = min(rooms.values(), key=lambda item: item[1].free)
    check: dict[str, Any] = {"ok": worst.free >= kept, "free": worst.free, "reserve": kept}
    if not check["ok"]:
        check["error"] = (
            f"only {format_size(worst.free)} free on the disk of {label}, which must keep "
            f"{format_size(kept)} free: uploads and transcodes are refused"
        )
    return check
