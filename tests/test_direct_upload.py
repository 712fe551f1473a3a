"""Direct uploads: a presigned PUT straight to the bucket, then registration by key.

Presigned PUTs are sent to an open moto server (moto 5.2 answers presigned requests
with HTTP 500 when it enforces signatures; see tests/test_s3_playback.py), and their
signature is checked with botocore's verifier, as S3 and MinIO would check it.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from clients import bearer, register
from clips import make_clip
from services import S3Server
from test_storage_s3 import verify_presigned

from clipsync.context import ClipSyncApp
from clipsync.models import Video, VideoStatus
from clipsync.services import reaper
from clipsync.services.transcoding import JobContext
from clipsync.storage import keys

URL = "/api/upload/presigned-url"


@pytest.fixture(scope="module")
def open_s3() -> Iterator[S3Server]:
    with S3Server(enforce_auth=False) as server:
        yield server


@pytest.fixture
async def site(
    start_app: Any, make_settings: Any, migrated_sqlite: Path, open_s3: S3Server
) -> tuple[ClipSyncApp, httpx.AsyncClient, str]:
    bucket = f"direct-{uuid.uuid4().hex[:12]}"
    settings = make_settings(
        storage={"backend": "s3"},
        uploads={"max_size": 50 * 1024 * 1024},
        plugins={"storage_s3": open_s3.plugin_table(bucket=bucket, prefix="media")},
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite, settings.data_dir / "clipsync.sqlite3")
    app, client = await start_app(settings)
    return app, client, bucket


async def presign(
    client: httpx.AsyncClient, token: str, clip: Path, **overrides: Any
) -> httpx.Response:
    body = {"filename": clip.name, "size": clip.stat().st_size, "contentType": "video/mp4"}
    body.update(overrides)
    return await client.post(URL, json=body, headers=bearer(token))


async def put(url: str, data: bytes, content_type: str = "video/mp4") -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False) as http:
        return await http.put(url, content=data, headers={"Content-Type": content_type})


def stored(app: ClipSyncApp, bucket: str, prefix: str) -> list[str]:
    client = app.ctx.backends.storage.client
    return [o.object_name for o in client.list_objects(bucket, prefix=prefix, recursive=True)]


async def test_a_file_put_straight_to_the_bucket_is_registered_by_its_key(
    site, open_s3: S3Server
) -> None:
    app, client, bucket = site
    token = (await register(client, "direct@example.org"))["token"]
    clip = make_clip("landscape")
    data = clip.read_bytes()

    response = await presign(client, token, clip)
    assert response.status_code == 201, response.text
    answer = response.json()
    file_key = answer["fileKey"]
    video_id = uuid.UUID(file_key.split("/")[1])
    assert file_key == keys.source_key(video_id, clip.name) == f"videos/{video_id}/source.mp4"
    url = answer["uploadUrl"]
    assert url.startswith(f"{open_s3.url}/{bucket}/media/{file_key}?")
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["3600"]
    assert query["X-Amz-SignedHeaders"] == ["content-type;host"]
    secret = open_s3.secret_key
    assert verify_presigned(url, secret, "PUT", {"content-type": "video/mp4"}) == "ok"
    assert verify_presigned(url, secret, "PUT", {"content-type": "text/html"}) != "ok"
    assert answer["headers"] == {"Content-Type": "video/mp4"} and answer["method"] == "PUT"

    # The key is remembered as this user's upload, not yet registered.
    row = await Video.get(id=video_id)
    assert row.status == VideoStatus.UPLOADED and row.source_key == file_key
    assert row.size == len(data) and not row.checksum

    assert (await put(url, data)).status_code == 200
    registered = await client.post(
        "/api/videos/register",
        json={"fileKey": file_key, "title": "Straight in", "description": "by PUT"},
        headers=bearer(token),
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["video"]["id"] == str(video_id)
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.PROCESSING and video.title == "Straight in"
    assert (video.width, video.height) == (640, 360)
    assert video.size == len(data)
    assert video.checksum == hashlib.sha256(data).hexdigest()
    scratch = app.ctx.settings.data_dir / "scratch"
    assert not scratch.exists() or not any(scratch.rglob("*"))

    again = await client.post(
        "/api/videos/register", json={"fileKey": file_key, "title": "x"}, headers=bearer(token)
    )
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("overrides", "status", "field"),
    [
        ({"filename": "notes.txt"}, 422, None),
        ({"filename": ""}, 422, "filename"),
        ({"filename": None}, 422, "filename"),
        ({"size": 0}, 422, "size"),
        ({"size": -5}, 422, "size"),
        ({"size": "12"}, 422, "size"),
        ({"size": True}, 422, "size"),
        ({"size": 50 * 1024 * 1024 + 1}, 413, None),
        ({"contentType": "text/html"}, 422, "contentType"),
        ({"contentType": "video/mp4\r\nX-Evil: 1"}, 422, "contentType"),
        ({"contentType": None}, 422, "contentType"),
    ],
)
async def test_bad_requests_for_an_upload_url_are_refused(
    site, overrides: dict[str, Any], status: int, field: str | None
) -> None:
    _, client, _ = site
    token = (await register(client, "bad@example.org"))["token"]
    response = await presign(client, token, make_clip("landscape"), **overrides)
    assert response.status_code == status, response.text
    assert response.json()["error"].get("field") == field
    assert await Video.all().count() == 0


async def test_someone_elses_key_answers_like_a_missing_one(site) -> None:
    _, client, _ = site
    alice = (await register(client, "alice@example.org"))["token"]
    mallory = (await register(client, "mallory@example.org"))["token"]
    clip = make_clip("landscape")
    answer = (await presign(client, alice, clip)).json()
    assert (await put(answer["uploadUrl"], clip.read_bytes())).status_code == 200

    answers = []
    for key in (answer["fileKey"], f"videos/{uuid.uuid4()}/source.mp4", "../etc/passwd", 7):
        response = await client.post(
            "/api/videos/register", json={"fileKey": key, "title": "Mine now"},
            headers=bearer(mallory),
        )  # fmt: skip
        answers.append((response.status_code, response.json()["error"]["message"]))
    assert answers == [(404, "There is no such upload.")] * 4
    video = await Video.get(source_key=answer["fileKey"])
    assert video.status == VideoStatus.UPLOADED and video.title == ""


async def test_registering_before_the_file_arrived_is_409_and_can_be_retried(site) -> None:
    _, client, _ = site
    token = (await register(client, "early@example.org"))["token"]
    clip = make_clip("landscape")
    answer = (await presign(client, token, clip)).json()
    body = {"fileKey": answer["fileKey"], "title": "Too early"}
    early = await client.post("/api/videos/register", json=body, headers=bearer(token))
    assert early.status_code == 409 and early.json()["error"]["code"] == "upload_not_arrived"
    assert await Video.filter(source_key=answer["fileKey"]).exists()

    assert (await put(answer["uploadUrl"], clip.read_bytes())).status_code == 200
    later = await client.post("/api/videos/register", json=body, headers=bearer(token))
    assert later.status_code == 201, later.text


async def test_a_file_other_than_declared_is_refused_and_deleted(site) -> None:
    """The PUT's signature does not cover the length: what arrived is what is checked."""
    app, client, bucket = site
    token = (await register(client, "liar@example.org"))["token"]
    clip = make_clip("landscape")
    answer = (await presign(client, token, clip, size=1000)).json()
    assert (await put(answer["uploadUrl"], clip.read_bytes())).status_code == 200
    assert stored(app, bucket, f"media/{answer['fileKey']}")

    response = await client.post(
        "/api/videos/register",
        json={"fileKey": answer["fileKey"], "title": "Bigger"},
        headers=bearer(token),
    )
    assert response.status_code == 422
    assert "not the 1000 declared" in response.json()["error"]["message"]
    assert stored(app, bucket, f"media/{answer['fileKey']}") == []
    assert not await Video.filter(source_key=answer["fileKey"]).exists()


