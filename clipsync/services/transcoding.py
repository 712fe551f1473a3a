"""The transcoding job: one video, from its stored source to a stored HLS tree.

Runs in the job consumer (see `clipsync.jobs`). It is idempotent: it only works on
a video in PROCESSING, starts from a clean scratch folder and replaces whatever an
earlier attempt stored. Its state lives in the video's row (status, progress,
heartbeat, attempts, error); the queue only says "do this video".

A job works under a lease on the row: `<consumer id>:<random>`. The consumer renews
the leases of its running jobs every `[queue] heartbeat_seconds` (`renew_leases`);
a lease is free again once it is not renewed for `lease_expiry_seconds`, at once
when its consumer's process is seen dead on this host (`jobs.liveness`), and to a
retry in the consumer that took it when no job there still runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from clipsync import events, metrics
from clipsync.backends import AdoptingStorage, Backends, StorageBackend, Transcoder
from clipsync.cancellation import outlast
from clipsync.errors import QueueUnavailable
from clipsync.jobs.liveness import Liveness, lease_holder, new_consumer_id
from clipsync.media.errors import MediaError
from clipsync.media.ladder import Rung
from clipsync.media.pipeline import TranscodeResult, transcode
from clipsync.media.playlists import RenditionOutput
from clipsync.media.probe import probe
from clipsync.models import Rendition, Video, VideoStatus
from clipsync.plugins import PluginHost
from clipsync.services import disk_space
from clipsync.settings import Settings
from clipsync.storage import keys

if TYPE_CHECKING:
    from clipsync.services.early_playback import Publisher as EarlyPublisher

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
    ".vtt": "text/vtt",
}
# Progress is written at most this often (seconds), so a job does not hammer the database.
PROGRESS_INTERVAL = 1.0
# The transcoder a failed encode is retried with when `[transcoder] fallback` is empty.
CPU_TRANSCODER = "cpu"
# The lease of a video whose transcode was cut into chunks, while they run: `chunks:<plan>`
# (services/chunked_transcoding.py). No job claims it and the reaper leaves it alone:
# each chunk has a lease of its own.
CHUNKS_LEASE = "chunks:"


@dataclass
class RunningJob:
    """A job of this process working on a video: its lease and its task.

    `claiming`: registered, but the claim's UPDATE has not answered yet, so the row
    does not hold the lease yet: the heartbeat (`renew_leases`) leaves it alone rather
    than take it for a job whose lease was taken.
    """

    lease: str
    task: asyncio.Task[object] | None
    claiming: bool = False


@dataclass
class JobContext:
    """What a job needs: made once per consumer process (see `jobs.runtime`)."""

    settings: Settings
    plugins: PluginHost
    backends: Backends
    # The consumer this process runs as: its leases start with this id.
    consumer_id: str = field(default_factory=new_consumer_id)
    # Tells whether another consumer's process is alive (None: by the heartbeat only).
    liveness: Liveness | None = None
    # Video id -> the job of this process working on it, for the lease heartbeat.
    running: dict[str, RunningJob] = field(default_factory=dict)
    # Chunk row id -> the job of this process working on that chunk of a video
    # (services/chunked_transcoding.py).
    running_chunks: dict[int, RunningJob] = field(default_factory=dict)
    # How jobs queue others: a video's transcode, a chunk (video id, plan, index,
    # delay in seconds). None (a job run outside a consumer): videos are not chunked.
    enqueue_transcode: Callable[[uuid.UUID], object] | None = None
    enqueue_chunk: Callable[[str, str, int, float], object] | None = None


class TranscodeAttemptFailed(Exception):
    """This attempt failed and another will follow; the queue retries on it."""


class VideoGone(Exception):
    """The video was deleted while its job ran: the job stops and leaves nothing."""


def content_type(path: Path | str) -> str:
    suffix = Path(path).suffix.lower()
    return (
        CONTENT_TYPES.get(suffix)
        or mimetypes.guess_type(str(path))[0]
        or "application/octet-stream"
    )


async def finish(ctx: JobContext, video: Video, new: VideoStatus, **fields: object) -> bool:
    """End this job's work on the video and tell the plugins, unless the video changed.

    Only a video still PROCESSING under this job's lease is updated: when a
    moderator rejected it meanwhile, or another job took over, nothing they did is
    overwritten, and False is returned.
    """
    # A lease left for the reaper starts its wait for a requeue from now, not from
    # its last heartbeat (a retry of this job is scheduled meanwhile).
    changed = await Video.filter(
        id=video.id, status=VideoStatus.PROCESSING, worker_lease=video.worker_lease
    ).update(status=new, worker_lease=None, heartbeat_at=datetime.now(UTC), **fields)
    if not changed:
        log.info(
            "transcode %s: the video changed while it was transcoded; result dropped", video.id
        )
        await sweep_if_deleted(ctx, video.id)
        return False
    await video.refresh_from_db()
    if new != VideoStatus.PROCESSING:
        await events.status_changed(ctx.plugins, video, VideoStatus.PROCESSING)
    else:
        await events.publish_status(video)
    return True


async def sweep_if_deleted(ctx: JobContext, video_id: uuid.UUID) -> None:
    """Deleted, or its files deleted, while a job ran: none of the job's files stay."""
    if not await Video.filter(id=video_id, source_key__isnull=False).exists():
        deleted = await ctx.backends.storage.delete_prefix(keys.video_prefix(video_id))
        log.info("transcode %s: the video is gone; %d files of it removed", video_id, deleted)


