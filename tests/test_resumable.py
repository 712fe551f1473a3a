"""Resumable uploads (tus 1.0) at /api/uploads/, on local disk and on S3 (moto's server).

Protocol tests go through the ASGI app; the restart tests run a real `clipsync serve`
(`LiveServer`) and finish the upload with the official Python tus client, tuspy.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from browser import LiveServer
from clients import bearer, register
from clips import make_clip
from services import S3Server
from tusclient import client as tus_client
from tusclient.uploader import Uploader

from clipsync.models import ResumableUpload, Video, VideoStatus
from clipsync.services import reaper
from clipsync.services.transcoding import JobContext, run_transcode
from clipsync.settings import Settings

MiB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
PATCH_TYPE = {"Content-Type": "application/offset+octet-stream"}
SMALL_LADDER = {"ladder": [{"height": 144, "bitrate": 150}]}
AppFactory = Callable[..., Awaitable[tuple[Any, httpx.AsyncClient]]]


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def sha256_b64(data: bytes) -> str:
    return "sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode()


class Tus:
    """A tus client over the ASGI app, for one user."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.headers = {**TUS, **bearer(token)}

    async def create(self, length: int, filename: str = "clip.mp4", **extra: str) -> httpx.Response:
        headers = {
            **self.headers,
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(filename=filename, filetype="video/mp4"),
            **extra,
        }
        return await self.client.post("/api/uploads/", headers=headers)

    async def new(self, length: int) -> str:
        response = await self.create(length)
        assert response.status_code == 201, response.text
        return response.headers["location"]

    async def head(self, url: str) -> httpx.Response:
        return await self.client.head(url, headers=self.headers)

    async def patch(self, url: str, offset: int, data: bytes, **extra: str) -> httpx.Response:
        headers = {**self.headers, **PATCH_TYPE, "Upload-Offset": str(offset), **extra}
        return await self.client.patch(url, content=data, headers=headers)

    async def send(self, url: str, data: bytes, chunk: int = MiB) -> None:
        for offset in range(0, len(data), chunk):
            response = await self.patch(url, offset, data[offset : offset + chunk])
            assert response.status_code == 204, response.text
            assert int(response.headers["upload-offset"]) == min(offset + chunk, len(data))


@pytest.fixture(params=["local", "s3"])
async def tus_app(
    request: pytest.FixtureRequest,
    make_settings: Callable[..., Settings],
    migrated_sqlite: Path,
    start_app: AppFactory,
) -> tuple[Any, Tus]:
    """An app on local disk or on a fresh bucket (5 MiB parts), and a signed-in user."""
    tables: dict[str, Any] = {"transcoder": SMALL_LADDER}
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        bucket = f"tus-{uuid.uuid4().hex[:12]}"
        tables["storage"] = {"backend": "s3"}
        tables["plugins"] = {"storage_s3": server.plugin_table(bucket=bucket, part_size=5 * MiB)}
    settings = make_settings(**tables)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite, settings.data_dir / "clipsync.sqlite3")
    app, client = await start_app(settings)
    token = (await register(client, "tus@example.org"))["token"]
    return app, Tus(client, token)


async def stored_bytes(app: Any, key: str) -> bytes:
    return b"".join([chunk async for chunk in app.ctx.backends.storage.read(key)])


def staging(app: Any) -> Path:
    return app.ctx.settings.data_dir / "uploads"


# --- the protocol --------------------------------------------------------------------------


async def test_options_lists_version_extensions_and_limits(tus_app) -> None:
    app, tus = tus_app
    response = await tus.client.options("/api/uploads/")
    assert response.status_code == 204
    assert response.headers["tus-resumable"] == "1.0.0"
    assert response.headers["tus-version"] == "1.0.0"
    assert response.headers["tus-extension"] == "creation,termination,checksum,expiration"
    assert response.headers["tus-max-size"] == str(app.ctx.settings.uploads.max_size)
    assert response.headers["tus-checksum-algorithm"] == "sha256"


