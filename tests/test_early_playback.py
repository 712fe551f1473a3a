"""Watch while it transcodes: while the job's ffmpeg runs, the store already holds an
EVENT playlist per rendition, the segments it names and a master, on local storage and
on S3; the finished tree is byte for byte what a transcode without early playback
stores, each segment stored once; only the uploader and moderators may fetch the
growing playlists (no-cache), everyone else gets a 404; a failed attempt leaves
nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from clips import _BASE, _X264, _tone, _video, run
from transcoded_videos import Site, make_site, site_settings

from clipsync.media.errors import TranscodeFailed
from clipsync.media.playlists import parse_media_playlist
from clipsync.models import Video, VideoStatus
from clipsync.services import early_playback, transcoding
from clipsync.storage import keys


@pytest.fixture(scope="module")
def minute_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minute of 640x360 with sound: its transcode lasts some seconds here."""
    out = tmp_path_factory.mktemp("clips") / "minute.mp4"
    run([*_BASE, *_video("640x360", 25, 60), *_tone(60), *_X264, "-shortest", str(out)])
    return out


def _settings(make_settings: Any, migrated_sqlite: Path, **tables: Any) -> Any:
    # Two-second segments and the slower preset: many segments, a job that lasts.
    tables["transcoder"] = {"segment_seconds": 2}
    tables["plugins"] = tables.get("plugins", {}) | {"transcoder_cpu": {"preset": "medium"}}
    return site_settings(make_settings, migrated_sqlite, **tables)


@pytest.fixture
async def local_site(start_app, make_settings, migrated_sqlite: Path) -> Site:
    return await make_site(start_app, _settings(make_settings, migrated_sqlite))


@pytest.fixture
async def s3_site(s3_server, start_app, make_settings, migrated_sqlite: Path) -> Site:
    from test_storage_s3 import new_bucket

    settings = _settings(
        make_settings,
        migrated_sqlite,
        storage={"backend": "s3"},
        plugins={"storage_s3": s3_server.plugin_table(bucket=new_bucket(), prefix="media")},
    )
    return await make_site(start_app, settings)


async def read(site: Site, video_id: str, relative: str) -> bytes:
    storage = site.app.ctx.backends.storage
    return b"".join([c async for c in storage.read(keys.hls_key(video_id, relative))])


async def tree(site: Site, video_id: str) -> dict[str, bytes]:
    """The video's stored HLS tree: path in the tree → bytes."""
    stored = await site.app.ctx.backends.storage.list(keys.hls_prefix(video_id))
    prefix = keys.hls_prefix(video_id) + "/"
    return {
        key.removeprefix(prefix): await read(site, video_id, key.removeprefix(prefix))
        for key in stored
    }