async def test_registering_by_video_id_checks_a_direct_upload_too(site) -> None:
    """The id is in the key: registering by `videoId` must not skip the size check."""
    _, client, _ = site
    token = (await register(client, "byid@example.org"))["token"]
    clip = make_clip("landscape")
    answer = (await presign(client, token, clip, size=1000)).json()
    video_id = answer["fileKey"].split("/")[1]
    body = {"videoId": video_id, "title": "By id"}
    early = await client.post("/api/videos/register", json=body, headers=bearer(token))
    assert early.status_code == 409
    assert (await put(answer["uploadUrl"], clip.read_bytes())).status_code == 200
    late = await client.post("/api/videos/register", json=body, headers=bearer(token))
    assert late.status_code == 422 and not await Video.filter(id=video_id).exists()


async def test_direct_uploads_never_registered_are_reaped_with_their_object(site) -> None:
    app, client, bucket = site
    token = (await register(client, "gone@example.org"))["token"]
    clip = make_clip("landscape")
    answer = (await presign(client, token, clip)).json()
    assert (await put(answer["uploadUrl"], clip.read_bytes())).status_code == 200
    hours = app.ctx.settings.uploads.abandoned_after_hours
    old = datetime.now(UTC) - timedelta(hours=hours, minutes=1)
    await Video.filter(source_key=answer["fileKey"]).update(created_at=old)
    ctx = JobContext(app.ctx.settings, app.ctx.plugins, app.ctx.backends)
    assert await reaper.delete_abandoned_uploads(ctx) == 1
    assert stored(app, bucket, f"media/{answer['fileKey']}") == []


async def test_local_storage_points_to_the_resumable_upload(client: httpx.AsyncClient) -> None:
    token = (await register(client, "local@example.org"))["token"]
    response = await presign(client, token, make_clip("landscape"))
    assert response.status_code == 501
    error = response.json()["error"]
    assert error["code"] == "direct_upload_unavailable"
    assert "object storage" in error["message"] and "/api/uploads/" in error["message"]
    assert await Video.all().count() == 0
