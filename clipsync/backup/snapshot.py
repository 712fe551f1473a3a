"""Making one backup (`clipsync backup`, and the scheduled one).

A backup is a folder `clipsync-<UTC time>` in the target holding the database
(a SQLite copy or a pg_dump), the SQLite analytics database when that backend is
used, config.toml (secrets masked unless asked), the token signing key (only with
secrets) and `manifest.json`, written last. Media objects, copied with `media`,
live beside the backups in `media/`, one file per content named by its sha256: an
object whose content is already there is not copied again, so every backup after
the first copies only what changed, and backups share what they have in common.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clipsync import __version__
from clipsync.backends import StorageBackend
from clipsync.backup import config as config_file
from clipsync.backup import database
from clipsync.backup.manifest import (
    ANALYTICS,
    CONFIG,
    MANIFEST,
    POSTGRES_DUMP,
    SECRET_PREFIX,
    SECRETS_DIR,
    SQLITE_DUMP,
    Manifest,
    blob_name,
    checksum_all,
    digest_file,
    list_media,
    now_utc,
)
from clipsync.backup.progress import Progress, Quiet
from clipsync.backup.targets import S3Target, Target
from clipsync.db import dialect
from clipsync.settings import Settings
from clipsync.sizes import format_size

log = logging.getLogger(__name__)
PREFIX = "clipsync-"


@dataclass(frozen=True)
class Sources:
    """What a backup reads from this install."""

    settings: Settings
    storage: StorageBackend
    # The SQLite analytics database, when that backend is in use.
    analytics_db: Path | None = None
    # The analytics backend's name, to say why its data is left out.
    analytics_backend: str = "sqlite"
    # Validated `[plugins.<name>]` settings, to know which settings are secrets.
    plugin_configs: dict[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    name: str
    where: str
    manifest: Manifest
    copied: int = 0
    copied_bytes: int = 0

    def summary(self) -> str:
        m = self.manifest
        media = (
            f"{len(m.media)} media objects ({format_size(m.media_bytes)}): "
            f"{self.copied} copied ({format_size(self.copied_bytes)}), "
            f"{len(m.media) - self.copied} already in the target"
            if m.media_copied
            else f"{len(m.media)} media objects ({format_size(m.media_bytes)}) listed, "
            "not copied (pass --media to copy them)"
        )
        lines = [f"Backup {self.name} in {self.where}", f"  database: {m.dialect}, {m.migration}"]
        lines += [f"  {media}"]
        lines += [f"  left out: {what}: {why}" for what, why in m.left_out.items()]
        return "\n".join(lines)


def backup_name() -> str:
    return PREFIX + now_utc().strftime("%Y%m%dT%H%M%S-%fZ")


async def complete_backups(target: Target) -> list[str]:
    """The backups in `target` that have their manifest, oldest first."""
    return [
        name
        for name in await target.folders()
        if name.startswith(PREFIX) and await target.size(f"{name}/{MANIFEST}") is not None
    ]


async def prepare(target: Target) -> None:
    """Create the S3 bucket when it is missing (a folder is made as files are written)."""
    if isinstance(target, S3Target):
        client, bucket = target.client, target.bucket
        if not await asyncio.to_thread(client.bucket_exists, bucket):
            await asyncio.to_thread(client.make_bucket, bucket)


async def create_backup(
    sources: Sources,
    target: Target,
    *,
    media: bool = False,
    include_secrets: bool = False,
    progress: Progress | None = None,
) -> Outcome:
    """Write one complete backup to `target`; the manifest last."""
    progress = progress or Quiet()
    settings = sources.settings
    url = settings.database_url
    name = backup_name()
    await prepare(target)
    manifest = Manifest(
        version=__version__,
        migration=await database.migration_level(url),
        dialect=dialect(url),
        created_at=now_utc().isoformat(),
        secrets_included=include_secrets,
    )
    with tempfile.TemporaryDirectory(prefix="clipsync-backup-") as scratch:
        folder = Path(scratch)
        # The database first: the media listed afterwards cover every row it holds.
        if manifest.dialect == "sqlite":
            copy = folder / SQLITE_DUMP
            await asyncio.to_thread(database.copy_sqlite, database.sqlite_path(url), copy)
        elif manifest.dialect == "postgres":
            copy = folder / POSTGRES_DUMP
            await database.dump_postgres(url, copy)
        else:
            raise database.BackupError(f"cannot back up a {manifest.dialect} database")
        await target.put_file(f"{name}/{copy.name}", copy)
        manifest.files["database"] = copy.name

        if sources.analytics_db is not None and sources.analytics_db.exists():
            analytics = folder / ANALYTICS
            await asyncio.to_thread(database.copy_sqlite, sources.analytics_db, analytics)
            await target.put_file(f"{name}/{ANALYTICS}", analytics)
            manifest.files["analytics"] = ANALYTICS
        elif sources.analytics_db is None:
            manifest.left_out["analytics"] = (
                f"the {sources.analytics_backend} analytics backend keeps its own data: "
                "back it up with that database's tools"
            )

        await _config(sources, target, name, include_secrets, manifest)

        listed = await list_media(sources.storage)
        with progress.task("checksums", sum(size for _, size in listed)) as advance:
            manifest.media = await checksum_all(sources.storage, listed, advance)
        copied = copied_bytes = 0
        if media:
            copied, copied_bytes = await copy_media(sources.storage, target, manifest, progress)
            manifest.media_copied = True
    await target.put_bytes(f"{name}/{MANIFEST}", manifest.to_json())
    log.info("backup %s written to %s", name, target.where)
    return Outcome(name, target.where, manifest, copied, copied_bytes)


async def _config(
    sources: Sources, target: Target, name: str, include_secrets: bool, manifest: Manifest
) -> None:
    settings = sources.settings
    if settings.source is None or not settings.source.is_file():
        manifest.left_out["config"] = "ClipSync runs on built-in defaults: no config file"
        return
    text = settings.source.read_text()
    if not include_secrets:
        secrets = config_file.secret_settings(settings, sources.plugin_configs or {})
        try:
            text = config_file.masked(text, secrets)
        except config_file.CannotMask as exc:
            manifest.left_out["config"] = (
                f"{exc} is written in a form that cannot be masked line by line; "
                'write it on one line, use { "$env" = "NAME" }, or pass --include-secrets'
            )
            return
    await target.put_bytes(f"{name}/{CONFIG}", text.encode())
    manifest.files["config"] = CONFIG
    keys = sorted(
        path
        for path in (settings.data_dir / SECRETS_DIR).glob("*")
        if path.is_file() and not path.name.startswith(".")
    )
    if not include_secrets:
        if keys:
            manifest.left_out["secrets"] = (
                "the keys the server generated (" + ", ".join(p.name for p in keys) + ") "
                "were left out (--include-secrets takes them): after a restore, people with "
                "two-factor sign in with a recovery code or an admin resets it, and signed "
                "unsubscribe links already mailed stop working"
            )
        return
    for path in keys:
        await target.put_file(f"{name}/{SECRETS_DIR}/{path.name}", path)
        manifest.files[f"{SECRET_PREFIX}{path.name}"] = f"{SECRETS_DIR}/{path.name}"


async def copy_media(
    storage: StorageBackend, target: Target, manifest: Manifest, progress: Progress
) -> tuple[int, int]:
    """Copy every listed object whose content the target lacks.

    Returns how many objects needed a copy (objects with the same content share
    one) and how many bytes were sent.

    A content already in the target with the same size is not copied again. A copy
    is hashed on the local side before it is sent: an object that changed since it
    was listed fails the backup rather than being kept under the wrong checksum.
    """
    wanted: dict[str, int] = {}
    for item in manifest.media:
        wanted.setdefault(item.sha256, item.size)
    keys = {item.sha256: item.key for item in manifest.media}
    missing = [sha for sha, size in wanted.items() if await target.size(blob_name(sha)) != size]
    limit = asyncio.Semaphore(4)
    with progress.task("media", sum(wanted[sha] for sha in missing)) as advance:

        async def one(sha: str) -> None:
            async with limit, storage.open_local(keys[sha]) as path:
                size, found = await asyncio.to_thread(digest_file, path)
                if found != sha:
                    raise database.BackupError(
                        f"{keys[sha]} changed while the backup ran: run the backup again"
                    )
                await target.put_file(blob_name(sha), path)
                advance(size)

        await asyncio.gather(*(one(sha) for sha in missing))
    sent = set(missing)
    return sum(item.sha256 in sent for item in manifest.media), sum(wanted[sha] for sha in sent)
