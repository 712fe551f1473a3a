"""The job of one chunk of a chunked transcode, its lease, and the reaper's part.

See services/chunked_transcoding.py for the whole flow. A chunk's job works as a
video's does (services/transcoding.py), on the chunk's row: it takes a lease
(`<consumer id>:<random>`), renews it with the heartbeat (`renew_chunk_leases`) and
with its progress, and gives it back when it ends. A lease not renewed for
`[queue] lease_expiry_seconds`, or whose consumer is seen dead on this host, is free:
`reap` puts the chunk back to PENDING and queues it again, and only it is redone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from tortoise.transactions import in_transaction

from clipsync import events, metrics
from clipsync.backends import Transcoder
from clipsync.jobs.liveness import lease_holder
from clipsync.media.chunk_pipeline import transcode_chunk
from clipsync.media.chunks import ChunkSpan, plan_picks, weighted_progress
from clipsync.media.commands import output_frame_rate, sprite_layout
from clipsync.media.errors import MediaError
from clipsync.media.ladder import Rung, plan_ladder
from clipsync.media.probe import probe
from clipsync.models import ChunkStatus, TranscodeChunk, Video, VideoStatus
from clipsync.services import disk_space, early_playback
from clipsync.services.chunked_transcoding import SPRITE_COLUMNS, SPRITE_TILE_WIDTH
from clipsync.services.transcoding import (
    CHUNKS_LEASE,
    PROGRESS_INTERVAL,
    JobContext,
    RunningJob,
    TranscodeAttemptFailed,
    VideoGone,
    put_files,
    release_running,
    restore_running,
    stale_before,
    sweep_if_deleted,
)
from clipsync.storage import keys

log = logging.getLogger(__name__)


def chunk_key(video_id: object, plan: str, index: int) -> str:
    """A queued chunk task as named in the set of queued work the reaper is given."""
    return f"{video_id}/{plan}/{index}"


def _now() -> datetime:
    return datetime.now(UTC)


def _clock(seconds: int | None) -> str:
    if seconds is None:
        return "the end"
    minutes, secs = divmod(seconds, 60)
    return f"{minutes}:{secs:02d}"


def describe(chunk: TranscodeChunk, count: int) -> str:
    """ "part 2 of 5 (2:00 to 4:00)": a chunk, as people are told of it."""
    return f"part {chunk.index + 1} of {count} ({_clock(chunk.start)} to {_clock(chunk.end)})"


def transcoder_for(ctx: JobContext, name: str) -> Transcoder | None:
    """The transcoder called `name` if it works on this worker (its probe may run: blocking)."""
    selection = ctx.backends.selections["transcoder"]
    if name == selection.chosen.name:
        return ctx.backends.transcoder
    return selection.alternative(name)


# --- the lease on a chunk ----------------------------------------------------------------


def _lease_is_free(ctx: JobContext, chunk: TranscodeChunk) -> bool:
    lease = chunk.worker_lease
    if not lease:
        return True
    if chunk.heartbeat_at is None or chunk.heartbeat_at < stale_before(ctx.settings):
        return True
    holder = lease_holder(lease)
    if holder == ctx.consumer_id:
        running = ctx.running_chunks.get(chunk.id)
        return running is None or running.lease != lease
    return ctx.liveness is not None and ctx.liveness.dead_here(holder)


async def _claim(
    ctx: JobContext, video_id: str, plan: str, index: int
) -> tuple[Video, TranscodeChunk] | None:
    """Take the chunk's lease if its plan is the video's and no live job holds it."""
    video = await Video.get_or_none(
        id=video_id, status=VideoStatus.PROCESSING, worker_lease=CHUNKS_LEASE + plan
    )
    chunk = await TranscodeChunk.get_or_none(video_id=video_id, plan=plan, index=index)
    if video is None or chunk is None:
        return None
    if chunk.status not in (ChunkStatus.PENDING, ChunkStatus.RUNNING):
        return None
    if not _lease_is_free(ctx, chunk):
        return None
    unchanged = {"id": chunk.id, "status": chunk.status}
    unchanged |= (
        {"worker_lease": chunk.worker_lease}
        if chunk.worker_lease
        else {"worker_lease__isnull": True}
    )
    if chunk.attempts >= ctx.settings.transcoder.max_attempts:
        count = await TranscodeChunk.filter(video_id=video_id, plan=plan).count()
        last = f" The last error: {chunk.error}" if chunk.error else ""
        reason = (
            f"{describe(chunk, count)} was tried {chunk.attempts} times and no attempt "
            f"finished (the worker running it stopped).{last}"
        )
        if await TranscodeChunk.filter(**unchanged).update(
            status=ChunkStatus.FAILED, worker_lease=None, error=reason[:1000]
        ):
            await fail_video(ctx, video, plan, f"Transcoding failed: {reason}")
        return None
    lease = f"{ctx.consumer_id}:{uuid.uuid4().hex[:12]}"
    previous = ctx.running_chunks.get(chunk.id)
    job = ctx.running_chunks[chunk.id] = RunningJob(lease, asyncio.current_task(), claiming=True)
    claimed = 0
    try:
        claimed = await TranscodeChunk.filter(**unchanged).update(
            status=ChunkStatus.RUNNING,
            worker_lease=lease,
            heartbeat_at=_now(),
            progress=0,
            attempts=chunk.attempts + 1,
        )
    finally:
        job.claiming = False
        if not claimed:
            restore_running(ctx.running_chunks, chunk.id, previous)
    if not claimed:
        return None
    return video, await TranscodeChunk.get(id=chunk.id)


async def renew_chunk_leases(ctx: JobContext) -> None:
    """Renew the lease of every running chunk; stop one whose lease was taken, or
    whose video left its plan (failed, deleted, rejected, transcoded afresh)."""
    now = _now()
    for chunk_id, job in list(ctx.running_chunks.items()):
        if job.claiming:
            continue  # its row gets the lease (or not) in a moment
        renewed = await TranscodeChunk.filter(
            id=chunk_id, status=ChunkStatus.RUNNING, worker_lease=job.lease
        ).update(heartbeat_at=now)
        row = await TranscodeChunk.get_or_none(id=chunk_id).values("video_id", "plan")
        in_plan = row is not None and await Video.exists(
            id=row["video_id"],
            status=VideoStatus.PROCESSING,
            worker_lease=CHUNKS_LEASE + row["plan"],
        )
        if (renewed and in_plan) or ctx.running_chunks.get(chunk_id) is not job:
            continue
        ctx.running_chunks.pop(chunk_id, None)
        if job.task is not None and not job.task.done():
            log.warning("chunk %s: its lease was taken or its video changed: stopping", chunk_id)
            job.task.cancel()


# --- the job ---------------------------------------------------------------------------


async def run_chunk(
    ctx: JobContext, video_id: str, plan: str, index: int, *, final_attempt: bool
) -> None:
    """Transcode one chunk; on failure, fail the video on the last attempt or raise to retry."""
    pinned = await TranscodeChunk.get_or_none(video_id=video_id, plan=plan, index=index)
    if pinned is None:
        return
    transcoder = await asyncio.to_thread(transcoder_for, ctx, pinned.transcoder)
    if transcoder is None:
        await _defer(ctx, pinned)
        return
    claimed = await _claim(ctx, video_id, plan, index)
    if claimed is None:
        log.info("chunk %s of %s: done, running elsewhere, or its plan is gone", index, video_id)
        return
    video, chunk = claimed
    final_attempt = final_attempt or chunk.attempts >= ctx.settings.transcoder.max_attempts
    try:
        await _run_claimed(ctx, video, chunk, transcoder, final_attempt)
    finally:
        release_running(ctx.running_chunks, chunk.id, chunk.worker_lease)


async def _defer(ctx: JobContext, chunk: TranscodeChunk) -> None:
    """Not a worker for this chunk's transcoder: back to the queue, unclaimed."""
    here = ctx.backends.selections["transcoder"].chosen.name
    delay = max(1, ctx.settings.transcoder.retry_delay_seconds)
    log.info(
        "chunk %d of %s needs the %s transcoder (this worker has %s): queued again in %ds",
        chunk.index, chunk.video_id, chunk.transcoder, here, delay,
    )  # fmt: skip
    await TranscodeChunk.filter(id=chunk.id, status=ChunkStatus.PENDING).update(
        heartbeat_at=_now(),
        error=f"Waiting for a worker with the {chunk.transcoder} transcoder.",
    )
    assert ctx.enqueue_chunk is not None
    await asyncio.to_thread(
        ctx.enqueue_chunk, str(chunk.video_id), chunk.plan, chunk.index, float(delay)
    )