async def test_an_upload_sent_in_chunks_becomes_an_uploaded_video(tus_app) -> None:
    app, tus = tus_app
    data = os.urandom(12 * MiB + 12345)  # three 5 MiB parts on S3, the last one short
    created = await tus.create(len(data))
    assert created.status_code == 201, created.text
    assert created.headers["tus-resumable"] == "1.0.0"
    assert created.headers["upload-expires"].endswith("GMT")
    url = created.headers["location"]
    upload_id = url.rsplit("/", 1)[1]
    assert url == f"/api/uploads/{uuid.UUID(upload_id)}"

    head = await tus.head(url)
    assert head.status_code == 200
    assert head.headers["upload-offset"] == "0"
    assert head.headers["upload-length"] == str(len(data))
    assert head.headers["cache-control"] == "no-store"
    assert head.headers["upload-metadata"] == metadata(filename="clip.mp4", filetype="video/mp4")
    assert "upload-expires" in head.headers

    await tus.send(url, data[: 6 * MiB], chunk=3 * MiB)
    assert (await tus.head(url)).headers["upload-offset"] == str(6 * MiB)
    assert not await Video.exists(id=upload_id)
    last = await tus.patch(url, 6 * MiB, data[6 * MiB :])
    assert last.status_code == 204, last.text
    assert last.headers["upload-offset"] == str(len(data))

    video = await Video.get(id=upload_id)
    assert video.status == VideoStatus.UPLOADED
    assert video.source_key == f"videos/{upload_id}/source.mp4"
    assert video.size == len(data)
    assert video.checksum == hashlib.sha256(data).hexdigest()
    assert video.category == "general" and video.original_filename == "clip.mp4"
    assert await stored_bytes(app, video.source_key) == data
    assert not (staging(app) / upload_id).exists()
    # The finished upload still answers HEAD, so a client that reloads sees it done.
    assert (await tus.head(url)).headers["upload-offset"] == str(len(data))
    again = await tus.patch(url, len(data), b"x")
    assert again.status_code == 409


async def test_creation_is_refused_with_the_apps_error_format(tus_app) -> None:
    app, tus = tus_app
    cases = [
        ({"Upload-Length": "abc"}, 400),
        ({"Upload-Length": str(app.ctx.settings.uploads.max_size + 1)}, 413),
        ({"Upload-Length": "0"}, 422),
        ({"Upload-Length": "10", "Upload-Metadata": metadata(filename="notes.txt")}, 422),
        ({"Upload-Length": "10", "Upload-Metadata": metadata(filetype="video/mp4")}, 400),
        ({"Upload-Defer-Length": "1"}, 400),
    ]
    for extra, status in cases:
        headers = {**tus.headers, "Upload-Metadata": metadata(filename="a.mp4"), **extra}
        if "Upload-Defer-Length" in extra:
            headers.pop("Upload-Length", None)
        response = await tus.client.post("/api/uploads/", headers=headers)
        assert response.status_code == status, (extra, response.text)
        assert response.headers["tus-resumable"] == "1.0.0"
        assert response.json()["error"]["message"]
    missing = {k: v for k, v in tus.headers.items() if k != "Upload-Length"}
    response = await tus.client.post("/api/uploads/", headers=missing)
    assert response.status_code == 400
    assert await ResumableUpload.all().count() == 0


async def test_offsets_content_type_version_and_checksums_are_checked(tus_app) -> None:
    _, tus = tus_app
    data = os.urandom(2 * MiB)
    url = await tus.new(len(data))

    wrong_offset = await tus.patch(url, 10, data[:100])
    assert wrong_offset.status_code == 409
    assert wrong_offset.json()["error"]["code"] == "conflict"

    wrong_type = await tus.client.patch(
        url,
        content=data[:100],
        headers={**tus.headers, "Content-Type": "video/mp4", "Upload-Offset": "0"},
    )
    assert wrong_type.status_code == 415
    assert wrong_type.headers["tus-resumable"] == "1.0.0"

    no_version = await tus.client.patch(
        url,
        content=data[:100],
        headers={**bearer_only(tus), **PATCH_TYPE, "Upload-Offset": "0"},
    )
    assert no_version.status_code == 412
    assert no_version.headers["tus-version"] == "1.0.0"
    assert (await tus.client.head(url, headers=bearer_only(tus))).status_code == 412

    sha1 = await tus.patch(url, 0, data[:100], **{"Upload-Checksum": "sha1 AAAA"})
    assert sha1.status_code == 400

    # A chunk that does not match its checksum is discarded; the right one is kept.
    bad = await tus.patch(url, 0, data[:MiB], **{"Upload-Checksum": sha256_b64(b"other")})
    assert bad.status_code == 460, bad.text
    assert bad.json()["error"]["code"] == "checksum_mismatch"
    assert (await tus.head(url)).headers["upload-offset"] == "0"
    good = await tus.patch(url, 0, data[:MiB], **{"Upload-Checksum": sha256_b64(data[:MiB])})
    assert good.status_code == 204 and good.headers["upload-offset"] == str(MiB)
    rest = await tus.patch(url, MiB, data[MiB:], **{"Upload-Checksum": sha256_b64(data[MiB:])})
    assert rest.status_code == 204
    video = await Video.get(id=url.rsplit("/", 1)[1])
    assert video.checksum == hashlib.sha256(data).hexdigest()

    too_long = await tus.new(10)
    response = await tus.patch(too_long, 0, b"x" * 11)
    assert response.status_code == 400