def count_stores(site: Site) -> Counter[str]:
    """Every key the storage is asked to store from now on, counted."""
    storage = site.app.ctx.backends.storage
    counts: Counter[str] = Counter()
    for name in ("put_file", "adopt_file", "put_stream"):
        original = getattr(storage, name, None)
        if original is None:
            continue

        def counted(key: str, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            counts[key] += 1
            return _original(key, *args, **kwargs)

        setattr(storage, name, counted)
    return counts


async def while_processing(site: Site, video_id: str, job: asyncio.Task[Any]) -> dict[str, Any]:
    """Wait for the early master in the store while the job runs; what the store holds."""
    storage = site.app.ctx.backends.storage
    for _ in range(1200):
        if job.done() or await storage.size(keys.hls_key(video_id, "master.m3u8")) is not None:
            break
        await asyncio.sleep(0.05)
    assert not job.done(), "the transcode ended before anything was offered"
    master = (await read(site, video_id, "master.m3u8")).decode()
    media = (await read(site, video_id, "144p/index.m3u8")).decode()
    listed = parse_media_playlist(media).segments
    sizes = [await storage.size(keys.hls_key(video_id, f"144p/{s.uri}")) for s in listed]
    row = await Video.get(id=video_id)
    return {
        "master": master,
        "media": media,
        "segments": listed,
        "sizes": sizes,
        "status": row.status,
    }


async def growing_then_as_today(
    site: Site, minute_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Today's tree: the same source transcoded with nothing following ffmpeg.
    plain_id = await site.upload(minute_clip)
    with monkeypatch.context() as patch:
        patch.setattr(early_playback.Publisher, "follow", property(lambda self: None))
        assert (await site.transcode(plain_id)).status == VideoStatus.READY
    expected = await tree(site, plain_id)

    # What this run's ffmpeg wrote, as `_store` gets it (x264 with threads and a rate
    # cap is not deterministic: two encodes differ in their bytes, never in their tree).
    written: dict[str, bytes] = {}
    real_store = transcoding._store

    async def snapshot(ctx: Any, video: Any, result: Any, folder: Path, *args: Any) -> Any:
        written.update({p.relative_to(folder).as_posix(): p.read_bytes() for p in result.files})
        return await real_store(ctx, video, result, folder, *args)

    monkeypatch.setattr(transcoding, "_store", snapshot)
    video_id = await site.upload(minute_clip)
    stores = count_stores(site)
    job = asyncio.create_task(
        transcoding.run_transcode(site.job_context(), video_id, final_attempt=True)
    )
    seen = await while_processing(site, video_id, job)
    assert seen["status"] == VideoStatus.PROCESSING
    assert "#EXT-X-STREAM-INF" in seen["master"] and 'URI="audio/index.m3u8"' in seen["master"]
    assert "144p/index.m3u8" in seen["master"] and "240p/index.m3u8" in seen["master"]
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in seen["media"]
    assert "#EXT-X-ENDLIST" not in seen["media"]
    assert seen["segments"], "the EVENT playlist lists no segment"
    assert all(size for size in seen["sizes"]), "a listed segment is not in the store"
    assert await site.app.ctx.backends.storage.size(keys.hls_key(video_id, "144p/init.mp4"))

    await asyncio.wait_for(job, 240)
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.READY, video.error
    finished = await tree(site, video_id)
    assert sorted(finished) == sorted(expected) == sorted(written)
    differing = [path for path in written if finished[path] != written[path]]
    assert differing == [], "the store holds other bytes than the transcode wrote"
    playlists = [p for p in expected if p.endswith("index.m3u8")]
    assert {p: finished[p] for p in playlists} == {p: expected[p] for p in playlists}
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in finished["144p/index.m3u8"].decode()
    segments = [key for key in stores if key.endswith((".m4s", "init.mp4"))]
    assert segments, "nothing was stored"
    assert [key for key in segments if stores[key] > 1] == [], "a segment was stored twice"


async def test_local_storage_offers_a_growing_tree_while_ffmpeg_runs_and_ends_as_today(
    local_site: Site, minute_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await growing_then_as_today(local_site, minute_clip, monkeypatch)


async def test_s3_offers_a_growing_tree_while_ffmpeg_runs_and_ends_as_today(
    s3_site: Site, minute_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await growing_then_as_today(s3_site, minute_clip, monkeypatch)


async def test_a_failed_transcode_leaves_no_early_file(
    local_site: Site, minute_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ffmpeg fails after the first segments were offered: none of them stays."""
    from clipsync.media import pipeline

    site = local_site
    video_id = await site.upload(minute_clip)
    real = pipeline.run_ffmpeg

    async def fails_midway(command: list[str], **kwargs: Any) -> None:
        task = asyncio.ensure_future(real(command, **kwargs))
        storage = site.app.ctx.backends.storage
        while await storage.size(keys.hls_key(video_id, "master.m3u8")) is None:
            assert not task.done()
            await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise TranscodeFailed("The video could not be converted: a test stopped it.")

    monkeypatch.setattr(pipeline, "run_ffmpeg", fails_midway)
    monkeypatch.setattr("clipsync.services.transcoding.fallback_transcoder", lambda ctx: None)
    video = await site.transcode(video_id)
    assert video.status == VideoStatus.FAILED
    assert await tree(site, video_id) == {}
