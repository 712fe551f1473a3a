"""Transcoding jobs on object storage, against moto's S3 server with signatures enforced."""

from __future__ import annotations

import asyncio
import io
import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from clients import PASSWORD, bearer, register, upload_and_register
from clips import make_clip
from services import S3Server

from clipsync.context import ClipSyncApp
from clipsync.models import Rendition, Role, Video, VideoStatus
from clipsync.services.transcoding import JobContext, TranscodeAttemptFailed, run_transcode

SMALL_LADDER = {"ladder": [{"height": 144, "bitrate": 150}, {"height": 240, "bitrate": 300}]}


@pytest.fixture
async def site(
    start_app: Any, make_settings: Any, migrated_sqlite: Path, s3_server: S3Server
) -> tuple[ClipSyncApp, httpx.AsyncClient, str]:
    bucket = f"jobs-{uuid.uuid4().hex[:12]}"
    settings = make_settings(
        storage={"backend": "s3", "upload_concurrency": 4},
        transcoder=SMALL_LADDER,
        plugins={"storage_s3": s3_server.plugin_table(bucket=bucket, prefix="media")},
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite, settings.data_dir / "clipsync.sqlite3")
    app, client = await start_app(settings)
    return app, client, bucket


def job_context(app: ClipSyncApp) -> JobContext:
    return JobContext(app.ctx.settings, app.ctx.plugins, app.ctx.backends)


def objects(app: ClipSyncApp, bucket: str, prefix: str) -> list[str]:
    client = app.ctx.backends.storage.client
    return sorted(o.object_name for o in client.list_objects(bucket, prefix=prefix, recursive=True))


def scratch_files(app: ClipSyncApp) -> list[Path]:
    scratch = app.ctx.settings.data_dir / "scratch"
    return sorted(scratch.rglob("*")) if scratch.exists() else []


async def registered(client: httpx.AsyncClient, email: str = "up@example.org") -> tuple[str, str]:
    token = (await register(client, email))["token"]
    response = await upload_and_register(client, token, make_clip("landscape"))
    assert response.status_code == 201, response.text
    return response.json()["video"]["id"], token


async def test_a_job_stores_the_tree_in_the_bucket_in_parallel(site, monkeypatch) -> None:
    app, client, bucket = site
    video_id, token = await registered(client)
    storage = app.ctx.backends.storage
    running = 0
    most = 0
    put_file = storage.put_file

    async def counting_put_file(*args: Any, **kwargs: Any) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await put_file(*args, **kwargs)
        finally:
            running -= 1

    monkeypatch.setattr(storage, "put_file", counting_put_file)
    await run_transcode(job_context(app), video_id, final_attempt=True)

    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.READY, video.error
    assert 1 < most <= 4, f"{most} files were stored at once; [storage] upload_concurrency = 4"
    stored = objects(app, bucket, f"media/videos/{video_id}/hls/")
    # Every key the row and its renditions record names an object in the bucket.
    recorded = [video.hls_key, video.poster_key, video.sprite_key, video.thumbnails_key]
    recorded += [r.playlist_key for r in await Rendition.filter(video_id=video_id)]
    assert len(recorded) == 6
    for key in recorded:
        assert f"media/{key}" in stored
    assert sum(name.endswith(".m4s") for name in stored) >= 3
    assert scratch_files(app) == []
    playlist = await client.get(f"/hls/{video_id}/master.m3u8", headers=bearer(token))
    assert playlist.status_code == 200


async def test_a_failing_job_leaves_no_scratch_files(site, monkeypatch) -> None:
    app, client, bucket = site
    video_id, _ = await registered(client)
    storage = app.ctx.backends.storage
    put_file = storage.put_file
    seen: list[Path] = []

    async def failing_put_file(key: str, path: Path, content_type: str | None = None) -> None:
        seen.append(path)
        if len(seen) == 5:
            raise OSError("the store went away")
        await asyncio.sleep(0.05)  # others are still uploading when this one fails
        await put_file(key, path, content_type)

    # 1. The upload of the tree fails half-way: nothing of it stays, in scratch or the bucket.
    monkeypatch.setattr(storage, "put_file", failing_put_file)
    with pytest.raises(TranscodeAttemptFailed):
        await run_transcode(job_context(app), video_id, final_attempt=False)
    assert seen and all(path.is_relative_to(app.ctx.settings.data_dir / "scratch") for path in seen)
    assert scratch_files(app) == []
    assert objects(app, bucket, f"media/videos/{video_id}/hls/") == []
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.PROCESSING and video.error.startswith("Attempt 1 failed")
    monkeypatch.undo()

    # 2. The source turns out bad once downloaded: ffmpeg's failure cleans up too.
    source = f"media/{video.source_key}"
    garbage = b"\x00" * 5000
    storage.client.put_object(bucket, source, io.BytesIO(garbage), len(garbage))
    await run_transcode(job_context(app), video_id, final_attempt=True)
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.FAILED
    assert scratch_files(app) == []


async def test_reject_with_delete_files_removes_the_objects(site) -> None:
    app, client, bucket = site
    video_id, _ = await registered(client)
    await run_transcode(job_context(app), video_id, final_attempt=True)
    other_id, _ = await registered(client, "other@example.org")
    before = objects(app, bucket, f"media/videos/{video_id}/")
    assert f"media/videos/{video_id}/source.mp4" in before and len(before) > 10

    admin = await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    token = app.ctx.accounts.start_session(admin).token
    response = await client.post(
        f"/api/admin/videos/{video_id}/reject",
        json={"reason": "Not for us", "deleteFiles": True},
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text
    assert objects(app, bucket, f"media/videos/{video_id}/") == []
    assert objects(app, bucket, f"media/videos/{other_id}/"), "other videos are left alone"
    row = await Video.get(id=video_id)
    assert row.status == VideoStatus.REJECTED and row.source_key is None
