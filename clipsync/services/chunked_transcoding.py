"""Chunked transcoding: a long video cut into time ranges that idle workers share.

The video's own job (`transcoding.run_transcode`) decides (`plan_or_join`):

1. **Plan.** A source longer than `[transcoder] chunk_seconds` gets one
   `TranscodeChunk` row per chunk (`media.chunks.plan_chunks`), all pinned to the
   transcoder of the worker that planned (its name), and one `transcode_chunk` task
   each. The video's lease becomes `chunks:<plan>`: no video job claims it and the
   reaper leaves it to the chunks. The planning job ends; the video stays PROCESSING.
2. **Chunks** (`chunk_jobs.run_chunk`, on any worker): each takes a lease on its row, runs one
   ffmpeg (`media.chunk_pipeline`), stores its segments and picked frames straight
   under the video's HLS tree, writes what it made into its row and marks it DONE.
   Progress sums the chunks (weighted by length) into the video's `progress`. A
   failed chunk is retried alone (Huey retries the task); one that fails for good
   fails the video with the chunk's reason. The chunk that finds every chunk DONE
   releases the video's lease and queues the video's job again.
3. **Join.** That job finds the plan done and joins it (`_join`): one playlist per
   rendition over every chunk's segments (no re-encoding: `media.chunks`), the
   audio's, the master, the sprite from the tiles, the renditions' rows; the
   video becomes READY as after a one-process transcode.

**Transcoders are not mixed.** NVENC and libx264 make different streams (codec
parameters, init segments), which one playlist cannot switch between mid-rendition, so
every chunk uses the planner's transcoder: on a worker whose own is another, the one
of that name if it works there too (a GPU host can run the CPU transcoder), else the
chunk goes back to the queue for `[transcoder] retry_delay_seconds`, unclaimed, for a
worker that has it (the row's error says what it waits for). A chunk that fails on a
GPU is retried on the GPU; falling back to the CPU is for one-process transcodes.

State lives in the database (the rows), never in a worker: a chunk whose worker died
is queued again by the reaper (`chunk_jobs.reap`) when its lease goes stale or its
consumer is seen dead, and only that chunk is redone.
"""

from __future__ import annotations

import asyncio
import io
import logging
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image
from tortoise.transactions import in_transaction

from clipsync import cache
from clipsync.media.chunk_pipeline import AUDIO_FOLDER, FIRST_FRAME, PARTS, thumbnail_part
from clipsync.media.chunks import (
    ChunkOutputs,
    ChunksDisagree,
    ChunkSpan,
    joined_bitrates,
    joined_playlist,
    plan_chunks,
)
from clipsync.media.commands import SpriteLayout, sprite_layout
from clipsync.media.errors import TranscodeFailed
from clipsync.media.playlists import (
    AUDIO_CODEC,
    AudioOutput,
    RenditionOutput,
    master_playlist,
    thumbnails_vtt,
)
from clipsync.models import ChunkStatus, TranscodeChunk, Video, VideoStatus
from clipsync.services.transcoding import (
    CHUNKS_LEASE,
    JobContext,
    clear_transcoded,
    put_files,
    record_renditions,
)
from clipsync.storage import keys

log = logging.getLogger(__name__)

# The sheet is made as `pipeline.transcode` makes it: 10 tiles a row, 160 pixels wide.
SPRITE_COLUMNS = 10
SPRITE_TILE_WIDTH = 160
SPRITE_QUALITY = 85


@dataclass(frozen=True)
class Step:
    """What `plan_or_join` did: handed the video over to its chunks, or joined them
    (`stored`: the video row's new keys, as `transcoding._store` returns them)."""

    handed_over: bool = False
    stored: dict[str, str] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC)


# --- the video's job: plan or join ------------------------------------------------------


