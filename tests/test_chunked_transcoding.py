"""Chunked transcoding run for real: the video's job plans, chunk jobs run ffmpeg on
their ranges, the video's job joins; ffmpeg checks the joined stream end to end.

The jobs are run here one after the other, the queue being two lists (what a consumer
would run next); tests/faults/test_chunked_workers.py runs them on real workers.
Sources are 11 s with 2 s segments and 4 s chunks: three chunks, two joins.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from clients import bearer, register, upload_and_register
from clips import _AAC, _BASE, _X264, FFMPEG, FFPROBE, run

from clipsync.context import ClipSyncApp
from clipsync.media.encoders import cpu_profile
from clipsync.media.errors import TranscodeFailed
from clipsync.media.ladder import Rung
from clipsync.media.pipeline import transcode
from clipsync.media.probe import probe
from clipsync.models import ChunkStatus, Rendition, TranscodeChunk, Video, VideoStatus
from clipsync.services import chunk_jobs
from clipsync.services.transcoding import JobContext, TranscodeAttemptFailed, run_transcode

SECONDS = 11
LADDER = [{"height": 144, "bitrate": 150}, {"height": 240, "bitrate": 300}]
CHUNKED = {"ladder": LADDER, "segment_seconds": 2, "chunk_seconds": 4}


def _tone(seconds: float) -> list[str]:
    graph = (
        f"sine=frequency=440:sample_rate=44100:duration={seconds}[l];"
        f"sine=frequency=660:sample_rate=44100:duration={seconds}[r];[l][r]amerge=inputs=2"
    )
    return ["-f", "lavfi", "-i", graph]


def _video(size: str, rate: int | str, source: str = "testsrc2") -> list[str]:
    return ["-f", "lavfi", "-i", f"{source}=size={size}:rate={rate}:duration={SECONDS}"]


def make_long_clip(kind: str, folder: Path) -> Path:
    """The awkward sources of tests/clips.py, 11 s long (three chunks of 4 s)."""
    out = folder / f"{kind}.mp4"
    if out.exists():
        return out
    if kind == "landscape":
        run([*_BASE, *_video("640x360", 30), *_tone(SECONDS), *_X264, *_AAC, "-shortest", str(out)])
    elif kind == "ntsc":
        run([*_BASE, *_video("640x360", "30000/1001"), *_tone(SECONDS), *_X264, *_AAC,
             "-shortest", str(out)])  # fmt: skip
    elif kind == "vfr":
        run([*_BASE, *_video("320x180", 30), "-vf", r"select='lt(n\,30)+not(mod(n\,3))'",
             *_X264, "-fps_mode", "vfr", str(out)])  # fmt: skip
    elif kind == "rotated":
        plain = folder / "rotated-plain.mp4"
        graph = (
            f"color=red:size=320x360:rate=30:duration={SECONDS}[l];"
            f"color=blue:size=320x360:rate=30:duration={SECONDS}[r];[l][r]hstack"
        )
        run([*_BASE, "-f", "lavfi", "-i", graph, *_tone(SECONDS), *_X264, *_AAC, "-shortest",
             str(plain)])  # fmt: skip
        run([*_BASE, "-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(out)])
    elif kind == "odd":
        run([*_BASE, *_video("1279x719", 10, "testsrc"), *_tone(SECONDS), "-c:v", "libx264",
             "-preset", "ultrafast", "-pix_fmt", "yuv444p", *_AAC, "-shortest",
             str(out)])  # fmt: skip
    elif kind == "hevc10":
        run([*_BASE, *_video("640x360", 24), "-c:v", "libx265", "-preset", "ultrafast",
             "-pix_fmt", "yuv420p10le", "-x265-params", "log-level=error", "-tag:v", "hvc1",
             str(out)])  # fmt: skip
    elif kind == "no_audio":
        run([*_BASE, *_video("640x360", 25), *_X264, str(out)])
    else:
        raise ValueError(kind)
    return out


@pytest.fixture(scope="module")
def long_clips(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("long-clips")
    return lambda kind: make_long_clip(kind, folder)


@pytest.fixture
async def chunked_app(
    start_app, make_settings, migrated_sqlite: Path
) -> tuple[ClipSyncApp, httpx.AsyncClient]:
    settings = make_settings(transcoder=CHUNKED)
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    return await start_app(settings)


class Queue:
    """What `register_tasks` would queue, kept in lists for the test to run."""

    def __init__(self) -> None:
        self.videos: list[str] = []
        self.chunks: list[tuple[str, str, int]] = []

    def transcode(self, video_id: object) -> None:
        self.videos.append(str(video_id))

    def chunk(self, video_id: str, plan: str, index: int, delay: float = 0.0) -> None:
        self.chunks.append((video_id, plan, index))


def job_context(app: ClipSyncApp, queue: Queue, consumer: str = "worker-a") -> JobContext:
    return JobContext(
        app.ctx.settings,
        app.ctx.plugins,
        app.ctx.backends,
        consumer_id=consumer,
        enqueue_transcode=queue.transcode,
        enqueue_chunk=queue.chunk,
    )


async def registered(client: httpx.AsyncClient, clip: Path, email: str) -> tuple[str, str]:
    token = (await register(client, email))["token"]
    response = await upload_and_register(client, token, clip)
    assert response.status_code == 201, response.text
    return response.json()["video"]["id"], token


async def run_everything(ctx: JobContext, queue: Queue) -> None:
    """Run queued jobs until none is left, as one worker would."""
    while queue.videos or queue.chunks:
        if queue.chunks:
            video_id, plan, index = queue.chunks.pop(0)
            await chunk_jobs.run_chunk(ctx, video_id, plan, index, final_attempt=True)
        else:
            await run_transcode(ctx, queue.videos.pop(0), final_attempt=True)


def ffprobe_json(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [FFPROBE, "-v", "error", "-of", "json", *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def frame_times(playlist: Path) -> list[int]:
    """Presentation times of every video packet (in the stream's ticks), sorted."""
    data = ffprobe_json("-select_streams", "v", "-show_entries", "packet=pts", str(playlist))
    return sorted(int(p["pts"]) for p in data["packets"])


def audio_times(playlist: Path) -> list[int]:
    data = ffprobe_json("-select_streams", "a", "-show_entries", "packet=pts", str(playlist))
    return [int(p["pts"]) for p in data["packets"]]


def decode_errors(master: Path) -> str:
    done = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(master), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stderr.strip() if done.returncode == 0 else f"exit {done.returncode}: {done.stderr}"


async def one_process(clip: Path, out: Path) -> Path:
    """The same source made by one ffmpeg run, as `transcode_video` does unchunked."""
    info = await probe(clip, "ffprobe")
    await transcode(
        clip, info, out, ffmpeg=FFMPEG, profile=cpu_profile(),
        rungs=[Rung(r["height"], r["bitrate"]) for r in LADDER], segment_seconds=2,
    )  # fmt: skip
    return out


KINDS = ["landscape", "vfr", "rotated", "no_audio", "odd", "hevc10", "ntsc"]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_chunked_video_plays_end_to_end_like_the_one_process_output(
    chunked_app, long_clips, kind: str, tmp_path: Path
) -> None:
    app, client = chunked_app
    clip = long_clips(kind)
    video_id, token = await registered(client, clip, f"{kind}@example.org")
    queue = Queue()
    ctx = job_context(app, queue)

    await run_transcode(ctx, video_id, final_attempt=True)  # plans: three chunks queued
    assert [index for _, _, index in queue.chunks] == [0, 1, 2]
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.PROCESSING and video.worker_lease.startswith("chunks:")
    await run_everything(ctx, queue)

    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.READY, video.error
    assert video.progress == 100 and video.worker_lease is None and video.attempts == 1
    assert await TranscodeChunk.filter(video_id=video_id, status=ChunkStatus.JOINED).count() == 3
    answer = await client.get(f"/api/videos/{video_id}", headers=bearer(token))
    assert answer.json()["video"]["chunks"] == 3

    tree = app.ctx.backends.storage.path(f"videos/{video_id}/hls")
    assert decode_errors(tree / "master.m3u8") == ""
    reference = await one_process(clip, tmp_path / "one")
    for rendition in await Rendition.filter(video_id=video_id):
        joined = frame_times(tree / rendition.name / "index.m3u8")
        alone = frame_times(reference / rendition.name / "index.m3u8")
        # The same frames at the same instants: no gap, no overlap at the joins.
        assert joined == alone, rendition.name
        steps = {b - a for a, b in itertools.pairwise(joined)}
        assert len(steps) == 1, f"{rendition.name}: frames {sorted(steps)} apart"
        # One init segment for the whole rendition, the one a single run makes.
        text = (tree / rendition.name / "index.m3u8").read_text()
        assert text.count("#EXT-X-MAP") == 1 and "DISCONTINUITY" not in text
        init = (tree / rendition.name / "init.mp4").read_bytes()
        assert init == (reference / rendition.name / "init.mp4").read_bytes()
    if (reference / "audio").is_dir():
        # One continuous encode: an AAC frame (1024 samples) after another, no gap.
        joined_audio = audio_times(tree / "audio" / "index.m3u8")
        assert {b - a for a, b in itertools.pairwise(joined_audio)} == {1024}
        assert joined_audio == audio_times(reference / "audio" / "index.m3u8")
    else:
        assert not (tree / "audio").exists()
    for path in ("poster.jpg", "sprite.jpg", "thumbnails.vtt", "candidates/6.jpg"):
        assert (tree / path).is_file(), path
    assert not (tree / "parts").exists()


async def test_a_failed_chunk_is_retried_alone(chunked_app, long_clips, monkeypatch) -> None:
    app, client = chunked_app
    video_id, _ = await registered(client, long_clips("landscape"), "retry@example.org")
    queue = Queue()
    ctx = job_context(app, queue)
    await run_transcode(ctx, video_id, final_attempt=True)
    real = chunk_jobs.transcode_chunk
    runs: list[int] = []

    async def fails_once(*args, span, **kwargs):
        runs.append(span.index)
        if span.index == 1 and runs.count(1) == 1:
            raise TranscodeFailed("The video could not be converted: the disk hiccuped.")
        return await real(*args, span=span, **kwargs)

    monkeypatch.setattr(chunk_jobs, "transcode_chunk", fails_once)
    first, failing, last = queue.chunks
    await chunk_jobs.run_chunk(ctx, *first, final_attempt=False)
    with pytest.raises(TranscodeAttemptFailed, match="part 2 of 3"):
        await chunk_jobs.run_chunk(ctx, *failing, final_attempt=False)
    chunk = await TranscodeChunk.get(video_id=video_id, index=1)
    assert chunk.status == ChunkStatus.PENDING and "disk hiccuped" in chunk.error
    await chunk_jobs.run_chunk(ctx, *last, final_attempt=False)
    await chunk_jobs.run_chunk(ctx, *failing, final_attempt=False)  # Huey's retry
    await run_everything(ctx, Queue() if not queue.videos else queue)
    assert runs == [0, 1, 2, 1]
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.READY
    attempts = await TranscodeChunk.filter(video_id=video_id).order_by("index")
    assert [c.attempts for c in attempts] == [1, 2, 1]


async def test_a_chunk_that_fails_for_good_fails_the_video_with_its_reason(
    chunked_app, long_clips, monkeypatch
) -> None:
    app, client = chunked_app
    video_id, _ = await registered(client, long_clips("landscape"), "fail@example.org")
    queue = Queue()
    ctx = job_context(app, queue)
    await run_transcode(ctx, video_id, final_attempt=True)

    async def broken(*args, span, **kwargs):
        raise TranscodeFailed("The video could not be converted: the file is damaged.")

    monkeypatch.setattr(chunk_jobs, "transcode_chunk", broken)
    await chunk_jobs.run_chunk(ctx, *queue.chunks[2], final_attempt=True)
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.FAILED and video.worker_lease is None
    assert video.error == "Transcoding failed: part 3 of 3 (0:08 to the end): the file is damaged."
    # The other chunks find their plan gone and do nothing.
    monkeypatch.undo()
    await chunk_jobs.run_chunk(ctx, *queue.chunks[0], final_attempt=True)
    assert (await TranscodeChunk.get(video_id=video_id, index=0)).status == ChunkStatus.PENDING
    assert queue.videos == []


async def test_the_reaper_queues_again_only_the_chunk_whose_worker_died(
    chunked_app, long_clips
) -> None:
    from datetime import UTC, datetime, timedelta

    app, client = chunked_app
    video_id, _ = await registered(client, long_clips("landscape"), "reap@example.org")
    queue = Queue()
    ctx = job_context(app, queue)
    await run_transcode(ctx, video_id, final_attempt=True)
    chunks = list(queue.chunks)
    queue.chunks.clear()
    await chunk_jobs.run_chunk(ctx, *chunks[0], final_attempt=True)
    # Chunk 1 was taken by a worker that died (its lease went unrenewed); chunk 2 waits
    # in the queue.
    old = datetime.now(UTC) - timedelta(hours=1)
    await TranscodeChunk.filter(video_id=video_id, index=1).update(
        status=ChunkStatus.RUNNING, worker_lease="dead-worker:1", heartbeat_at=old, attempts=1
    )
    await TranscodeChunk.filter(video_id=video_id, index=2).update(heartbeat_at=old)
    waiting = {chunk_jobs.chunk_key(*chunks[2])}
    assert await chunk_jobs.reap(ctx, lambda: waiting) == 1
    assert queue.chunks == [chunks[1]]
    # The video itself is left to its chunks, however long ago it was planned.
    from clipsync.services import reaper

    await Video.filter(id=video_id).update(heartbeat_at=old)
    assert await reaper.requeue_stalled(ctx, queue.transcode, set) == []
    queue.chunks.append(chunks[2])
    await run_everything(ctx, queue)
    assert (await Video.get(id=video_id)).status == VideoStatus.READY
    rows = await TranscodeChunk.filter(video_id=video_id).order_by("index")
    assert [r.attempts for r in rows] == [1, 2, 1]


async def test_a_worker_without_the_pinned_transcoder_hands_the_chunk_back(
    chunked_app, long_clips
) -> None:
    app, client = chunked_app
    video_id, _ = await registered(client, long_clips("landscape"), "pin@example.org")
    queue = Queue()
    ctx = job_context(app, queue)
    await run_transcode(ctx, video_id, final_attempt=True)
    await TranscodeChunk.filter(video_id=video_id).update(transcoder="nvenc")
    ctx.backends.selections["transcoder"]._alternatives["nvenc"] = None  # no GPU here
    first = queue.chunks.pop(0)
    await chunk_jobs.run_chunk(ctx, *first, final_attempt=True)
    chunk = await TranscodeChunk.get(video_id=video_id, index=0)
    assert chunk.status == ChunkStatus.PENDING and chunk.attempts == 0
    assert chunk.error == "Waiting for a worker with the nvenc transcoder."
    assert queue.chunks[-1] == first  # queued again, for a worker that has it


async def test_a_short_video_is_made_in_one_process(chunked_app, tmp_path: Path) -> None:
    app, client = chunked_app
    clip = tmp_path / "short.mp4"
    run(
        [*_BASE, "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=4", *_X264, str(clip)]
    )
    video_id, token = await registered(client, clip, "short@example.org")
    queue = Queue()
    await run_transcode(job_context(app, queue), video_id, final_attempt=True)
    assert queue.chunks == [] and (await Video.get(id=video_id)).status == VideoStatus.READY
    answer = await client.get(f"/api/videos/{video_id}", headers=bearer(token))
    assert answer.json()["video"]["chunks"] == 1


async def test_chunks_join_on_object_storage_with_no_shared_disk(
    start_app, make_settings, migrated_sqlite: Path, s3_server, long_clips, tmp_path: Path
) -> None:
    """Chunks store straight into the bucket; the join reads only from it (as on a
    host that made no chunk), leaves no parts behind, and the app serves the master."""
    import uuid

    bucket = f"chunks-{uuid.uuid4().hex[:12]}"
    settings = make_settings(
        storage={"backend": "s3", "upload_concurrency": 4},
        transcoder=CHUNKED,
        plugins={"storage_s3": s3_server.plugin_table(bucket=bucket, prefix="media")},
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite, settings.data_dir / "clipsync.sqlite3")
    app, client = await start_app(settings)
    video_id, token = await registered(client, long_clips("landscape"), "s3@example.org")
    queue = Queue()
    ctx = job_context(app, queue)
    await run_transcode(ctx, video_id, final_attempt=True)
    await run_everything(ctx, queue)
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.READY, video.error
    stored = await app.ctx.backends.storage.list(f"videos/{video_id}/hls")
    assert not [key for key in stored if "/parts/" in key]
    assert sum(key.endswith("/init.mp4") for key in stored) == 3  # 144p, 240p, audio
    scratch = settings.data_dir / "scratch"
    assert not scratch.exists() or not any(scratch.rglob("*.m4s"))
    master = await client.get(f"/hls/{video_id}/master.m3u8", headers=bearer(token))
    assert master.status_code == 200 and "240p/index.m3u8" in master.text


async def test_the_early_playlists_grow_by_each_chunk_done_in_order(
    chunked_app, long_clips, tmp_path: Path
) -> None:
    """Watching while it transcodes, chunked: chunks end in any order, but the EVENT
    playlists grow only over the chunks done from chunk 0 on, and what they list plays
    across the joins, before the join has run."""
    app, client = chunked_app
    video_id, token = await registered(client, long_clips("landscape"), "early@example.org")
    queue = Queue()
    ctx = job_context(app, queue)
    await run_transcode(ctx, video_id, final_attempt=True)
    tree = app.ctx.backends.storage.path(f"videos/{video_id}/hls")
    by_index = {index: (vid, plan, index) for vid, plan, index in queue.chunks}
    queue.chunks.clear()

    async def run_chunk(index: int) -> None:
        _, plan, _ = by_index[index]
        await chunk_jobs.run_chunk(ctx, video_id, plan, index, final_attempt=True)

    def listed(folder: str) -> list[str]:
        text = (tree / folder / "index.m3u8").read_text()
        assert "#EXT-X-PLAYLIST-TYPE:EVENT" in text and "#EXT-X-ENDLIST" not in text
        return [line for line in text.splitlines() if line.endswith(".m4s")]

    await run_chunk(2)  # the last chunk first: nothing to offer without chunk 0
    assert not (tree / "master.m3u8").exists()
    assert not (tree / "144p" / "index.m3u8").exists()

    await run_chunk(0)  # 0 and 2 done, 1 not: only chunk 0 (segments 0 and 1)
    assert (tree / "master.m3u8").is_file()
    for rendition in ("144p", "240p"):
        assert listed(rendition) == ["seg_00000.m4s", "seg_00001.m4s"], rendition
    whole_audio = listed("audio")
    assert len(whole_audio) == 6  # chunk 0 encodes the whole file's audio

    await run_chunk(1)  # every chunk done: the playlists list all six segments
    for rendition in ("144p", "240p"):
        assert listed(rendition) == [f"seg_{n:05d}.m4s" for n in range(6)], rendition
        for name in listed(rendition):
            assert (tree / rendition / name).is_file()
    # Plays across both joins, before the join: the frames of a one-process run. (An
    # EVENT playlist is live to ffmpeg, which would wait for more: a copy ends it.)
    ended = tmp_path / "early"
    shutil.copytree(tree, ended)
    for playlist in ended.glob("*/index.m3u8"):
        playlist.write_text(playlist.read_text() + "#EXT-X-ENDLIST\n")
    assert decode_errors(ended / "master.m3u8") == ""
    reference = await one_process(long_clips("landscape"), tmp_path / "one")
    early = frame_times(ended / "240p" / "index.m3u8")
    assert early == frame_times(reference / "240p" / "index.m3u8")
    answer = await client.get(f"/hls/{video_id}/240p/index.m3u8", headers=bearer(token))
    assert answer.status_code == 200 and answer.text.count(".m4s") == 6

    await run_everything(ctx, queue)  # the join, queued by the last chunk
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.READY, video.error
    assert "#EXT-X-ENDLIST" in (tree / "240p" / "index.m3u8").read_text()