def bearer_only(tus: Tus) -> dict[str, str]:
    return {k: v for k, v in tus.headers.items() if k != "Tus-Resumable"}


async def test_another_users_upload_answers_like_a_missing_one(tus_app) -> None:
    _, tus = tus_app
    url = await tus.new(100)
    other = Tus(tus.client, (await register(tus.client, "other@example.org"))["token"])
    for response in (
        await other.head(url),
        await other.patch(url, 0, b"x" * 10),
        await other.client.delete(url, headers=other.headers),
        await tus.head(f"/api/uploads/{uuid.uuid4()}"),
        await tus.head("/api/uploads/not-an-id"),
    ):
        assert response.status_code == 404
        assert response.headers["tus-resumable"] == "1.0.0"
    assert (await tus.client.head(url, headers=TUS)).status_code == 401


async def test_termination_removes_staged_bytes_and_stored_parts(tus_app) -> None:
    app, tus = tus_app
    data = os.urandom(7 * MiB)
    url = await tus.new(len(data))
    await tus.send(url, data[: 6 * MiB], chunk=6 * MiB)
    upload = await ResumableUpload.get(id=url.rsplit("/", 1)[1])
    if app.ctx.settings.storage.backend == "s3":
        assert upload.multipart_id and len(upload.parts) == 1
    response = await tus.client.delete(url, headers=tus.headers)
    assert response.status_code == 204
    assert response.headers["tus-resumable"] == "1.0.0"
    assert not (staging(app) / str(upload.id)).exists()
    assert not await ResumableUpload.exists(id=upload.id)
    assert (await tus.head(url)).status_code == 404
    if upload.multipart_id:
        assert_multipart_gone(app, upload)


def assert_multipart_gone(app: Any, upload: ResumableUpload) -> None:
    storage = app.ctx.backends.storage
    uploads = storage.client._list_multipart_uploads(storage.bucket)
    assert upload.multipart_id not in [u.upload_id for u in uploads.uploads]


async def test_expired_uploads_answer_gone_and_the_reaper_deletes_them(tus_app) -> None:
    app, tus = tus_app
    data = os.urandom(6 * MiB)
    url = await tus.new(len(data) + 1)
    await tus.send(url, data, chunk=6 * MiB)
    kept = await tus.new(10)
    upload = await ResumableUpload.get(id=url.rsplit("/", 1)[1])
    await ResumableUpload.filter(id=upload.id).update(
        expires_at=datetime.now(UTC) - timedelta(minutes=1)
    )
    assert (await tus.head(url)).status_code == 410
    assert (await tus.patch(url, len(data), b"x")).status_code == 410

    ctx = JobContext(app.ctx.settings, app.ctx.plugins, app.ctx.backends)
    await reaper.reap(ctx, lambda video_id: None, set)
    assert not await ResumableUpload.exists(id=upload.id)
    assert not (staging(app) / str(upload.id)).exists()
    if upload.multipart_id:
        assert_multipart_gone(app, upload)
    assert (await tus.head(url)).status_code == 404
    assert (await tus.head(kept)).status_code == 200


async def test_two_patches_at_once_never_corrupt_an_upload(tus_app) -> None:
    app, tus = tus_app
    data = os.urandom(8 * MiB)
    url = await tus.new(len(data))
    first, second = await asyncio.gather(
        tus.patch(url, 0, data[: 4 * MiB]), tus.patch(url, 0, data[: 4 * MiB])
    )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses in ([204, 409], [204, 204]), statuses
    head = await tus.head(url)
    offset = int(head.headers["upload-offset"])
    assert offset == 4 * MiB
    assert (await tus.patch(url, offset, data[offset:])).status_code == 204
    video = await Video.get(id=url.rsplit("/", 1)[1])
    assert await stored_bytes(app, video.source_key) == data
    assert video.checksum == hashlib.sha256(data).hexdigest()