async def plan_or_join(ctx: JobContext, video: Video) -> Step | None:
    """Plan the video's chunks, or join them once all are done; None: one process.

    Called by the video's job once it holds the video's lease. Without a queue to fan
    out to (a job run outside a consumer), videos are made in one process.
    """
    if ctx.enqueue_chunk is None or ctx.enqueue_transcode is None:
        return None
    rows = await TranscodeChunk.filter(video_id=video.id).order_by("index")
    plans = {row.plan for row in rows}
    if (
        rows
        and len(plans) == 1
        and all(row.status == ChunkStatus.DONE for row in rows)
        and rows[0].source_key == video.source_key
    ):
        return Step(stored=await _join(ctx, video, rows))
    settings = ctx.settings.transcoder
    spans = plan_chunks(video.duration or 0.0, settings.segment_seconds, settings.chunk_seconds)
    if not spans:
        if rows:
            await TranscodeChunk.filter(video_id=video.id).delete()  # one process now
        return None
    await _plan(ctx, video, spans)
    return Step(handed_over=True)


async def _plan(ctx: JobContext, video: Video, spans: list[ChunkSpan]) -> None:
    assert ctx.enqueue_chunk is not None and video.source_key is not None
    plan = uuid.uuid4().hex
    transcoder = ctx.backends.selections["transcoder"].chosen.name
    # Chunks store straight into the tree: what an earlier transcode stored goes first.
    await clear_transcoded(ctx.backends.storage, video.id)
    async with in_transaction():
        await TranscodeChunk.filter(video_id=video.id).delete()
        await TranscodeChunk.bulk_create(
            [
                TranscodeChunk(
                    video_id=video.id,
                    plan=plan,
                    index=span.index,
                    start=span.start,
                    end=span.end,
                    transcoder=transcoder,
                    source_key=video.source_key,
                    heartbeat_at=_now(),
                )
                for span in spans
            ]
        )
        handed = await Video.filter(
            id=video.id, status=VideoStatus.PROCESSING, worker_lease=video.worker_lease
        ).update(worker_lease=CHUNKS_LEASE + plan, heartbeat_at=_now(), progress=0)
        if not handed:
            # A moderator's decision or another job came first: nothing is planned.
            await TranscodeChunk.filter(video_id=video.id, plan=plan).delete()
            await cache.stale([cache.video_tag(video.id)])  # its cached chunk count
            log.info("transcode %s: the video changed before its chunks were planned", video.id)
            return
    log.info(
        "transcode %s: %d chunks of about %d s on the %s transcoder (plan %s)",
        video.id, len(spans), ctx.settings.transcoder.chunk_seconds, transcoder, plan,
    )  # fmt: skip
    for span in spans:
        try:
            await asyncio.to_thread(ctx.enqueue_chunk, str(video.id), plan, span.index, 0.0)
        except Exception as exc:
            # Left PENDING: the reaper queues it once the queue answers.
            log.warning("could not queue chunk %d of %s: %s", span.index, video.id, exc)


