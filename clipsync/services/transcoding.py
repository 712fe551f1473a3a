"""The transcoding job: one video, from its stored source to a stored HLS tree.

Runs in the job consumer (see `clipsync.jobs`). It is idempotent: it only works on
a video in PROCESSING, starts from a clean scratch folder and replaces whatever an
earlier attempt stored. Its state lives in the video's row (status, progress,
heartbeat, attempts, error); the queue only says "do this video".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import shutil
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from clipsync.backends import Backends, StorageBackend, Transcoder
from clipsync.media.errors import MediaError
from clipsync.media.ladder import Rung
from clipsync.media.pipeline import TranscodeResult, transcode
from clipsync.media.probe import probe
from clipsync.models import Rendition, Video, VideoStatus
from clipsync.plugins import PluginHost
from clipsync.settings import Settings
from clipsync.storage import keys

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
# How long past the stall timeout a silent job is given before it is called dead.
GRACE = timedelta(minutes=2)
# The transcoder a failed encode is retried with when `[transcoder] fallback` is empty.
CPU_TRANSCODER = "cpu"


@dataclass
class JobContext:
    """What a job needs: made once per consumer process (see `jobs.runtime`)."""

    settings: Settings
    plugins: PluginHost
    backends: Backends


class TranscodeAttemptFailed(Exception):
    """This attempt failed and another will follow; the queue retries on it."""


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
    changed = await Video.filter(
        id=video.id, status=VideoStatus.PROCESSING, worker_lease=video.worker_lease
    ).update(status=new, worker_lease=None, **fields)
    if not changed:
        log.info(
            "transcode %s: the video changed while it was transcoded; result dropped", video.id
        )
        return False
    await video.refresh_from_db()
    if new != VideoStatus.PROCESSING:
        await ctx.plugins.notify(
            "video_status_changed", video=video, old=str(VideoStatus.PROCESSING), new=str(new)
        )
    return True


def stale_before(settings: Settings) -> datetime:
    """A heartbeat older than this means the job holding the lease is gone."""
    return datetime.now(UTC) - timedelta(seconds=settings.transcoder.stall_timeout_seconds) - GRACE


async def claim(ctx: JobContext, video_id: str) -> Video | None:
    """Take the video's lease if it is PROCESSING and no live job holds it."""
    lease = uuid.uuid4().hex
    claimed = await Video.filter(
        Q(worker_lease__isnull=True) | Q(heartbeat_at__lt=stale_before(ctx.settings)),
        id=video_id,
        status=VideoStatus.PROCESSING,
    ).update(
        worker_lease=lease, heartbeat_at=datetime.now(UTC), progress=0, attempts=F("attempts") + 1
    )
    return await Video.get(id=video_id) if claimed else None


async def run_transcode(ctx: JobContext, video_id: str, *, final_attempt: bool) -> None:
    """Transcode one video; on failure, mark it FAILED on the final attempt or raise to retry."""
    video = await claim(ctx, video_id)
    if video is None:
        log.info("transcode %s: not PROCESSING, or another job holds it: nothing to do", video_id)
        return
    scratch = ctx.settings.data_dir / "scratch" / str(video.id)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        result = await _transcode(ctx, video, scratch)
        stored = await _store(ctx, video, result, scratch / "hls")
    except Exception as exc:
        if isinstance(exc, MediaError):
            reason = exc.message
            log.warning("transcode %s failed: %s %s", video.id, exc.message, exc.detail)
        else:
            reason = "an unexpected error (see the server log)"
            log.exception("transcode %s failed", video.id)
        if final_attempt:
            await finish(ctx, video, VideoStatus.FAILED, error=f"Transcoding failed: {reason}")
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
    elif await Video.filter(id=video.id, source_key__isnull=True).exists():
        # Its files were deleted (rejected with "delete files") while this job ran.
        await ctx.backends.storage.delete_prefix(keys.video_prefix(video.id))


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


async def _transcode(ctx: JobContext, video: Video, scratch: Path) -> TranscodeResult:
    settings = ctx.settings.transcoder
    transcoder = ctx.backends.transcoder
    last_write = 0.0

    async def on_progress(percent: int) -> None:
        nonlocal last_write
        now = time.monotonic()
        if percent < 100 and now - last_write < PROGRESS_INTERVAL:
            return
        last_write = now
        await Video.filter(id=video.id).update(progress=percent, heartbeat_at=datetime.now(UTC))

    assert video.source_key is not None
    async with ctx.backends.storage.open_local(video.source_key) as source:
        info = await probe(source, ctx.settings.uploads.ffprobe)

        async def run(with_transcoder: Transcoder) -> TranscodeResult:
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
                on_progress=on_progress,
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
    storage: StorageBackend, files: list[tuple[str, Path]], concurrency: int
) -> None:
    """Store each (key, path), `concurrency` at a time; raise the first failure.

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
                await storage.put_file(key, path, content_type(path))
            except Exception as exc:
                failures.append(exc)
                return

    await asyncio.gather(*(uploader() for _ in range(max(1, min(concurrency, len(files))))))
    if failures:
        raise failures[0]


async def _store(
    ctx: JobContext, video: Video, result: TranscodeResult, tree: Path
) -> dict[str, str]:
    """Replace the video's stored HLS tree and renditions; return the row's new keys."""
    storage = ctx.backends.storage
    await storage.delete_prefix(keys.hls_prefix(video.id))
    files = [(keys.hls_key(video.id, p.relative_to(tree).as_posix()), p) for p in result.files]
    try:
        await put_files(storage, sorted(files), ctx.settings.storage.upload_concurrency)
    except Exception:
        # Half a tree plays for nobody; the next attempt starts from nothing anyway.
        with contextlib.suppress(Exception):
            await storage.delete_prefix(keys.hls_prefix(video.id))
        raise
    async with in_transaction():
        await Rendition.filter(video_id=video.id).delete()
        for output in result.variants:
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
        "poster_key": keys.hls_key(video.id, "poster.jpg"),
        "sprite_key": keys.hls_key(video.id, "sprite.jpg"),
        "thumbnails_key": keys.hls_key(video.id, "thumbnails.vtt"),
        "encoder": result.encoder,
    }
