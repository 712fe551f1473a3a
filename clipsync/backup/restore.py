"""Putting a backup back on an empty install (`clipsync restore`).

Only onto an install whose database holds no users and no videos: restoring over
a site in use would throw its data away, so that is refused. With `media`, every
media object goes into the configured store first, each checked against the
manifest on the way; then every object the manifest lists is read back from the
store and its size and sha256 compared (a mismatch is an error that names the
object). Only then does the database go back (the SQLite file, or pg_restore into
the configured database), with the SQLite analytics: a restore that fails on the
media leaves the install empty, so it can simply be run again.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

from clipsync.backends import StorageBackend
from clipsync.backup import database
from clipsync.backup.manifest import (
    ANALYTICS,
    MANIFEST,
    SECRET_PREFIX,
    SECRETS_DIR,
    Manifest,
    MediaObject,
    blob_name,
    digest,
    digest_file,
)
from clipsync.backup.progress import Progress, Quiet
from clipsync.backup.snapshot import complete_backups
from clipsync.backup.targets import LocalTarget, S3Target, Target
from clipsync.db import dialect
from clipsync.errors import ClipSyncError
from clipsync.services.transcoding import content_type
from clipsync.settings import Settings
from clipsync.sizes import format_size


class RestoreRefused(ClipSyncError):
    status = 409
    code = "restore_refused"


class VerificationFailed(ClipSyncError):
    status = 500
    code = "restore_verification_failed"


@dataclass
class Restored:
    name: str
    manifest: Manifest
    restored_media: int = 0
    verified: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        m = self.manifest
        lines = [
            f"Restored {self.name} (ClipSync {m.version}, made {m.created_at})",
            f"  database: {m.dialect}, {m.migration}",
        ]
        if "analytics" in m.files:
            lines.append("  analytics: restored")
        lines.append(
            f"  media: {self.restored_media} objects restored, {self.verified} of "
            f"{len(m.media)} verified ({format_size(m.media_bytes)})"
        )
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


async def locate(target: Target) -> tuple[Target, str]:
    """The backups' root and the backup to restore: the one named, or the newest."""
    if await target.size(MANIFEST) is not None:
        # `--from` named one backup folder: its parent holds the shared media.
        if isinstance(target, LocalTarget):
            return LocalTarget(target.root.parent), target.root.name
        if isinstance(target, S3Target):
            parent, _, name = target.prefix.rstrip("/").rpartition("/")
            return S3Target(target.client, target.bucket, f"{parent}/" if parent else ""), name
    names = await complete_backups(target)
    if not names:
        raise RestoreRefused(f"{target.where}: no complete ClipSync backup there")
    return target, names[-1]


async def refuse_unless_empty(settings: Settings) -> None:
    users, videos = await database.people_and_videos(settings.database_url)
    if users or videos:
        raise RestoreRefused(
            f"this install is not empty: its database holds {users} user(s) and {videos} "
            f"video(s). Restore only into a new install (an empty data folder or database), "
            "so that nothing in use is overwritten."
        )


async def restore_backup(
    settings: Settings,
    storage: StorageBackend,
    source: Target,
    *,
    media: bool = False,
    analytics_db: Path | None = None,
    progress: Progress | None = None,
) -> Restored:
    """Restore the backup `source` names into this (empty) install and verify it."""
    progress = progress or Quiet()
    root, name = await locate(source)
    try:
        manifest = Manifest.from_json(
            await root.get_bytes(f"{name}/{MANIFEST}"), f"{root.where.rstrip('/')}/{name}"
        )
    except ValueError as exc:
        raise RestoreRefused(str(exc)) from None
    url = settings.database_url
    if dialect(url) != manifest.dialect:
        raise RestoreRefused(
            f"the backup holds a {manifest.dialect} database and this install uses "
            f"{dialect(url)}: configure [database] url like the backed-up install"
        )
    if media and not manifest.media_copied:
        raise RestoreRefused(
            f"{name} lists the media but does not hold them (made without --media): "
            "restore without --media when the store still has them"
        )
    await refuse_unless_empty(settings)
    result = Restored(name, manifest)

    # The media first, verified: a restore that fails there has not touched the
    # database yet, so the install is still empty and the restore can run again.
    if media:
        result.restored_media = await put_media(root, storage, manifest.media, progress)
    result.problems = await verify(storage, manifest.media, progress)
    result.verified = len(manifest.media) - len(result.problems)
    if result.problems:
        raise VerificationFailed(
            f"{len(result.problems)} media object(s) differ from the backup's manifest: "
            + "; ".join(result.problems[:20])
            + ". The database was not restored."
        )
    async with root.get_file(f"{name}/{manifest.files['database']}") as copy:
        if manifest.dialect == "sqlite":
            await asyncio.to_thread(database.put_sqlite, copy, database.sqlite_path(url))
        else:
            await database.restore_postgres(url, copy)
    if "analytics" in manifest.files:
        if analytics_db is None:
            result.notes.append(
                "the backup holds SQLite analytics but this install uses another "
                "analytics backend: they were not restored"
            )
        else:
            async with root.get_file(f"{name}/{ANALYTICS}") as copy:
                await asyncio.to_thread(database.put_sqlite, copy, analytics_db)
    for entry, stored in manifest.files.items():
        if not entry.startswith(SECRET_PREFIX):
            continue
        key = settings.data_dir / SECRETS_DIR / Path(stored).name
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = await root.get_bytes(f"{name}/{stored}")
        # Readable by ClipSync's user only, from the moment it exists.
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    if "config" in manifest.files:
        where = f"{root.where.rstrip('/')}/{name}/config.toml"
        result.notes.append(
            f"the configuration of the backed-up install is {where}"
            f"{'' if manifest.secrets_included else ' (secrets masked)'}; this install's "
            "own config file was left as it is"
        )
    return result


async def put_media(
    root: Target, storage: StorageBackend, objects: list[MediaObject], progress: Progress
) -> int:
    """Copy each object from the backup into the store, refusing a corrupted copy."""
    limit = asyncio.Semaphore(4)
    with progress.task("restoring media", sum(o.size for o in objects)) as advance:

        async def one(item: MediaObject) -> None:
            async with limit, root.get_file(blob_name(item.sha256)) as path:
                size, sha = await asyncio.to_thread(digest_file, path)
                if (size, sha) != (item.size, item.sha256):
                    raise VerificationFailed(
                        f"{item.key}: the backup's copy is corrupted ({size} bytes, sha256 "
                        f"{sha[:12]}…; the manifest says {item.size} bytes, "
                        f"{item.sha256[:12]}…)"
                    )
                await storage.put_file(item.key, path, content_type(item.key))
                advance(size)

        try:
            await asyncio.gather(*(one(item) for item in objects))
        except FileNotFoundError as exc:
            raise VerificationFailed(f"a media object is missing from the backup: {exc}") from None
    return len(objects)


async def verify(
    storage: StorageBackend, objects: list[MediaObject], progress: Progress
) -> list[str]:
    """Read every object back from the store; one line per object that differs."""
    limit = asyncio.Semaphore(4)
    problems: list[str] = []
    with progress.task("verifying", sum(o.size for o in objects)) as advance:

        async def one(item: MediaObject) -> None:
            async with limit:
                if await storage.size(item.key) is None:
                    problems.append(f"{item.key}: missing from the store")
                    return
                found = await digest(storage, item.key, advance)
                if (found.size, found.sha256) != (item.size, item.sha256):
                    problems.append(f"{item.key}: checksum mismatch")

        await asyncio.gather(*(one(item) for item in objects))
    return sorted(problems)