async def _join(ctx: JobContext, video: Video, rows: list[TranscodeChunk]) -> dict[str, str]:
    """Write the playlists, the master and the sprite over the stored chunks; return
    the video row's new keys."""
    outputs = [ChunkOutputs.from_json(row.outputs or "{}") for row in rows]
    first = outputs[0]
    files: dict[str, bytes] = {}
    try:
        for name in first.renditions:
            parts = [out.renditions[name] for out in outputs]
            files[f"{name}/index.m3u8"] = joined_playlist(parts).encode()
        renditions, audio = joined_renditions(outputs)
    except (ChunksDisagree, KeyError) as exc:
        raise TranscodeFailed(
            "The video could not be converted: its parts did not come out alike.",
            detail=f"{type(exc).__name__}: {exc}",
        ) from exc
    if audio is not None and first.audio_playlist is not None:  # both or neither
        files[f"{AUDIO_FOLDER}/index.m3u8"] = first.audio_playlist.encode()
    files["master.m3u8"] = master_playlist(renditions, audio).encode()
    assert video.duration and video.width and video.height
    layout = sprite_layout(
        video.duration,
        ctx.settings.transcoder.sprite_interval_seconds,
        SPRITE_COLUMNS,
        SPRITE_TILE_WIDTH,
        video.width / video.height,
    )
    tiles = {
        index: await _read(ctx, keys.hls_key(video.id, thumbnail_part(index)))
        for out in outputs
        for index in out.thumbnails
    }
    files["sprite.jpg"] = await asyncio.to_thread(_sheet, layout, tiles)
    files["thumbnails.vtt"] = thumbnails_vtt(layout, "sprite.jpg").encode()
    if not any(out.poster for out in outputs):
        # The video stream ended before the poster's frame: its first frame instead.
        files["poster.jpg"] = await _read(ctx, keys.hls_key(video.id, FIRST_FRAME))
    scratch = ctx.settings.data_dir / "scratch" / str(video.id) / "join"
    stored = [(keys.hls_key(video.id, relative), scratch / relative) for relative in files]
    await asyncio.to_thread(_write_all, scratch, files)
    try:
        await put_files(ctx.backends.storage, stored, ctx.settings.storage.upload_concurrency)
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)
    await ctx.backends.storage.delete_prefix(keys.hls_key(video.id, PARTS))
    await TranscodeChunk.filter(video_id=video.id, plan=rows[0].plan).update(
        status=ChunkStatus.JOINED
    )
    every_key = {key for key, _ in stored}
    every_key |= {keys.candidate_key(video.id, n) for out in outputs for n in out.candidates}
    log.info("transcode %s: its %d chunks joined", video.id, len(rows))
    label = f"{first.encoder} ({rows[0].transcoder})" if first.encoder else rows[0].transcoder
    return await record_renditions(video, renditions, every_key, label)


def joined_renditions(
    outputs: list[ChunkOutputs],
) -> tuple[list[RenditionOutput], AudioOutput | None]:
    """The master's entries for chunks' outputs joined in order (chunk 0 first): each
    rendition's size and codecs from chunk 0's init, its bitrates measured over the
    chunks' segments, and chunk 0's whole-file audio. Raises KeyError when a chunk
    lacks a rendition of chunk 0."""
    first = outputs[0]
    renditions = []
    for name, part in first.renditions.items():
        peak, average = joined_bitrates([out.renditions[name] for out in outputs])
        renditions.append(
            RenditionOutput(
                name=name,
                width=part.width,
                height=part.height,
                bandwidth=peak,
                average_bandwidth=average,
                codecs=part.codecs,
                frame_rate=first.frame_rate,
                playlist=f"{name}/index.m3u8",
            )
        )
    audio = None
    if first.audio is not None and first.audio_playlist is not None:
        peak, average = joined_bitrates([first.audio])
        audio = AudioOutput(AUDIO_FOLDER, peak, average, AUDIO_CODEC, f"{AUDIO_FOLDER}/index.m3u8")
    return renditions, audio


def _write_all(folder: Path, files: dict[str, bytes]) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    for relative, data in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


async def _read(ctx: JobContext, key: str) -> bytes:
    return b"".join([piece async for piece in ctx.backends.storage.read(key)])


def _sheet(layout: SpriteLayout, tiles: dict[int, bytes]) -> bytes:
    """The seek-preview sheet from the chunks' tiles; black where one is missing."""
    sheet = Image.new("RGB", (layout.width, layout.height))
    for index, data in tiles.items():
        if index >= layout.count:
            continue
        _, _, x, y = layout.cue(index)
        with Image.open(io.BytesIO(data)) as tile:
            size = (layout.tile_width, layout.tile_height)
            sheet.paste(tile.convert("RGB").resize(size), (x, y))
    out = io.BytesIO()
    sheet.save(out, "JPEG", quality=SPRITE_QUALITY)
    return out.getvalue()