async def test_a_finished_upload_registers_and_transcodes(tus_app) -> None:
    app, tus = tus_app
    clip = make_clip("landscape").read_bytes()
    url = await tus.new(len(clip))
    await tus.send(url, clip, chunk=len(clip) // 3 + 1)
    video_id = url.rsplit("/", 1)[1]
    registered = await tus.client.post(
        "/api/videos/register",
        json={"videoId": video_id, "title": "Resumed", "description": "via tus"},
        headers=tus.headers,
    )
    assert registered.status_code == 201, registered.text
    ctx = JobContext(app.ctx.settings, app.ctx.plugins, app.ctx.backends)
    await run_transcode(ctx, video_id, final_attempt=True)
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.READY, video.error
    assert video.checksum == hashlib.sha256(clip).hexdigest()


# --- an outside client (tuspy) against a real server that restarts ------------------------


class Sha256Uploader(Uploader):
    """tuspy sends sha1 checksums by default; this server takes sha256."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


def live_toml(storage: str, request: pytest.FixtureRequest) -> tuple[str, str]:
    """Extra config for the live server, and the bucket (empty for local storage)."""
    if storage == "local":
        return "", ""
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = f"tus-{uuid.uuid4().hex[:12]}"
    return (
        '[storage]\nbackend = "s3"\n'
        "[plugins.storage_s3]\n"
        f'endpoint = "{server.endpoint}"\nbucket = "{bucket}"\nregion = "{server.region}"\n'
        f'access_key = "{server.access_key}"\nsecret_key = "{server.secret_key}"\n'
        f"secure = false\npart_size = {5 * MiB}\n"
    ), bucket


def cut_off_patch(server: LiveServer, token: str, location: str, data: bytes, sent: int) -> None:
    """A PATCH announcing every byte that sends only `sent` of them, then the server stops."""
    head = (
        f"PATCH {location} HTTP/1.1\r\nHost: {urlsplit(server.base_url).netloc}\r\n"
        f"Authorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\n"
        "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head + data[:sent])
        time.sleep(1.0)  # let the server stage what it has received
        server.stop()  # mid-request: SIGINT, then SIGKILL to whatever lingers


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_tuspy_resumes_an_upload_cut_off_by_a_server_restart(
    storage: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    toml, bucket = live_toml(storage, request)
    source = tmp_path / "clip.mp4"
    data = os.urandom(13 * MiB + 17)
    source.write_bytes(data)
    server = LiveServer(tmp_path / "live", toml).start()
    try:
        with httpx.Client(base_url=server.base_url) as http:
            token = http.post(
                "/api/auth/register", json={"email": "t@example.org", "password": "pw" * 8}
            ).json()["token"]
            headers = {**TUS, **bearer(token)}
            created = http.post(
                "/api/uploads/",
                headers={
                    **headers,
                    "Upload-Length": str(len(data)),
                    "Upload-Metadata": metadata(filename="clip.mp4"),
                },
            )
            assert created.status_code == 201, created.text
            location = created.headers["location"]

            cut_off_patch(server, token, location, data, sent=8 * MiB + 5)
            server.start()
            offset = int(http.head(location, headers=headers).headers["upload-offset"])
            # What was staged survived the restart (at most the last unsaved batch is lost).
            if storage == "local":
                assert 4 * MiB <= offset <= 8 * MiB + 5, offset
            else:  # the store holds what survives: the parts stored before the stop
                assert offset in (0, 5 * MiB), offset

            tus = tus_client.TusClient(server.url("/api/uploads/"), headers=bearer(token))
            uploader = Sha256Uploader(
                file_path=str(source),
                client=tus,
                url=server.url(location),
                chunk_size=3 * MiB,
                upload_checksum=True,
            )
            assert uploader.offset == offset
            try:
                uploader.upload()
            except Exception as exc:
                raise AssertionError(f"{exc} {exc.response_content} {uploader.offset}") from exc

            video_id = location.rsplit("/", 1)[1]
            video = http.get(f"/api/videos/{video_id}", headers=bearer(token)).json()["video"]
            assert video["status"] == "UPLOADED"
            assert video["size"] == len(data)
            assert video["checksum"] == hashlib.sha256(data).hexdigest()
            key = f"videos/{video_id}/source.mp4"
            if storage == "local":
                stored = (server.data_dir / "media" / key).read_bytes()
            else:
                stored = s3_object(request.getfixturevalue("s3_server"), bucket, key)
            assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(data).hexdigest()
    finally:
        server.stop()


def s3_object(server: S3Server, bucket: str, key: str) -> bytes:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=server.url,
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
    )
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