def stale_before(settings: Settings) -> datetime:
    """A lease not renewed since this moment belongs to a job that is gone."""
    return datetime.now(UTC) - timedelta(seconds=settings.queue.lease_expiry_seconds)


def lease_is_free(ctx: JobContext, video: Video) -> bool:
    """Whether the lease on `video` may be taken by a job of this process."""
    lease = video.worker_lease
    if not lease:
        return True
    if lease.startswith(CHUNKS_LEASE):
        return False  # its chunks' jobs work on it; the last one queues the join
    if video.heartbeat_at is None or video.heartbeat_at < stale_before(ctx.settings):
        return True  # nobody renewed it: its job, or its whole consumer, is gone
    holder = lease_holder(lease)
    if holder == ctx.consumer_id:
        # Ours: a retry takes it back unless a job of this process still runs it
        # (an attempt whose end could not be written, say with the database down).
        running = ctx.running.get(str(video.id))
        return running is None or running.lease != lease
    return ctx.liveness is not None and ctx.liveness.dead_here(holder)


def _lease_filter(lease: str | None) -> dict[str, object]:
    return {"worker_lease": lease} if lease else {"worker_lease__isnull": True}


async def claim(ctx: JobContext, video_id: str) -> Video | None:
    """Take the video's lease if it is PROCESSING and no live job holds it.

    A video whose attempts are all used up (each ended by its worker dying, since a
    failed attempt past the last one is marked FAILED by the job itself) is marked
    FAILED here with the reason, and None is returned.
    """
    video = await Video.get_or_none(id=video_id, status=VideoStatus.PROCESSING)
    if video is None or not lease_is_free(ctx, video):
        return None
    unchanged = {
        "id": video.id,
        "status": VideoStatus.PROCESSING,
        **_lease_filter(video.worker_lease),
    }
    max_attempts = ctx.settings.transcoder.max_attempts
    if video.attempts >= max_attempts:
        last = f" The last error: {video.error}" if video.error else ""
        error = (
            f"Transcoding failed: it was tried {video.attempts} times and no attempt "
            f"finished (the worker running it stopped).{last}"
        )
        if await Video.filter(**unchanged).update(
            status=VideoStatus.FAILED, worker_lease=None, error=error[:1000]
        ):
            log.warning("transcode %s: %s", video.id, error)
            await video.refresh_from_db()
            await events.status_changed(ctx.plugins, video, VideoStatus.PROCESSING)
        return None
    lease = f"{ctx.consumer_id}:{uuid.uuid4().hex[:12]}"
    # Known as running before the row says so: the reaper never sees a lease of
    # this process without its job (it runs on the same event loop).
    key = str(video.id)
    previous = ctx.running.get(key)
    job = ctx.running[key] = RunningJob(lease, asyncio.current_task(), claiming=True)
    claimed = 0
    try:
        claimed = await Video.filter(**unchanged).update(
            worker_lease=lease,
            heartbeat_at=datetime.now(UTC),
            progress=0,
            attempts=F("attempts") + 1,
        )
    finally:
        job.claiming = False
        if not claimed:
            restore_running(ctx.running, key, previous)
    return await Video.get(id=video_id) if claimed else None


def restore_running(
    jobs: dict[str | int, RunningJob], key: str | int, previous: RunningJob | None
) -> None:
    """Put back what `jobs` (this process's running videos or chunks) held at `key`."""
    if previous is None:
        jobs.pop(key, None)
    else:
        jobs[key] = previous


def release_running(jobs: dict[str | int, RunningJob], key: str | int, lease: str | None) -> None:
    """The job at `key` under `lease` has ended: its lease is no longer renewed."""
    running = jobs.get(key)
    if running is not None and running.lease == lease:
        del jobs[key]