async def _run_claimed(
    ctx: JobContext,
    video: Video,
    chunk: TranscodeChunk,
    transcoder: Transcoder,
    final_attempt: bool,
) -> None:
    scratch = ctx.settings.data_dir / "scratch" / str(video.id) / f"chunk-{chunk.index}"
    lease = chunk.worker_lease
    try:
        with disk_space.disk_full_as_media_error(scratch):
            outputs = await _transcode(ctx, video, chunk, transcoder, scratch)
    except asyncio.CancelledError:
        await asyncio.shield(sweep_if_deleted(ctx, video.id))
        raise
    except VideoGone:
        await sweep_if_deleted(ctx, video.id)
        return
    except Exception as exc:
        await _failed(ctx, video, chunk, exc, final_attempt)
        return
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)
    done = await _mark_done(ctx, video, chunk, lease, outputs)
    if not done:
        log.info("chunk %d of %s: its lease was taken; result dropped", chunk.index, video.id)
        return
    log.info("chunk %d of %s done by consumer %s", chunk.index, video.id, ctx.consumer_id)
    await _report_progress(video, chunk.plan)
    await hand_to_join_if_done(ctx, video.id, chunk.plan)


async def _mark_done(
    ctx: JobContext, video: Video, chunk: TranscodeChunk, lease: str | None, outputs: str
) -> bool:
    """The chunk is DONE (unless its lease was taken), and the early playlists grow over
    it when the chunks before it are done too (`early_playback.extend_over_done_chunks`):
    one chunk at a time, the video's row locked (on SQLite the write lock does that)."""
    async with in_transaction():
        # The write first: on SQLite a transaction that read before it writes cannot
        # take the write lock once another process has written ("database is locked").
        done = await TranscodeChunk.filter(id=chunk.id, worker_lease=lease).update(
            status=ChunkStatus.DONE, worker_lease=None, progress=100, error=None, outputs=outputs
        )
        if done:
            await Video.select_for_update().filter(id=video.id).values_list("id", flat=True)
            try:
                await early_playback.extend_over_done_chunks(
                    ctx.backends.storage,
                    video.id,
                    chunk.plan,
                    ctx.settings.transcoder.segment_seconds,
                )
            except Exception as exc:
                # Early playback is a bonus: the join stores the playlists for good.
                log.warning("early playback of %s: %s", video.id, exc)
    return bool(done)


