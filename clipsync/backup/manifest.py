"""The manifest of a backup: what it holds, and every media object with its checksum.

`manifest.json` is written last, so a backup folder without one was cut short and
is never restored from. Media objects are listed through the storage backend's
contract (`list`, `size`, `read`) and hashed as they stream by, a chunk at a time,
so a store of any size is checksummed in bounded memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clipsync.backends import StorageBackend
from clipsync.services.storage_migration import list_keys

FORMAT = 1
MANIFEST = "manifest.json"
# Files of a backup folder, besides the manifest.
SQLITE_DUMP = "database.sqlite3"
POSTGRES_DUMP = "database.pgdump"
ANALYTICS = "analytics.sqlite3"
CONFIG = "config.toml"
# The keys the server generated once (clipsync/generated_keys.py: the token key, the
# two-factor key, the unsubscribe key), copied only with --include-secrets: the
# manifest lists each as files["secret:<name>"] = "secrets/<name>".
SECRETS_DIR = "secrets"
SECRET_PREFIX = "secret:"
# Media are kept once per content, shared by every backup in the target.
MEDIA_DIR = "media"
CONCURRENCY = 4


def blob_name(sha256: str) -> str:
    """Where the content with this checksum is kept in a target."""
    return f"{MEDIA_DIR}/{sha256[:2]}/{sha256}"


@dataclass(frozen=True)
class MediaObject:
    key: str
    size: int
    sha256: str


@dataclass
class Manifest:
    version: str
    migration: str
    dialect: str
    created_at: str
    media: list[MediaObject] = field(default_factory=list)
    # Whether this backup copied the media (else it only lists them).
    media_copied: bool = False
    # Backup files besides the manifest, e.g. {"database": "database.sqlite3"}.
    files: dict[str, str] = field(default_factory=dict)
    # What is not in the backup, and why (ClickHouse analytics, unmaskable config).
    left_out: dict[str, str] = field(default_factory=dict)
    secrets_included: bool = False
    format: int = FORMAT

    @property
    def media_bytes(self) -> int:
        return sum(item.size for item in self.media)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Manifest:
        try:
            raw: dict[str, Any] = json.loads(data)
            if raw.get("format") != FORMAT:
                raise ValueError(f"format {raw.get('format')!r}, this ClipSync reads {FORMAT}")
            raw["media"] = [MediaObject(**item) for item in raw["media"]]
            return cls(**raw)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{where}: not a ClipSync backup manifest ({exc})") from None


def now_utc() -> datetime:
    return datetime.now(UTC)


# Called with (bytes done) as objects are read; a progress bar listens.
Advance = Callable[[int], None]


async def digest(storage: StorageBackend, key: str, advance: Advance | None = None) -> MediaObject:
    """The size and sha256 of `key` as the store reads it, a chunk at a time."""
    hasher = hashlib.sha256()
    size = 0
    async for chunk in storage.read(key):
        hasher.update(chunk)
        size += len(chunk)
        if advance:
            advance(len(chunk))
    return MediaObject(key, size, hasher.hexdigest())


def digest_file(path: Path) -> tuple[int, str]:
    hasher = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            hasher.update(chunk)
            size += len(chunk)
    return size, hasher.hexdigest()


async def list_media(storage: StorageBackend) -> list[tuple[str, int]]:
    """Every media object ClipSync made in `storage`, with its size, in key order."""
    return await list_keys(storage, CONCURRENCY)


async def checksum_all(
    storage: StorageBackend, listed: list[tuple[str, int]], advance: Advance | None = None
) -> list[MediaObject]:
    """Hash every listed object (a few at once); objects deleted meanwhile are dropped."""
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(key: str) -> MediaObject | None:
        async with limit:
            if await storage.size(key) is None:
                return None
            return await digest(storage, key, advance)

    found = await asyncio.gather(*(one(key) for key, _ in listed))
    return sorted((item for item in found if item is not None), key=lambda m: m.key)