def release(ctx: JobContext, video_id: str, lease: str | None) -> None:
    """This process's job under `lease` has ended: its lease is no longer renewed."""
    release_running(ctx.running, video_id, lease)


async def renew_leases(ctx: JobContext) -> None:
    """Renew the lease of every running job; stop a job whose lease was taken.

    A lease is only taken from a live job when it went unrenewed too long (the
    database was unreachable, say): that job stops at once, so two never go on
    working on one video.
    """
    now = datetime.now(UTC)
    for video_id, job in list(ctx.running.items()):
        if job.claiming:
            continue  # its row gets the lease (or not) in a moment
        renewed = await Video.filter(
            id=video_id, status=VideoStatus.PROCESSING, worker_lease=job.lease
        ).update(heartbeat_at=now)
        if renewed or ctx.running.get(video_id) is not job:
            continue
        ctx.running.pop(video_id, None)
        if job.task is not None and not job.task.done():
            log.warning(
                "transcode %s: its lease was taken or the video changed: stopping", video_id
            )
            job.task.cancel()


async def queue_transcode(enqueue: Callable[[uuid.UUID], object], video_id: uuid.UUID) -> None:
    """Hand the video to the job queue, or raise QueueUnavailable (503) when it cannot take it.

    Off the event loop: a queue that is down may take a while to say so.
    """
    try:
        await asyncio.to_thread(enqueue, video_id)
    except Exception as exc:
        log.warning("could not queue the transcode of %s: %s", video_id, exc)
        raise QueueUnavailable() from exc


async def run_transcode(ctx: JobContext, video_id: str, *, final_attempt: bool) -> None:
    """Transcode one video; on failure, mark it FAILED on the final attempt or raise to retry."""
    video = await claim(ctx, video_id)
    if video is None:
        log.info("transcode %s: not PROCESSING, or another job holds it: nothing to do", video_id)
        return
    lease = video.worker_lease
    # The attempts on the row count too: a job queued again by the reaper starts
    # Huey's count of retries afresh.
    final_attempt = final_attempt or video.attempts >= ctx.settings.transcoder.max_attempts
    try:
        await _run_claimed(ctx, video, final_attempt)
    finally:
        release(ctx, str(video.id), lease)


async def _run_claimed(ctx: JobContext, video: Video, final_attempt: bool) -> None:
    scratch = ctx.settings.data_dir / "scratch" / str(video.id)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        with disk_space.disk_full_as_media_error(scratch):
            await disk_space.ensure_room_to_transcode(ctx.settings, ctx.backends.storage, video)
            # A long video is cut into chunks for other jobs, or joined once they are
            # done (imported here: that module builds on this one).
            from clipsync.services import chunked_transcoding, early_playback

            step = await chunked_transcoding.plan_or_join(ctx, video)
            if step is not None and step.handed_over:
                return
            if step is not None:
                stored = step.stored
            else:
                # Stores what ffmpeg has finished while it runs (watch while it transcodes).
                early = early_playback.Publisher.for_video(ctx, video.id)
                result = await metrics.timed_transcode(
                    _transcode(ctx, video, scratch, early), video.duration
                )
                stored = await _store(ctx, video, result, scratch / "hls")
    except asyncio.CancelledError:
        # Stopped by the heartbeat (`renew_leases`): ffmpeg is killed by now, and the
        # uploads under way have ended (`put_files`). A video deleted meanwhile keeps
        # none of what this job stored after the deletion swept its files.
        await asyncio.shield(sweep_if_deleted(ctx, video.id))
        raise
    except VideoGone:
        log.info("transcode %s: the video was deleted; stopped", video.id)
        await sweep_if_deleted(ctx, video.id)
        return
    except Exception as exc:
        if isinstance(exc, MediaError):
            reason = exc.message
            log.warning("transcode %s failed: %s %s", video.id, exc.message, exc.detail)
        else:
            reason = "an unexpected error (see the server log)"
            log.exception("transcode %s failed", video.id)
        if final_attempt:
            await finish(ctx, video, VideoStatus.FAILED, error=f"Transcoding failed: {reason}")
            metrics.job_failed("transcode_video")
            return
        retrying = f"Attempt {video.attempts} failed ({reason}); trying again."
        if await finish(ctx, video, VideoStatus.PROCESSING, error=retrying):
            raise TranscodeAttemptFailed(reason) from exc
        return
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    # A video approved before it was transcoded again stays approved.
    approved = video.moderated_at is not None and not video.moderation_reason
    done = VideoStatus.APPROVED if approved else VideoStatus.READY
    if await finish(ctx, video, done, progress=100, error=None, **stored):
        await ctx.plugins.notify("video_ready", video=video)


