"""The transcoding job and the reaper, run for real (ffmpeg, storage, database)."""

from __future__ import annotations

import base64
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from clients import bearer, register, upload_and_register
from clips import make_clip

from clipsync.context import ClipSyncApp
from clipsync.models import Rendition, Video, VideoStatus
from clipsync.services import reaper
from clipsync.services.transcoding import JobContext, TranscodeAttemptFailed, claim, run_transcode

SMALL_LADDER = {"ladder": [{"height": 144, "bitrate": 150}, {"height": 240, "bitrate": 300}]}


@pytest.fixture
async def small_app(
    start_app, make_settings, migrated_sqlite: Path
) -> tuple[ClipSyncApp, httpx.AsyncClient]:
    settings = make_settings(transcoder=SMALL_LADDER)
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    return await start_app(settings)


def job_context(app: ClipSyncApp) -> JobContext:
    return JobContext(app.ctx.settings, app.ctx.plugins, app.ctx.backends)


async def registered(client: httpx.AsyncClient, kind: str = "landscape") -> tuple[str, str]:
    token = (await register(client, f"{kind}@example.org"))["token"]
    response = await upload_and_register(client, token, make_clip(kind))
    assert response.status_code == 201, response.text
    return response.json()["video"]["id"], token


async def test_hook_video_ready_after_a_job_makes_renditions_poster_and_sprite(small_app) -> None:
    app, client = small_app
    events = []

    class Observer:
        from clipsync import hookimpl

        @hookimpl
        def video_ready(self, video):
            events.append(("ready", str(video.id)))

        @hookimpl
        def video_status_changed(self, video, old, new):
            events.append((old, new))

    video_id, token = await registered(client)
    app.ctx.plugins.pm.register(Observer(), name="observer")
    try:
        await run_transcode(job_context(app), video_id, final_attempt=True)
    finally:
        app.ctx.plugins.pm.unregister(name="observer")

    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.READY and video.progress == 100
    assert video.error is None and video.worker_lease is None
    assert video.encoder and "libx264" in video.encoder
    assert events == [("PROCESSING", "READY"), ("ready", video_id)]
    renditions = await Rendition.filter(video_id=video_id).order_by("height")
    assert [(r.width, r.height) for r in renditions] == [(256, 144), (426, 240)] or [
        r.height for r in renditions
    ] == [144, 240]
    assert all(
        r.codecs.startswith("avc1.") and r.bitrate >= r.average_bitrate > 0 for r in renditions
    )

    master = await client.get(f"/hls/{video_id}/master.m3u8", headers=bearer(token))
    assert master.status_code == 200
    text = master.text
    for attribute in (
        "BANDWIDTH=",
        "AVERAGE-BANDWIDTH=",
        "RESOLUTION=",
        'CODECS="avc1.',
        'AUDIO="aud"',
    ):
        assert attribute in text
    for path in ("poster.jpg", "sprite.jpg", "thumbnails.vtt", "audio/index.m3u8"):
        assert (
            await client.get(f"/hls/{video_id}/{path}", headers=bearer(token))
        ).status_code == 200
    scratch = app.ctx.settings.data_dir / "scratch" / video_id
    assert not scratch.exists()


async def test_the_job_is_idempotent(small_app) -> None:
    app, client = small_app
    video_id, _ = await registered(client)
    await run_transcode(job_context(app), video_id, final_attempt=True)
    first = await Video.get(id=video_id)
    await run_transcode(job_context(app), video_id, final_attempt=True)
    again = await Video.get(id=video_id)
    assert again.status == VideoStatus.READY and again.attempts == first.attempts == 1


async def test_a_failed_attempt_is_retried_and_the_last_one_marks_failed(small_app) -> None:
    app, client = small_app
    video_id, _ = await registered(client)
    video = await Video.get(id=video_id)
    # The source goes bad after it was accepted (a disk error, a truncated copy).
    app.ctx.backends.storage.path(video.source_key).write_bytes(b"\x00" * 5000)

    with pytest.raises(TranscodeAttemptFailed):
        await run_transcode(job_context(app), video_id, final_attempt=False)
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.PROCESSING
    assert video.error.startswith("Attempt 1 failed") and video.worker_lease is None

    await run_transcode(job_context(app), video_id, final_attempt=True)
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.FAILED and video.attempts == 2
    assert video.error.startswith("Transcoding failed:") and "server log" not in video.error


async def test_a_live_lease_keeps_a_second_job_away_and_a_stale_one_does_not(small_app) -> None:
    app, client = small_app
    ctx = job_context(app)
    video_id, _ = await registered(client)
    assert await claim(ctx, video_id) is not None
    assert await claim(ctx, video_id) is None  # a job is working on it
    await Video.filter(id=video_id).update(heartbeat_at=datetime.now(UTC) - timedelta(hours=1))
    assert await claim(ctx, video_id) is not None  # that job died