async def _transcode(
    ctx: JobContext,
    video: Video,
    chunk: TranscodeChunk,
    transcoder: Transcoder,
    scratch: Path,
) -> str:
    """Run the chunk and store what it made; return its outputs as JSON."""
    settings = ctx.settings.transcoder
    last_write = 0.0

    async def on_progress(percent: int) -> None:
        nonlocal last_write
        now = time.monotonic()
        if percent < 100 and now - last_write < PROGRESS_INTERVAL:
            return
        last_write = now
        if await TranscodeChunk.filter(id=chunk.id, worker_lease=chunk.worker_lease).update(
            progress=percent, heartbeat_at=_now()
        ):
            await _report_progress(video, chunk.plan)
        elif not await Video.exists(id=video.id):
            raise VideoGone()

    assert video.source_key is not None
    async with ctx.backends.storage.open_local(video.source_key) as source:
        info = await probe(source, ctx.settings.uploads.ffprobe)
        span = ChunkSpan(chunk.index, chunk.start, chunk.end)
        layout = sprite_layout(
            info.duration,
            settings.sprite_interval_seconds,
            SPRITE_COLUMNS,
            SPRITE_TILE_WIDTH,
            info.width / info.height,
        )
        rate = output_frame_rate(info)
        (picks,) = plan_picks([span], info.duration, rate, layout, settings.thumbnail_candidates)
        rungs = [Rung(height=r.height, bitrate=r.bitrate) for r in settings.ladder]
        variants = plan_ladder(rungs, info)
        profile = transcoder.profile()
        started = time.monotonic()
        # Chunk 0 is offered while it runs (services/early_playback.py).
        early = early_playback.Publisher.for_chunk(ctx, video.id, span.index)
        async with early.attempt():
            result = await transcode_chunk(
                source, info, scratch, span=span, picks=picks, layout=layout,
                variants=variants, ffmpeg=transcoder.ffmpeg, profile=profile,
                segment_seconds=settings.segment_seconds,
                audio_bitrate=settings.audio_bitrate * 1000,
                stall_timeout=settings.stall_timeout_seconds, on_progress=on_progress,
                follow=early.follow,
            )  # fmt: skip
    # Each chunk is one ffmpeg run making every rendition of its range: counted as one
    # run, so encoder speed reads alike chunked or not, and the media seconds add up.
    end = info.duration if chunk.end is None else min(chunk.end, info.duration)
    metrics.transcoded(
        profile.video_encoder,
        [variant.name for variant in variants],
        time.monotonic() - started,
        max(0.0, end - chunk.start),
    )
    files = [(keys.hls_key(video.id, relative), path) for relative, path in result.files]
    files = early.unpublished(files)  # each segment is stored once
    await put_files(ctx.backends.storage, files, ctx.settings.storage.upload_concurrency)
    outputs = dataclasses.replace(result.outputs, encoder=profile.video_encoder)
    return outputs.to_json()