def max_concurrent(settings: Settings, backends: Backends) -> int:
    """Transcoding jobs one consumer runs at once.

    `[transcoder] max_concurrent`, or when it is 0 the active transcoder's own
    `default_max_concurrent` (1 per GPU, half the cores for the CPU).
    """
    if settings.transcoder.max_concurrent > 0:
        return settings.transcoder.max_concurrent
    return max(1, int(getattr(backends.transcoder, "default_max_concurrent", 1)))


def encoder_label(transcoder: Transcoder) -> str:
    profile = transcoder.profile()
    return f"{profile.video_encoder} ({profile.name})"


def fallback_transcoder(ctx: JobContext) -> Transcoder | None:
    """What a failed encode is retried with: `[transcoder] fallback`, else the CPU one.

    The first of them that is not the active transcoder and can work here; None when
    there is none (the CPU transcoder failing is not retried on itself).
    """
    selection = ctx.backends.selections["transcoder"]
    for name in dict.fromkeys(filter(None, [ctx.settings.transcoder.fallback, CPU_TRANSCODER])):
        transcoder = selection.alternative(name)
        if transcoder is not None:
            return transcoder
    return None


def _not_configured_note(ctx: JobContext) -> str:
    """Why the configured transcoder is not the one at work (start-up fallback), or ""."""
    selection = ctx.backends.selections["transcoder"]
    if selection.wanted in ("auto", selection.chosen.name):
        return ""
    availability = selection.probes.get(selection.wanted)
    reason = availability.reason if availability else "unavailable"
    return f"; {selection.wanted} unavailable: {reason}"


def _failure(exc: MediaError) -> str:
    return exc.message.removeprefix("The video could not be converted: ").rstrip(".")


async def _transcode(
    ctx: JobContext, video: Video, scratch: Path, early: EarlyPublisher
) -> TranscodeResult:
    settings = ctx.settings.transcoder
    transcoder = ctx.backends.transcoder
    last_write = 0.0

    async def on_progress(percent: int) -> None:
        nonlocal last_write
        now = time.monotonic()
        if percent < 100 and now - last_write < PROGRESS_INTERVAL:
            return
        last_write = now
        if await Video.filter(id=video.id, worker_lease=video.worker_lease).update(
            progress=percent, heartbeat_at=datetime.now(UTC)
        ):
            await events.publish_video("video.status", video, progress=percent)
        elif not await Video.exists(id=video.id):
            raise VideoGone()  # deleted: ffmpeg stops now, not at the next heartbeat

    assert video.source_key is not None
    async with ctx.backends.storage.open_local(video.source_key) as source:
        info = await probe(source, ctx.settings.uploads.ffprobe)

        async def run(with_transcoder: Transcoder) -> TranscodeResult:
            async with early.attempt():
                return await _run_one(with_transcoder)

        async def _run_one(with_transcoder: Transcoder) -> TranscodeResult:
            return await transcode(
                source,
                info,
                scratch / "hls",
                ffmpeg=with_transcoder.ffmpeg,
                profile=with_transcoder.profile(),
                rungs=[Rung(height=r.height, bitrate=r.bitrate) for r in settings.ladder],
                segment_seconds=settings.segment_seconds,
                audio_bitrate=settings.audio_bitrate * 1000,
                stall_timeout=settings.stall_timeout_seconds,
                sprite_interval=settings.sprite_interval_seconds,
                thumbnail_candidates=settings.thumbnail_candidates,
                on_progress=on_progress,
                follow=early.follow,
            )

        try:
            result = await run(transcoder)
        except MediaError as exc:
            # A GPU can fail where the CPU does not (a driver error, video memory, a
            # size the encoder refuses): the same attempt is made again on the CPU.
            # Its first use may run its probe (a short test encode): not on the loop.
            fallback = await asyncio.to_thread(fallback_transcoder, ctx)
            if fallback is None:
                raise
            failed = encoder_label(transcoder)
            log.warning(
                "transcode %s: %s failed (%s %s); trying again with %s",
                video.id, failed, exc.message, exc.detail, encoder_label(fallback),
            )  # fmt: skip
            result = await run(fallback)
            encoder = f"{result.encoder} after {failed} failed: {_failure(exc)}"
            return replace(result, encoder=encoder)
        return replace(result, encoder=result.encoder + _not_configured_note(ctx))


