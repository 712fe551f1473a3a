"""Scheduled backups (`[backup] schedule_hours`) and their retention (`keep`).

The reaper of every job consumer asks `start_if_due` each round. The one consumer
whose conditional update of the `backup` row (a `SiteAlert`, as for the admins'
alerts) finds the last run a period old claims the period and runs the backup in
the background on its own loop, so the reaper's other duties are not held up and a
cluster makes one backup a period, not one per consumer. A failure is logged and
published as `admin.backup_failed`; the next period tries again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from clipsync import events
from clipsync.backup.manifest import MANIFEST, MEDIA_DIR, Manifest, blob_name
from clipsync.backup.snapshot import PREFIX, Outcome, Sources, complete_backups, create_backup
from clipsync.backup.targets import Target, open_target
from clipsync.services import site_alerts
from clipsync.settings import Settings

log = logging.getLogger(__name__)
CLAIM = "backup"
DEFAULT_FOLDER = "backups"
# The scheduled backup running in this process, if any.
_running: asyncio.Task[Any] | None = None


async def claim(every: timedelta, now: datetime | None = None) -> bool:
    """True for the one caller that may start the backup of this period."""
    return await site_alerts.claim(CLAIM, now, every=every)


def target_of(settings: Settings, s3_fallback: Any = None) -> Target:
    return open_target(settings.backup.target or DEFAULT_FOLDER, settings, s3_fallback)


async def start_if_due(ctx: Any) -> bool:
    """Start the scheduled backup when one is due and this process claims it."""
    global _running
    settings: Settings = ctx.settings
    hours = settings.backup.schedule_hours
    if hours <= 0 or (_running is not None and not _running.done()):
        return False
    if not await claim(timedelta(hours=hours)):
        return False
    _running = asyncio.create_task(run_scheduled(ctx))
    return True


async def run_scheduled(ctx: Any) -> Outcome | None:
    settings: Settings = ctx.settings
    try:
        plugins = ctx.plugins
        target = target_of(settings, plugins.plugin_config("storage_s3"))
        analytics = ctx.backends.analytics
        sources = Sources(
            settings,
            ctx.backends.storage,
            analytics_db=analytics_path(analytics),
            analytics_backend=getattr(analytics, "name", "?"),
            plugin_configs=dict(getattr(plugins, "configs", {})),
        )
        outcome = await create_backup(
            sources,
            target,
            media=settings.backup.media,
            include_secrets=settings.backup.include_secrets,
        )
        deleted = await prune(target, settings.backup.keep)
        log.info(
            "scheduled backup %s done (%d media objects copied); %d old backup(s) deleted",
            outcome.name,
            outcome.copied,
            deleted,
        )
        return outcome
    except Exception as exc:
        detail = f"The scheduled backup failed: {getattr(exc, 'message', None) or exc}"
        log.exception("scheduled backup failed")
        try:
            await events.publish("admin.backup_failed", detail=detail)
        except Exception:
            log.warning("could not tell the admins that the backup failed", exc_info=True)
        return None


def analytics_path(analytics: Any) -> Any:
    """The SQLite analytics database file, or None for another analytics backend."""
    return getattr(analytics, "path", None) if getattr(analytics, "name", "") == "sqlite" else None


async def prune(target: Target, keep: int) -> int:
    """Keep the newest `keep` complete backups; delete the rest and media none uses.

    Folders without a manifest older than the newest complete backup were cut
    short and are deleted too. Returns how many backups were deleted.
    """
    complete = await complete_backups(target)
    if not complete:
        return 0
    kept = complete[-keep:]
    every = [name for name in await target.folders() if name.startswith(PREFIX)]
    doomed = [name for name in every if name not in kept and name < kept[-1]]
    for name in doomed:
        await target.delete(await target.list(f"{name}/"))
    used: set[str] = set()
    for name in kept:
        manifest = Manifest.from_json(await target.get_bytes(f"{name}/{MANIFEST}"), name)
        used.update(blob_name(item.sha256) for item in manifest.media)
    unused = [n for n in await target.list(f"{MEDIA_DIR}/") if n not in used]
    if unused:
        await target.delete(unused)
    return len(set(doomed) & set(complete))