async def _failed(
    ctx: JobContext, video: Video, chunk: TranscodeChunk, exc: Exception, final_attempt: bool
) -> None:
    if isinstance(exc, MediaError):
        reason = exc.message.removeprefix("The video could not be converted: ").rstrip(".")
        log.warning("chunk %d of %s failed: %s %s", chunk.index, video.id, exc.message, exc.detail)
    else:
        reason = "an unexpected error (see the server log)"
        log.exception("chunk %d of %s failed", chunk.index, video.id)
    count = await TranscodeChunk.filter(video_id=video.id, plan=chunk.plan).count()
    where = describe(chunk, count)
    mine = {"id": chunk.id, "worker_lease": chunk.worker_lease}
    if final_attempt:
        if await TranscodeChunk.filter(**mine).update(
            status=ChunkStatus.FAILED, worker_lease=None, error=reason[:1000]
        ):
            await fail_video(ctx, video, chunk.plan, f"Transcoding failed: {where}: {reason}.")
        return
    retrying = f"Attempt {chunk.attempts} failed ({reason}); trying again."
    if await TranscodeChunk.filter(**mine).update(
        status=ChunkStatus.PENDING, worker_lease=None, heartbeat_at=_now(), error=retrying
    ):
        raise TranscodeAttemptFailed(f"{where}: {reason}") from exc


async def fail_video(ctx: JobContext, video: Video, plan: str, error: str) -> None:
    """Mark the video FAILED with `error` if it is still waiting for this plan's chunks."""
    if await Video.filter(
        id=video.id, status=VideoStatus.PROCESSING, worker_lease=CHUNKS_LEASE + plan
    ).update(status=VideoStatus.FAILED, worker_lease=None, error=error[:1000], heartbeat_at=_now()):
        log.warning("transcode %s: %s", video.id, error)
        metrics.job_failed("transcode_chunk")
        await video.refresh_from_db()
        await events.status_changed(ctx.plugins, video, VideoStatus.PROCESSING)