async def put_files(
    storage: StorageBackend, files: list[tuple[str, Path]], concurrency: int, *, adopt: bool = True
) -> None:
    """Store each (key, path), `concurrency` at a time; raise the first failure.

    `adopt` False: the files are copied even where the store could move them (ffmpeg
    still needs them: services/early_playback.py).

    An object store takes many files far faster side by side than one by one (each
    PUT is mostly a round trip). After a failure no new file is started, and the
    uploads already running are waited for, never abandoned: the caller removes the
    scratch folder they read from as soon as this returns.
    """
    pending = iter(files)
    failures: list[BaseException] = []

    async def uploader() -> None:
        for key, path in pending:  # one iterator shared by every uploader
            if failures:
                return
            try:
                if adopt and isinstance(storage, AdoptingStorage):
                    # Local storage renames scratch into media: no second copy on disk.
                    await storage.adopt_file(key, path)
                else:
                    await storage.put_file(key, path, content_type(path))
            except Exception as exc:
                failures.append(exc)
                return

    uploads = asyncio.gather(*(uploader() for _ in range(max(1, min(concurrency, len(files))))))
    try:
        await asyncio.shield(uploads)
    except asyncio.CancelledError:
        # Cancelled (the video was deleted meanwhile, say): a store's call runs on in
        # its thread whatever happens to the task awaiting it, so the uploads under
        # way are waited for, and none starts, before the caller sweeps up.
        failures.append(asyncio.CancelledError())
        with contextlib.suppress(Exception):
            await outlast(uploads)
        raise
    if failures:
        raise failures[0]


async def clear_transcoded(storage: StorageBackend, video_id: uuid.UUID | str) -> int:
    """Delete what a transcode stored for the video: its HLS tree, but an uploaded poster.

    Folder by folder (a rendition, the candidates) and file by file at the tree's top,
    so a store deletes a few prefixes, never each segment on its own.
    """
    prefix = keys.hls_prefix(video_id)
    kept = keys.uploaded_posters_prefix(video_id)
    tops = {key.removeprefix(prefix + "/").split("/", 1)[0] for key in await storage.list(prefix)}
    deleted = 0
    for top in sorted(tops):
        if f"{prefix}/{top}" != kept:
            deleted += await storage.delete_prefix(f"{prefix}/{top}")
    return deleted


async def _store(
    ctx: JobContext, video: Video, result: TranscodeResult, tree: Path
) -> dict[str, str]:
    """Replace the video's stored HLS tree and renditions; return the row's new keys.

    The files stored while ffmpeg ran (`result.delivered`, services/early_playback.py)
    replaced the old tree then, and are not stored again.
    The poster stays the one the uploader chose (services/thumbnails.py): an uploaded
    image is kept, a picked candidate stays picked when this run made it again.
    """
    storage = ctx.backends.storage
    published = {keys.hls_key(video.id, path) for path in result.delivered}
    if not published:
        await clear_transcoded(storage, video.id)
    files = [(keys.hls_key(video.id, p.relative_to(tree).as_posix()), p) for p in result.files]
    missing = sorted((key, path) for key, path in files if key not in published)
    try:
        await put_files(storage, missing, ctx.settings.storage.upload_concurrency)
    except Exception:
        # Half a tree plays for nobody; the next attempt starts from nothing anyway.
        with contextlib.suppress(Exception):
            await clear_transcoded(storage, video.id)
        raise
    return await record_renditions(
        video, result.variants, {key for key, _ in files}, result.encoder
    )


async def record_renditions(
    video: Video, variants: list[RenditionOutput], stored: set[str], encoder: str
) -> dict[str, str]:
    """Write the video's renditions; return the row's new keys (`stored`: every key
    the transcode stored, so a chosen candidate it made again stays the poster)."""
    chosen = video.poster_key or ""
    uploaded = chosen.startswith(keys.uploaded_posters_prefix(video.id) + "/")
    kept = uploaded or chosen in stored
    poster = chosen if kept else keys.hls_key(video.id, "poster.jpg")
    async with in_transaction():
        await Rendition.filter(video_id=video.id).delete()
        for output in variants:
            await Rendition.create(
                video_id=video.id,
                name=output.name,
                width=output.width,
                height=output.height,
                bitrate=output.bandwidth,
                average_bitrate=output.average_bandwidth,
                frame_rate=output.frame_rate,
                codecs=output.codecs,
                playlist_key=keys.hls_key(video.id, output.playlist),
            )
    return {
        "hls_key": keys.hls_key(video.id, "master.m3u8"),
        "poster_key": poster,
        "sprite_key": keys.hls_key(video.id, "sprite.jpg"),
        "thumbnails_key": keys.hls_key(video.id, "thumbnails.vtt"),
        "encoder": encoder,
    }
