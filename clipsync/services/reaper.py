"""Housekeeping the job consumer runs every minute.

- A video left in PROCESSING whose job stopped reporting (its worker died, or the
  queue lost the message) is queued again, unless a job for it is already waiting
  in the queue; the lease on the row keeps a job that is still running from being
  doubled.
- An upload that was never registered is deleted after `[uploads] abandoned_after_hours`
  (or once the direct-upload URL handed out for it has expired, when that is later).
- Folders a killed process left behind are deleted: a job's scratch folder whose video
  is no longer being transcoded, and resumable-upload staging with no upload row.
- A resumable (tus) upload that expired (`[uploads] resumable_expiry_hours` without a
  byte) is deleted: its staged bytes, the parts it stored, its row.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tortoise.expressions import Q

from clipsync.models import ResumableUpload, Video, VideoStatus
from clipsync.services.resumable import ResumableService
from clipsync.services.transcoding import JobContext, stale_before
from clipsync.settings import Settings
from clipsync.storage import keys

log = logging.getLogger(__name__)


async def requeue_stalled(
    ctx: JobContext,
    enqueue: Callable[[uuid.UUID], Any],
    queued: Callable[[], set[str]],
) -> list[uuid.UUID]:
    """Queue again every PROCESSING video that no job is working on or waiting for."""
    silent = await Video.filter(
        Q(heartbeat_at__lt=stale_before(ctx.settings))
        | Q(heartbeat_at__isnull=True, updated_at__lt=stale_before(ctx.settings)),
        status=VideoStatus.PROCESSING,
    ).values_list("id", flat=True)
    waiting = queued() if silent else set()
    requeued = [video_id for video_id in silent if str(video_id) not in waiting]
    for video_id in requeued:
        log.warning("video %s was left in PROCESSING by a job that stopped: queued again", video_id)
        enqueue(video_id)
    return requeued


def abandoned_before(settings: Settings) -> datetime:
    """Unregistered uploads made before this are abandoned.

    Never while a presigned PUT URL handed out for one may still be used
    (`[storage] upload_url_seconds`): deleting its row then would leave whatever
    is PUT afterwards in the store with nothing pointing at it.
    """
    wait = max(
        timedelta(hours=settings.uploads.abandoned_after_hours),
        timedelta(seconds=settings.storage.upload_url_seconds, minutes=5),
    )
    return datetime.now(UTC) - wait


async def delete_abandoned_uploads(ctx: JobContext) -> int:
    cutoff = abandoned_before(ctx.settings)
    abandoned = await Video.filter(status=VideoStatus.UPLOADED, created_at__lt=cutoff)
    for video in abandoned:
        await ctx.backends.storage.delete_prefix(keys.video_prefix(video.id))
        await video.delete()
        log.info("deleted upload %s: never registered", video.id)
    return len(abandoned)


# Leftover folders are deleted only once nothing has touched them for this long, so a
# folder being set up right now (its row not yet written) is never taken.
LEFTOVER_AGE = timedelta(hours=1)


def _old_folders(root: Path) -> dict[uuid.UUID, Path]:
    """Folders directly under `root` named by a UUID and untouched for LEFTOVER_AGE."""
    found: dict[uuid.UUID, Path] = {}
    if not root.is_dir():
        return found
    cutoff = (datetime.now(UTC) - LEFTOVER_AGE).timestamp()
    for path in root.iterdir():
        try:
            key = uuid.UUID(path.name)
        except ValueError:
            continue
        if path.is_dir() and path.stat().st_mtime < cutoff:
            found[key] = path
    return found


async def delete_leftovers(ctx: JobContext) -> int:
    """Delete the folders that killed processes left and nothing uses; return how many."""
    settings = ctx.settings
    scratch = await asyncio.to_thread(_old_folders, settings.data_dir / "scratch")
    staging = await asyncio.to_thread(
        _old_folders, settings.data_dir / settings.uploads.resumable_dir
    )
    working = set(
        await Video.filter(id__in=list(scratch), status=VideoStatus.PROCESSING).values_list(
            "id", flat=True
        )
    )
    pending = set(await ResumableUpload.filter(id__in=list(staging)).values_list("id", flat=True))
    unused = [p for k, p in scratch.items() if k not in working]
    unused += [p for k, p in staging.items() if k not in pending]
    for path in unused:
        await asyncio.to_thread(shutil.rmtree, path, True)
        log.info("deleted %s: left behind by a stopped process", path)
    return len(unused)


async def delete_expired_resumable_uploads(ctx: JobContext) -> int:
    return await ResumableService(ctx.settings, ctx.backends.storage).delete_expired()


async def reap(
    ctx: JobContext, enqueue: Callable[[uuid.UUID], Any], queued: Callable[[], set[str]]
) -> None:
    await requeue_stalled(ctx, enqueue, queued)
    await delete_abandoned_uploads(ctx)
    await delete_expired_resumable_uploads(ctx)
    await delete_leftovers(ctx)
