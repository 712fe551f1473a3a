"""Transcode metrics of a chunked transcode (issue 19): each chunk is one ffmpeg run
making every rendition of its range, so it is counted as one transcode run, as a
whole-video transcode is (clipsync/metrics.py, `transcoded`).

The jobs run here one after the other, as tests/test_chunked_transcoding.py runs them;
prometheus_client is in its one-process mode, so each test compares before and after.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from test_chunked_transcoding import (
    CHUNKED,
    Queue,
    job_context,
    make_long_clip,
    registered,
    run_everything,
)

from clipsync.models import TranscodeChunk, Video, VideoStatus
from clipsync.services.transcoding import run_transcode

ENCODER = {"encoder": "libx264"}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def snapshot() -> dict[str, float]:
    return {
        "runs": sample("clipsync_transcode_duration_seconds_count", **ENCODER),
        "speeds": sample("clipsync_transcode_realtime_factor_count", **ENCODER),
        "media": sample("clipsync_transcode_media_seconds_total", **ENCODER),
        "144p": sample("clipsync_transcode_rendition_seconds_total", rendition="144p", **ENCODER),
        "240p": sample("clipsync_transcode_rendition_seconds_total", rendition="240p", **ENCODER),
    }


@pytest.fixture
async def chunked_app(start_app, make_settings, migrated_sqlite: Path):
    settings = make_settings(transcoder=CHUNKED)
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    return await start_app(settings)


async def test_each_chunk_of_a_chunked_transcode_is_counted_as_one_transcode_run(
    chunked_app, tmp_path: Path
) -> None:
    app, client = chunked_app
    video_id, _ = await registered(
        client, make_long_clip("landscape", tmp_path), "metrics@example.org"
    )
    queue = Queue()
    ctx = job_context(app, queue)
    before = snapshot()
    await run_transcode(ctx, video_id, final_attempt=True)  # plans three chunks
    assert snapshot() == before  # planning encodes nothing
    await run_everything(ctx, queue)  # the chunks, then the join

    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.READY, video.error
    assert await TranscodeChunk.filter(video_id=video_id).count() == 3
    after = snapshot()
    # One run, and one speed, per chunk; the join encodes nothing and counts nothing.
    assert after["runs"] - before["runs"] == 3
    assert after["speeds"] - before["speeds"] == 3
    # The chunks' ranges add up to the video, counted once.
    assert after["media"] - before["media"] == pytest.approx(video.duration, abs=0.05)
    # Every rendition was made by every run: each counts the runs' wall time.
    assert after["144p"] - before["144p"] > 0
    assert after["144p"] - before["144p"] == pytest.approx(after["240p"] - before["240p"])
