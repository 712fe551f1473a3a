"""Deleting a video while its transcode runs stops the job and leaves no file behind, on
local storage and on S3: the job notices at its next progress write (ffmpeg is killed
then), or at its consumer's lease heartbeat while it uploads (the uploads under way end,
then whatever they stored is swept)."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from clips import _BASE, _X264, _tone, _video, run
from test_library import _runs_ffmpeg_on
from transcoded_videos import Site, make_site, site_settings

from clipsync.models import AuditEntry, Video
from clipsync.services.transcoding import JobContext, renew_leases, run_transcode
from clipsync.storage import keys


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five minutes: its transcode takes far longer than the job takes to stop."""
    out = tmp_path_factory.mktemp("clips") / "long.mp4"
    run([*_BASE, *_video("640x360", 25, 300), *_tone(300), *_X264, "-shortest", str(out)])
    return out


@pytest.fixture
async def local_site(start_app, make_settings, migrated_sqlite: Path) -> Site:
    return await make_site(start_app, site_settings(make_settings, migrated_sqlite))


@pytest.fixture
async def s3_site(s3_server, start_app, make_settings, migrated_sqlite: Path) -> Site:
    from test_storage_s3 import new_bucket

    settings = site_settings(
        make_settings,
        migrated_sqlite,
        storage={"backend": "s3"},
        plugins={"storage_s3": s3_server.plugin_table(bucket=new_bucket(), prefix="media")},
    )
    return await make_site(start_app, settings)


async def ffmpeg_at_work(site: Site, video_id: str, job: asyncio.Task[Any]) -> list[Path]:
    """Wait until ffmpeg writes segments for the video; its processes."""
    scratch = site.app.ctx.settings.data_dir / "scratch" / video_id
    for _ in range(600):
        if job.done() or list(scratch.glob("hls/**/*.m4s")):
            break
        await asyncio.sleep(0.05)
    assert not job.done(), "the transcode ended before it could be deleted"
    processes = [p for p in Path("/proc").glob("[0-9]*") if _runs_ffmpeg_on(p, video_id)]
    assert processes, "no ffmpeg process works on the video"
    return processes


async def delete_mid_run(site: Site, long_clip: Path) -> None:
    video_id = await site.upload(long_clip)
    ctx = site.job_context()
    job = asyncio.create_task(run_transcode(ctx, video_id, final_attempt=False))
    processes = await ffmpeg_at_work(site, video_id, job)

    deleted = await site.client.delete(f"/api/videos/{video_id}", headers=site.auth("uploader"))
    assert deleted.status_code == 204
    # No heartbeat here: the job's own next progress write (each second) finds the row
    # gone, and it ends quietly: nothing to retry.
    await asyncio.wait_for(job, 5)
    for process in processes:
        assert not _runs_ffmpeg_on(process, video_id), "ffmpeg still runs"
    assert video_id not in ctx.running
    assert not (site.app.ctx.settings.data_dir / "scratch" / video_id).exists()
    assert await site.stored(video_id) == []
    assert not await Video.exists(id=video_id)
    assert (await AuditEntry.get(action="owner_delete")).details["status"] == "PROCESSING"


async def test_deleting_stops_ffmpeg_and_leaves_nothing_on_local_storage(
    local_site: Site, long_clip: Path
) -> None:
    await delete_mid_run(local_site, long_clip)
    root = local_site.app.ctx.backends.storage.root
    assert [p for p in (root / "videos").iterdir()] == []


async def test_deleting_stops_ffmpeg_and_leaves_nothing_on_s3(
    s3_site: Site, long_clip: Path
) -> None:
    await delete_mid_run(s3_site, long_clip)
    storage = s3_site.app.ctx.backends.storage
    objects = storage.client.list_objects(storage.bucket, prefix="media/", recursive=True)
    assert [o.object_name for o in objects] == []


class DeletedWhileStoring:
    """S3 storage whose uploads are slow, and run on threads the way the plugin's do (a
    cancelled task does not stop them); the video is deleted, then the consumer's
    heartbeat runs, while the job stores its first files."""

    def __init__(self, storage: Any, on_first: Any) -> None:
        self.storage = storage
        self.on_first = on_first
        self.finished: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)

    async def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        if self.on_first is not None:
            on_first, self.on_first = self.on_first, None
            asyncio.get_running_loop().create_task(on_first())
        storage = self.storage

        def upload() -> None:
            data = path.read_bytes()  # a real upload has the file open from its start
            time.sleep(0.2)
            name = storage.object_name(key)
            storage.client.put_object(storage.bucket, name, io.BytesIO(data), len(data))
            self.finished.append(key)

        await asyncio.to_thread(upload)


async def test_uploads_under_way_when_the_video_is_deleted_leave_nothing_on_s3(
    s3_site: Site,
) -> None:
    from clips import make_clip

    site = s3_site
    video_id = await site.upload(make_clip("landscape"))
    storage = site.app.ctx.backends.storage
    ctx: JobContext

    async def delete_then_heartbeat() -> None:
        answer = await site.client.delete(f"/api/videos/{video_id}", headers=site.auth("uploader"))
        assert answer.status_code == 204
        await renew_leases(ctx)  # finds the row gone: cancels the job mid-upload

    slow = DeletedWhileStoring(storage, delete_then_heartbeat)
    backends = SimpleNamespace(
        storage=slow,
        transcoder=site.app.ctx.backends.transcoder,
        selections=site.app.ctx.backends.selections,
    )
    ctx = JobContext(site.app.ctx.settings, site.app.ctx.plugins, backends)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(run_transcode(ctx, video_id, final_attempt=False), 60)
    assert slow.finished, "no upload was under way when the job was stopped"
    await asyncio.sleep(0.5)  # anything still running on a thread would land by now
    objects = storage.client.list_objects(
        storage.bucket, prefix=storage.object_name(keys.video_prefix(video_id)), recursive=True
    )
    assert [o.object_name for o in objects] == []