async def _report_progress(video: Video, plan: str) -> None:
    """The video's progress: its chunks', weighted by their length; 99 until joined."""
    rows = await TranscodeChunk.filter(video_id=video.id, plan=plan).values(
        "start", "end", "progress"
    )
    duration = video.duration or 0.0
    parts = [((row["end"] or duration) - row["start"], row["progress"]) for row in rows]
    percent = min(99, weighted_progress(parts))
    if await Video.filter(id=video.id, worker_lease=CHUNKS_LEASE + plan).update(progress=percent):
        await events.publish_video("video.status", video, progress=percent)


async def hand_to_join_if_done(ctx: JobContext, video_id: uuid.UUID, plan: str) -> bool:
    """When every chunk of the plan is done, release the video and queue its job (the join).

    One caller wins the conditional update, however many finish at once. Should the
    queue not answer, the reaper queues the video (PROCESSING, no lease) later.
    """
    if (
        await TranscodeChunk.filter(video_id=video_id, plan=plan)
        .exclude(status=ChunkStatus.DONE)
        .exists()
    ):
        return False
    if not await Video.filter(
        id=video_id, status=VideoStatus.PROCESSING, worker_lease=CHUNKS_LEASE + plan
    ).update(worker_lease=None, heartbeat_at=_now(), attempts=0):
        return False
    assert ctx.enqueue_transcode is not None
    try:
        await asyncio.to_thread(ctx.enqueue_transcode, video_id)
    except Exception as exc:
        log.warning("could not queue the join of %s: %s", video_id, exc)
    return True


# --- the reaper's part -----------------------------------------------------------------


async def reap(ctx: JobContext, queued: Callable[[], set[str]]) -> int:
    """Queue again every chunk no job works on or waits for; hand over finished plans.

    A RUNNING chunk whose lease went stale (or whose consumer is seen dead here) and a
    PENDING one that was queued `lease_expiry_seconds` ago and is not in the queue
    (the message was lost) go back to PENDING and are queued; each in one conditional
    update, so two reapers never queue one chunk twice. Returns how many were queued.
    """
    if ctx.enqueue_chunk is None:
        return 0
    videos = await Video.filter(
        status=VideoStatus.PROCESSING, worker_lease__startswith=CHUNKS_LEASE
    ).values("id", "worker_lease")
    if not videos:
        return 0
    stale = stale_before(ctx.settings)
    candidates = []
    for video in videos:
        plan = video["worker_lease"].removeprefix(CHUNKS_LEASE)
        rows = await TranscodeChunk.filter(video_id=video["id"], plan=plan)
        if rows and all(row.status == ChunkStatus.DONE for row in rows):
            # The last chunk's worker died before it handed the video over.
            await hand_to_join_if_done(ctx, video["id"], plan)
            continue
        for row in rows:
            # PENDING: queued (or put back) `lease_expiry_seconds` ago and not taken.
            queued_long_ago = row.heartbeat_at is None or row.heartbeat_at < stale
            running = row.status == ChunkStatus.RUNNING
            if (running and _lease_is_free(ctx, row)) or (
                row.status == ChunkStatus.PENDING and queued_long_ago
            ):
                candidates.append(row)
    waiting = await asyncio.to_thread(queued) if candidates else set()
    requeued = 0
    for row in candidates:
        key = chunk_key(row.video_id, row.plan, row.index)
        if row.status == ChunkStatus.PENDING and key in waiting:
            continue
        lease = (
            {"worker_lease": row.worker_lease}
            if row.worker_lease
            else {"worker_lease__isnull": True}
        )
        if not await TranscodeChunk.filter(id=row.id, status=row.status, **lease).update(
            status=ChunkStatus.PENDING, worker_lease=None, heartbeat_at=_now()
        ):
            continue
        where = f"chunk {row.index} of {row.video_id}"
        if row.status == ChunkStatus.RUNNING:
            log.warning("%s was left by a job that stopped: queued again", where)
        try:
            await asyncio.to_thread(ctx.enqueue_chunk, str(row.video_id), row.plan, row.index, 0.0)
        except Exception as exc:
            log.warning("could not queue %s again: %s", where, exc)
            continue
        requeued += 1
    return requeued
