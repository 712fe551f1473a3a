"""Housekeeping each job consumer runs when it starts and every
`[queue] reaper_interval_seconds`: what concerns its own host every time, what
concerns the whole install when it is this consumer's turn (`cluster_turn`, once per
interval for all hosts together; see `reap`).

- A video left in PROCESSING that no job works on is queued again, unless a job for
  it is already waiting in the queue: its lease was not renewed for
  `[queue] lease_expiry_seconds`, or the consumer holding it is seen dead on this host
  (at once), or it has no lease and no queued job (the queue lost the message, or
  the process that queued it died first). Each requeue first releases the row's lease
  in one conditional update, so two reapers never queue the same video twice; the
  lease keeps a job that is still running from being doubled.
- An upload that was never registered is deleted after `[uploads] abandoned_after_hours`
  (or once the direct-upload URL handed out for it has expired, when that is later).
- Folders a killed process left behind are deleted: a job's scratch folder whose video
  is no longer being transcoded, resumable-upload staging with no upload row, and, on
  local storage, media folders with no video row (a killed upload's `.part` file, a
  stored source whose row was never written, an empty folder).
- A resumable (tus) upload that expired (`[uploads] resumable_expiry_hours` without a
  byte) is deleted: its staged bytes, the parts it stored, its row.
- Read notifications older than `[notifications] keep_read_days` are deleted.
- Every `[backup] schedule_hours`, one consumer starts the scheduled backup
  (`clipsync.backup.schedule`), which runs in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tortoise.expressions import Q

from clipsync.backup import schedule as backups
from clipsync.jobs.liveness import lease_holder
from clipsync.models import ResumableUpload, Video, VideoStatus
from clipsync.services import chunk_jobs, site_alerts
from clipsync.services.notifications import prune_read, queue_lost_deliveries
from clipsync.services.resumable import ResumableService
from clipsync.services.transcoding import CHUNKS_LEASE, JobContext, stale_before
from clipsync.settings import Settings
from clipsync.storage import keys

log = logging.getLogger(__name__)


def _holder_gone(ctx: JobContext, lease: str) -> bool:
    """Whether the consumer that took `lease` is seen dead, or is this one with no job on it."""
    holder = lease_holder(lease)
    if holder and holder == ctx.consumer_id:
        return not any(job.lease == lease for job in ctx.running.values())
    return ctx.liveness is not None and ctx.liveness.dead_here(holder)


async def requeue_stalled(
    ctx: JobContext,
    enqueue: Callable[[uuid.UUID], Any],
    queued: Callable[[], set[str]],
) -> list[uuid.UUID]:
    """Queue again every PROCESSING video that no job is working on or waiting for."""
    stale = stale_before(ctx.settings)
    unrenewed = Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale)
    rows = await Video.filter(
        # Without a lease: queued at least `lease_expiry_seconds` ago (registered,
        # transcoded again, or released), and not picked up since.
        Q(worker_lease__isnull=True, updated_at__lt=stale) | Q(worker_lease__isnull=False),
        status=VideoStatus.PROCESSING,
    ).values("id", "worker_lease", "heartbeat_at")
    candidates = []
    for row in rows:
        lease, beat = row["worker_lease"], row["heartbeat_at"]
        if lease and lease.startswith(CHUNKS_LEASE):
            continue  # its chunks have leases of their own: `chunk_jobs.reap`
        if beat is None or beat < stale:
            candidates.append((row["id"], lease, [unrenewed]))
        elif lease and _holder_gone(ctx, lease):
            candidates.append((row["id"], lease, []))
    waiting = await asyncio.to_thread(queued) if candidates else set()
    requeued = []
    for video_id, lease, still in candidates:
        if str(video_id) in waiting:
            continue
        lease_now = {"worker_lease": lease} if lease else {"worker_lease__isnull": True}
        # Only the reaper whose update still finds the row as it was read queues it.
        taken = await Video.filter(
            *still, id=video_id, status=VideoStatus.PROCESSING, **lease_now
        ).update(worker_lease=None, heartbeat_at=datetime.now(UTC))
        if not taken:
            continue
        log.warning("video %s was left in PROCESSING by a job that stopped: queued again", video_id)
        try:
            await asyncio.to_thread(enqueue, video_id)
        except Exception as exc:
            # Left released: the next run (once the queue answers) tries again.
            log.warning("could not queue video %s again: %s", video_id, exc)
            continue
        requeued.append(video_id)
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


def _last_touched(folder: Path) -> float:
    """The newest modification time of `folder` and of everything in it."""
    newest = folder.stat().st_mtime
    for parent, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            with contextlib.suppress(OSError):
                newest = max(newest, os.stat(os.path.join(parent, name)).st_mtime)
    return newest


def _old_folders(root: Path, *, deep: bool = False) -> dict[uuid.UUID, Path]:
    """Folders directly under `root` named by a UUID and untouched for LEFTOVER_AGE.

    `deep`: by what is inside too, since writing to a file (a long upload's `.part`)
    does not touch its folder.
    """
    found: dict[uuid.UUID, Path] = {}
    if not root.is_dir():
        return found
    cutoff = (datetime.now(UTC) - LEFTOVER_AGE).timestamp()
    for path in root.iterdir():
        try:
            key = uuid.UUID(path.name)
        except ValueError:
            continue
        if not path.is_dir():
            continue
        with contextlib.suppress(OSError):  # deleted meanwhile
            if (_last_touched(path) if deep else path.stat().st_mtime) < cutoff:
                found[key] = path
    return found


def _media_folders(storage: object) -> Path | None:
    """Where a storage that keeps media on this disk keeps videos (None: an object store)."""
    root = getattr(storage, "root", None)
    if not isinstance(root, Path):
        return None
    return root / keys.video_prefix(uuid.UUID(int=0)).rpartition("/")[0]


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
    videos = _media_folders(ctx.backends.storage)
    if videos is not None:
        media = await asyncio.to_thread(_old_folders, videos, deep=True)
        known = set(await Video.filter(id__in=list(media)).values_list("id", flat=True))
        unused += [p for k, p in media.items() if k not in known]
    for path in unused:
        await asyncio.to_thread(shutil.rmtree, path, True)
        log.info("deleted %s: left behind by a stopped process", path)
    return len(unused)


async def delete_expired_resumable_uploads(ctx: JobContext) -> int:
    return await ResumableService(ctx.settings, ctx.backends.storage).delete_expired()


# The claim (`site_alerts.claim`) that gives one consumer of the install a round's
# install-wide duties.
CLUSTER_CLAIM = "reaper"


async def cluster_turn(settings: Settings, now: datetime | None = None) -> bool:
    """Whether this round's install-wide duties are this consumer's: at most one
    consumer of the whole install takes them per `[queue] reaper_interval_seconds`
    (a little less, so that clocks and start times that drift never skip a round)."""
    every = timedelta(seconds=settings.queue.reaper_interval_seconds * 0.8)
    return await site_alerts.claim(CLUSTER_CLAIM, now, every)


async def reap(
    ctx: JobContext,
    enqueue: Callable[[uuid.UUID], Any],
    queued: Callable[[], set[str]],
    *,
    cluster: bool = True,
) -> dict[str, int]:
    """One round of housekeeping; returns how many things each step handled.

    Every consumer, on every host, does the host's own part each round: the videos
    of its dead consumers (seen at once by their locks; a requeue is one conditional
    update, so two reapers never queue a video twice) and its leftover folders.
    `cluster` adds the install-wide duties on the shared database and store, which
    one consumer of the install does per round (`cluster_turn`).
    """
    done = {
        "requeued": len(await requeue_stalled(ctx, enqueue, queued)),
        # The chunks of chunked transcodes, as `requeue_stalled` for videos.
        "chunks": await chunk_jobs.reap(ctx, queued),
        "leftovers": await delete_leftovers(ctx),
    }
    if not cluster:
        return done
    return done | {
        "abandoned": await delete_abandoned_uploads(ctx),
        "expired": await delete_expired_resumable_uploads(ctx),
        "notifications": await prune_read(ctx.settings.notifications.keep_read_days),
        "deliveries": await queue_lost_deliveries(),
        "alerts": int(await site_alerts.check_storage(ctx.settings, ctx.backends.storage)),
        "backup": int(await backups.start_if_due(ctx)),
    }
