"""A chunk whose worker dies every time is handed back by the reaper at most
`[transcoder] max_attempts` times in all; then its video fails with the chunk's
reason and its uploader is told, as for a video whose job kept dying (issue 19).

The jobs run here one after the other, as tests/test_chunked_transcoding.py runs them;
a worker "dies" by a BaseException that no handler in the job catches, leaving the
chunk RUNNING under its lease, as a killed process would.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_chunked_transcoding import CHUNKED, Queue, job_context, make_long_clip, registered

from clipsync.models import ChunkStatus, Notification, TranscodeChunk, Video, VideoStatus
from clipsync.services import chunk_jobs
from clipsync.services.transcoding import run_transcode


class WorkerKilled(BaseException):
    """The process running the chunk is gone (SIGKILL, out of memory): nothing cleans up."""


@pytest.fixture
async def chunked_app(start_app, make_settings, migrated_sqlite: Path):
    settings = make_settings(transcoder={**CHUNKED, "max_attempts": 3})
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    return await start_app(settings)


async def test_a_chunk_that_kills_its_worker_every_time_fails_the_video_after_max_attempts(
    chunked_app, tmp_path: Path, monkeypatch
) -> None:
    app, client = chunked_app
    video_id, _ = await registered(
        client, make_long_clip("landscape", tmp_path), "deadly@example.org"
    )
    queue = Queue()
    await run_transcode(job_context(app, queue), video_id, final_attempt=True)
    deadly = queue.chunks[1]
    queue.chunks.clear()
    runs: list[int] = []

    async def kills_its_worker(*args, span, **kwargs):
        runs.append(span.index)
        raise WorkerKilled()

    monkeypatch.setattr(chunk_jobs, "transcode_chunk", kills_its_worker)
    reaper = job_context(app, queue, consumer="reaper")
    handed_back = 0
    for worker in range(1, 10):  # far more than the cap: it must stop by itself
        ctx = job_context(app, queue, consumer=f"worker-{worker}")
        with contextlib.suppress(WorkerKilled):
            await chunk_jobs.run_chunk(ctx, *deadly, final_attempt=False)
        if (await Video.get(id=video_id)).status != VideoStatus.PROCESSING:
            break
        # The dead worker's lease goes unrenewed: the reaper hands the chunk back.
        old = datetime.now(UTC) - timedelta(hours=1)
        await TranscodeChunk.filter(video_id=video_id, index=1).update(heartbeat_at=old)
        requeued = await chunk_jobs.reap(reaper, set)
        handed_back += requeued
        assert requeued == 1 and queue.chunks.pop() == deadly

    assert runs == [1, 1, 1], "ffmpeg ran once per attempt, three attempts in all"
    assert handed_back == 3
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.FAILED and video.worker_lease is None
    assert video.error.startswith(
        "Transcoding failed: part 2 of 3 (0:04 to 0:08) was tried 3 times and no attempt "
        "finished (the worker running it stopped)."
    ), video.error
    chunk = await TranscodeChunk.get(video_id=video_id, index=1)
    assert chunk.status == ChunkStatus.FAILED and chunk.attempts == 3
    assert chunk.worker_lease is None and "was tried 3 times" in chunk.error
    # Nothing is handed back any more, and the uploader hears of it as of any failure.
    assert await chunk_jobs.reap(reaper, set) == 0 and queue.chunks == []
    told = await Notification.filter(user_id=video.owner_id).values_list("type", flat=True)
    assert "video.failed" in told
