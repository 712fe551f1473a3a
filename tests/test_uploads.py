"""Uploading and registering videos: streaming, limits, validation, clean refusals."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from clients import bearer, register, upload, upload_and_register
from clips import make_clip

from clipsync.context import ClipSyncApp
from clipsync.models import Video, VideoStatus
from clipsync.plugins import PluginHost


def stored_files(app: ClipSyncApp) -> list[Path]:
    root = app.ctx.settings.data_dir / "media"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture
async def token(client: httpx.AsyncClient) -> str:
    return (await register(client, "uploader@example.org"))["token"]


async def test_upload_streams_to_storage_and_keeps_size_and_checksum(
    app: ClipSyncApp, client: httpx.AsyncClient, token: str, tmp_path: Path
) -> None:
    clip = make_clip("landscape")
    response = await upload(client, token, clip)
    assert response.status_code == 201
    video = await Video.get(id=response.json()["videoId"])
    assert video.status == VideoStatus.UPLOADED
    assert video.size == clip.stat().st_size
    assert video.checksum == hashlib.sha256(clip.read_bytes()).hexdigest()
    assert video.source_key == f"videos/{video.id}/source.mp4"
    stored = app.ctx.backends.storage.path(video.source_key)
    assert stored.read_bytes() == clip.read_bytes()


async def test_register_probes_and_queues_the_video(app: ClipSyncApp, client, token: str) -> None:
    response = await upload_and_register(client, token, make_clip("landscape"), title="  Launch  ")
    assert response.status_code == 201, response.text
    body = response.json()["video"]
    assert body["status"] == "PROCESSING" and body["title"] == "Launch"
    video = await Video.get(id=body["id"])
    assert (video.width, video.height) == (640, 360)
    assert video.video_codec == "h264" and video.audio_codec == "aac"
    assert 3.5 < video.duration < 4.5
    assert video.category == "general"
    assert app.ctx.jobs.huey.pending_count() == 1


async def test_only_the_uploader_may_register_an_upload(
    app: ClipSyncApp, client, token: str
) -> None:
    uploaded = await upload(client, token, make_clip("landscape"))
    other = (await register(client, "other@example.org"))["token"]
    response = await client.post(
        "/api/videos/register",
        json={"videoId": uploaded.json()["videoId"], "title": "Mine"},
        headers=bearer(other),
    )
    assert response.status_code == 404
    assert (await Video.get(id=uploaded.json()["videoId"])).status == VideoStatus.UPLOADED


async def test_an_upload_registers_once(client, token: str) -> None:
    uploaded = await upload(client, token, make_clip("landscape"))
    body = {"videoId": uploaded.json()["videoId"], "title": "Once"}
    assert (
        await client.post("/api/videos/register", json=body, headers=bearer(token))
    ).status_code == 201
    again = await client.post("/api/videos/register", json=body, headers=bearer(token))
    assert again.status_code == 409


async def test_a_title_is_required(client, token: str) -> None:
    uploaded = await upload(client, token, make_clip("landscape"))
    response = await client.post(
        "/api/videos/register",
        json={"videoId": uploaded.json()["videoId"], "title": "  "},
        headers=bearer(token),
    )
    assert response.status_code == 422 and response.json()["error"]["field"] == "title"


@pytest.mark.parametrize(
    "kind", ["portrait", "rotated", "no_audio", "webm", "mkv", "avi", "hevc10", "mov"]
)
async def test_every_accepted_container_registers(client, token: str, kind: str) -> None:
    response = await upload_and_register(client, token, make_clip(kind))
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("image", "not a video"),
        ("text", ""),
        ("truncated", ""),
        ("audio_only", "no video"),
    ],
)
async def test_unusable_files_are_refused_and_their_bytes_removed(
    app: ClipSyncApp, client, token: str, kind: str, message: str
) -> None:
    response = await upload_and_register(client, token, make_clip(kind))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "unsupported_media"
    assert message.lower() in error["message"].lower()
    assert await Video.all().count() == 0
    assert stored_files(app) == []


async def test_an_empty_file_is_refused_at_once(
    app: ClipSyncApp, client, token: str, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    response = await upload(client, token, empty)
    assert response.status_code == 422
    assert "empty" in response.json()["error"]["message"]
    assert stored_files(app) == [] and await Video.all().count() == 0


async def test_too_long_videos_are_refused(start_app, make_settings, migrated_sqlite: Path) -> None:
    settings = make_settings(uploads={"max_duration_seconds": 2})
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    token = (await register(client, "u@example.org"))["token"]
    response = await upload_and_register(client, token, make_clip("landscape"))
    assert response.status_code == 422
    assert "limit" in response.json()["error"]["message"]
    assert stored_files(app) == []


async def test_uploads_over_the_size_limit_are_413_and_leave_nothing(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    settings = make_settings(uploads={"max_size": 50_000})
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    token = (await register(client, "u@example.org"))["token"]
    clip = make_clip("landscape")
    assert clip.stat().st_size > 50_000
    response = await upload(client, token, clip)
    assert response.status_code == 413
    assert "at most" in response.json()["error"]["message"]
    assert stored_files(app) == [] and await Video.all().count() == 0


async def test_hook_validate_upload_can_refuse_with_its_own_message(
    app: ClipSyncApp, client, token: str
) -> None:
    class NoPortrait:
        from clipsync import hookimpl

        @hookimpl
        def validate_upload(self, video, source):
            if source.height > source.width:
                return "Portrait videos are not accepted here."
            return None

    host: PluginHost = app.ctx.plugins
    host.pm.register(NoPortrait(), name="no_portrait")
    try:
        refused = await upload_and_register(client, token, make_clip("portrait"))
        assert refused.status_code == 422
        assert refused.json()["error"]["message"] == "Portrait videos are not accepted here."
        accepted = await upload_and_register(client, token, make_clip("landscape"))
        assert accepted.status_code == 201
    finally:
        host.pm.unregister(name="no_portrait")


async def test_hook_video_uploaded_and_video_status_changed_fire_on_register(
    app, client, token: str
) -> None:
    seen = []

    class Observer:
        from clipsync import hookimpl

        @hookimpl
        def video_uploaded(self, video):
            seen.append(("uploaded", video.title))

        @hookimpl
        def video_status_changed(self, video, old, new):
            seen.append(("status", old, new))

    app.ctx.plugins.pm.register(Observer(), name="observer")
    try:
        await upload_and_register(client, token, make_clip("landscape"), title="Seen")
    finally:
        app.ctx.plugins.pm.unregister(name="observer")
    assert seen == [("uploaded", "Seen"), ("status", "UPLOADED", "PROCESSING")]


@pytest.mark.parametrize(
    ("headers", "content"),
    [
        ({"content-type": "application/json"}, b"{}"),
        (
            {"content-type": "multipart/form-data; boundary=xyz"},
            b'--xyz\r\nContent-Disposition: form-data; name="other"\r\n\r\nhi\r\n--xyz--\r\n',
        ),
    ],
)
async def test_an_upload_without_a_file_field_is_400(
    client, token: str, headers, content: bytes
) -> None:
    response = await client.post(
        "/api/videos/upload-local", content=content, headers={**headers, **bearer(token)}
    )
    assert response.status_code == 400
    assert "file" in response.json()["error"]["message"]


async def test_uploading_needs_a_signed_in_user(client) -> None:
    response = await client.post(
        "/api/videos/upload-local", files={"file": ("a.mp4", b"x", "video/mp4")}
    )
    assert response.status_code == 401