async def test_the_reaper_requeues_videos_whose_job_died(small_app) -> None:
    app, client = small_app
    ctx = job_context(app)
    stalled_id, _ = await registered(client, "landscape")
    waiting_id, _ = await registered(client, "portrait")
    await claim(ctx, stalled_id)
    old = datetime.now(UTC) - timedelta(hours=1)
    await Video.filter(id__in=[stalled_id, waiting_id]).update(heartbeat_at=old)
    queued = []
    requeued = await reaper.requeue_stalled(ctx, queued.append, lambda: {waiting_id})
    assert [str(v) for v in requeued] == [stalled_id] and [str(v) for v in queued] == [stalled_id]


async def test_the_reaper_leaves_running_jobs_alone(small_app) -> None:
    app, client = small_app
    ctx = job_context(app)
    video_id, _ = await registered(client)
    await claim(ctx, video_id)
    assert await reaper.requeue_stalled(ctx, lambda v: None, set) == []


async def test_the_reaper_deletes_abandoned_uploads(small_app, tmp_path: Path) -> None:
    app, client = small_app
    token = (await register(client, "a@example.org"))["token"]
    with make_clip("landscape").open("rb") as fh:
        uploaded = await client.post(
            "/api/videos/upload-local",
            files={"file": ("a.mp4", fh, "video/mp4")},
            headers=bearer(token),
        )
    video = await Video.get(id=uploaded.json()["videoId"])
    source = app.ctx.backends.storage.path(video.source_key)
    assert await reaper.delete_abandoned_uploads(job_context(app)) == 0
    await Video.filter(id=video.id).update(created_at=datetime.now(UTC) - timedelta(days=2))
    assert await reaper.delete_abandoned_uploads(job_context(app)) == 1
    assert not source.exists() and not await Video.exists(id=video.id)


async def test_the_reaper_deletes_folders_left_by_stopped_processes(small_app) -> None:
    app, client = small_app
    settings = app.ctx.settings
    video_id, token = await registered(client)  # PROCESSING: its job may be running
    created = await client.post(
        "/api/uploads/",
        headers={
            **bearer(token),
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "10",
            "Upload-Metadata": "filename " + base64.b64encode(b"a.mp4").decode(),
        },
    )
    assert created.status_code == 201, created.text
    upload_id = created.headers["location"].rsplit("/", 1)[1]

    scratch = settings.data_dir / "scratch"
    staging = settings.data_dir / settings.uploads.resumable_dir
    working = scratch / video_id
    dead_job = scratch / str(uuid.uuid4())
    pending = staging / upload_id
    orphan = staging / str(uuid.uuid4())
    fresh_orphan = staging / str(uuid.uuid4())
    for folder in (working, dead_job, pending, orphan, fresh_orphan):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "bytes").write_bytes(b"x")
    hours_ago = time.time() - 2 * 3600
    for folder in (working, dead_job, pending, orphan):
        os.utime(folder, (hours_ago, hours_ago))

    assert await reaper.delete_leftovers(job_context(app)) == 2
    assert working.is_dir() and pending.is_dir() and fresh_orphan.is_dir()
    assert not dead_job.exists() and not orphan.exists()


def test_uploads_are_not_abandoned_while_their_upload_url_is_valid(make_settings) -> None:
    def waits(**tables) -> float:
        cutoff = reaper.abandoned_before(make_settings(**tables))
        return (datetime.now(UTC) - cutoff).total_seconds()

    assert waits(uploads={"abandoned_after_hours": 24}) == pytest.approx(24 * 3600, abs=5)
    # A direct-upload URL valid for two days keeps its row for two days (and a margin).
    longer = waits(uploads={"abandoned_after_hours": 24}, storage={"upload_url_seconds": 172800})
    assert longer == pytest.approx(2 * 86400 + 300, abs=5)


async def test_a_video_rejected_while_it_transcodes_stays_rejected(small_app, monkeypatch) -> None:
    """A moderator's decision made during the job is never overwritten by the job."""
    from clipsync.services import transcoding

    app, client = small_app
    video_id, _ = await registered(client)
    admin = await app.ctx.accounts.create_user(
        "admin@example.org", "correct horse battery", role="admin"
    )
    store = transcoding._store

    async def reject_first(ctx, video, result, tree):
        # The moderator acts at the moment the job is storing its renditions.
        await app.ctx.moderation.reject(admin, video.id, "Not for us", True)
        return await store(ctx, video, result, tree)

    monkeypatch.setattr(transcoding, "_store", reject_first)
    await run_transcode(job_context(app), video_id, final_attempt=True)
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.REJECTED and video.moderation_reason == "Not for us"
    assert await app.ctx.backends.storage.list(f"videos/{video_id}") == []
