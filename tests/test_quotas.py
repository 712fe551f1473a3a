"""Quotas and limits: storage and daily upload quotas checked before a byte is stored
(form uploads, tus creation, presigned URLs), unregistered uploads, registrations per
address, and the per-user override administrators set."""

from __future__ import annotations

import base64
import hashlib
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import LiveServer
from clients import bearer, register, upload, upload_and_register
from clips import make_clip
from services import S3Server
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError
from tusclient.uploader import Uploader

from clipsync.context import ClipSyncApp
from clipsync.models import AuditEntry, ResumableUpload, Role, User, Video
from clipsync.services import quotas
from clipsync.sessions import SESSION_COOKIE
from clipsync.sizes import format_size

MiB = 1024 * 1024
GiB = 1024 * MiB
TUS = {"Tus-Resumable": "1.0.0"}


def stored_files(app: ClipSyncApp) -> list[Path]:
    root = app.ctx.settings.data_dir
    return [
        p for p in root.rglob("*") if p.is_file() and ("media" in p.parts or "uploads" in p.parts)
    ]


async def site(start_app: Any, make_settings: Any, migrated_sqlite: Path, **tables: Any):
    settings = make_settings(**tables)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite, settings.data_dir / "clipsync.sqlite3")
    return await start_app(settings)


def tus_headers(token: str, length: int) -> dict[str, str]:
    name = base64.b64encode(b"clip.mp4").decode()
    return {
        **TUS,
        **bearer(token),
        "Upload-Length": str(length),
        "Upload-Metadata": f"filename {name}",
    }


# --- storage -------------------------------------------------------------------------------


async def test_a_form_upload_beyond_the_storage_quota_is_refused_before_it_is_stored(
    start_app, make_settings, migrated_sqlite
) -> None:
    clip = make_clip("landscape")
    size = clip.stat().st_size
    app, client = await site(
        start_app, make_settings, migrated_sqlite, quotas={"storage_bytes_per_user": size + 1000}
    )
    token = (await register(client, "full@example.org"))["token"]
    assert (await upload(client, token, clip)).status_code == 201
    before = stored_files(app)

    refused = await upload(client, token, clip)

    assert refused.status_code == 413, refused.text
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded" and error["quota"] == "storage"
    assert error["left"] == 1000 and error["used"] == size
    assert error["needed"] > size  # its Content-Length: refused before it was read
    assert "1000 bytes are left" in error["message"]
    assert await Video.all().count() == 1
    assert stored_files(app) == before


async def test_a_body_without_a_length_is_cut_off_at_the_quota_and_nothing_is_kept(
    start_app, make_settings, migrated_sqlite
) -> None:
    app, client = await site(
        start_app, make_settings, migrated_sqlite, quotas={"storage_bytes_per_user": 64 * 1024}
    )
    token = (await register(client, "chunked@example.org"))["token"]
    boundary = "quota-boundary"

    async def body():
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="clip.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
        ).encode()
        for _ in range(8):
            yield b"\0" * (32 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    refused = await client.post(
        "/api/videos/upload-local",
        content=body(),
        headers={**bearer(token), "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"]["code"] == "quota_exceeded"
    assert await Video.all().count() == 0
    assert stored_files(app) == []


async def test_an_unfinished_tus_upload_counts_and_creation_beyond_the_quota_is_refused(
    start_app, make_settings, migrated_sqlite
) -> None:
    _app, client = await site(
        start_app, make_settings, migrated_sqlite, quotas={"storage_bytes_per_user": 10 * MiB}
    )
    token = (await register(client, "tus@example.org"))["token"]
    first = await client.post("/api/uploads/", headers=tus_headers(token, 6 * MiB))
    assert first.status_code == 201, first.text

    refused = await client.post("/api/uploads/", headers=tus_headers(token, 5 * MiB))

    assert refused.status_code == 413, refused.text
    error = refused.json()["error"]
    assert (error["used"], error["left"]) == (6 * MiB, 4 * MiB)
    assert "4 MiB are left" in error["message"]
    assert await ResumableUpload.all().count() == 1
    fits = await client.post("/api/uploads/", headers=tus_headers(token, 4 * MiB))
    assert fits.status_code == 201, fits.text


class Sha256Uploader(Uploader):
    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


def test_tuspy_is_refused_at_creation_with_the_room_left(tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"\0" * (2 * MiB))
    server = LiveServer(tmp_path / "live", f"[quotas]\nstorage_bytes_per_user = {MiB}\n").start()
    try:
        with httpx.Client(base_url=server.base_url) as http:
            token = http.post(
                "/api/auth/register", json={"email": "t@example.org", "password": "pw" * 8}
            ).json()["token"]
        tus = tus_client.TusClient(server.url("/api/uploads/"), headers=bearer(token))
        uploader = Sha256Uploader(
            file_path=str(source), client=tus, chunk_size=MiB, metadata={"filename": "clip.mp4"}
        )
        with pytest.raises(TusCommunicationError) as refused:
            uploader.upload()
        assert refused.value.status_code == 413
        assert b"1 MiB are left" in refused.value.response_content
        staged = server.data_dir / "uploads"
        assert not staged.exists() or not any(staged.iterdir())
    finally:
        server.stop()


@pytest.fixture(scope="module")
def open_s3() -> Any:
    with S3Server(enforce_auth=False) as server:
        yield server


async def test_a_presigned_url_is_refused_for_a_declared_size_beyond_the_quota(
    start_app, make_settings, migrated_sqlite, open_s3: S3Server
) -> None:
    bucket = f"quota-{uuid.uuid4().hex[:12]}"
    app, client = await site(
        start_app,
        make_settings,
        migrated_sqlite,
        storage={"backend": "s3"},
        quotas={"storage_bytes_per_user": 3 * MiB},
        plugins={"storage_s3": open_s3.plugin_table(bucket=bucket, prefix="media")},
    )
    token = (await register(client, "direct@example.org"))["token"]

    async def presign(size: int) -> httpx.Response:
        body = {"filename": "clip.mp4", "size": size, "contentType": "video/mp4"}
        return await client.post("/api/upload/presigned-url", json=body, headers=bearer(token))

    assert (await presign(2 * MiB)).status_code == 201  # its declared size counts at once
    refused = await presign(2 * MiB)
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"]["left"] == MiB
    assert await Video.all().count() == 1
    objects = app.ctx.backends.storage.client.list_objects(bucket, recursive=True)
    assert list(objects) == []


# --- the daily allowance ---------------------------------------------------------------------


async def test_the_daily_quota_says_what_is_left_and_when_it_frees_up(
    start_app, make_settings, migrated_sqlite
) -> None:
    clip = make_clip("landscape")
    size = clip.stat().st_size
    _app, client = await site(
        start_app,
        make_settings,
        migrated_sqlite,
        quotas={"daily_upload_bytes_per_user": size + 500},
    )
    token = (await register(client, "daily@example.org"))["token"]
    assert (await upload(client, token, clip)).status_code == 201
    first = await Video.get()

    refused = await upload(client, token, clip)

    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "daily_quota_exceeded"
    assert error["left"] == 500 and "500 bytes are left today" in error["message"]
    frees_at = datetime.fromisoformat(error["freesAt"])
    assert frees_at == first.created_at + timedelta(hours=24)
    wait = int(refused.headers["retry-after"])
    assert 24 * 3600 - 120 < wait <= 24 * 3600
    assert await Video.all().count() == 1

    # The window slides: a day later the first upload no longer counts.
    await Video.filter(id=first.id).update(created_at=datetime.now(UTC) - timedelta(hours=25))
    assert (await upload(client, token, clip)).status_code == 201


async def test_an_upload_larger_than_the_whole_daily_quota_is_too_large_not_early(
    start_app, make_settings, migrated_sqlite
) -> None:
    _app, client = await site(
        start_app, make_settings, migrated_sqlite, quotas={"daily_upload_bytes_per_user": MiB}
    )
    token = (await register(client, "big@example.org"))["token"]
    refused = await client.post("/api/uploads/", headers=tus_headers(token, 2 * MiB))
    assert refused.status_code == 413, refused.text
    assert "larger than your daily upload quota" in refused.json()["error"]["message"]


# --- unregistered uploads and registrations ----------------------------------------------------


async def test_too_many_unregistered_uploads_are_refused_until_one_is_registered(
    start_app, make_settings, migrated_sqlite
) -> None:
    clip = make_clip("landscape")
    _app, client = await site(
        start_app, make_settings, migrated_sqlite, quotas={"max_unregistered_uploads": 2}
    )
    token = (await register(client, "parked@example.org"))["token"]
    first = await upload(client, token, clip)
    assert (await upload(client, token, clip)).status_code == 201

    refused = await client.post("/api/uploads/", headers=tus_headers(token, MiB))
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "too_many_unregistered_uploads" and error["limit"] == 2
    assert "Register" in error["message"]
    assert await ResumableUpload.all().count() == 0

    registered = await client.post(
        "/api/videos/register",
        json={"videoId": first.json()["videoId"], "title": "Named"},
        headers=bearer(token),
    )
    assert registered.status_code == 201, registered.text
    assert (await upload(client, token, clip)).status_code == 201


async def test_registrations_per_address_are_limited_per_hour(
    start_app, make_settings, migrated_sqlite
) -> None:
    app, client = await site(
        start_app,
        make_settings,
        migrated_sqlite,
        quotas={"registrations_per_address_per_hour": 2},
    )
    await register(client, "one@example.org")
    await register(client, "two@example.org")

    refused = await client.post(
        "/api/auth/register", json={"email": "three@example.org", "password": "pw" * 8}
    )

    assert refused.status_code == 429, refused.text
    assert "registered from your address in the last hour" in refused.json()["error"]["message"]
    assert 3000 < int(refused.headers["retry-after"]) <= 3600
    assert not await User.filter(email="three@example.org").exists()
    elsewhere = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("198.51.100.9", 5000)),
        base_url="http://clipsync.test",
    )
    async with elsewhere:
        await register(elsewhere, "three@example.org")
    # An hour later the address may register again.
    await User.all().update(created_at=datetime.now(UTC) - timedelta(minutes=61))
    await register(client, "four@example.org")


# --- the administrators' override ------------------------------------------------------------


async def admin_and_user(client: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    admin = await register(client, "admin@example.org")
    await User.filter(id=admin["user"]["id"]).update(role=Role.ADMIN)
    admin = (await client.post(
        "/api/auth/login", json={"email": "admin@example.org", "password": "correct horse battery"}
    )).json()  # fmt: skip
    return admin["token"], await register(client, "person@example.org")


async def test_an_admin_override_replaces_the_default_and_signs_nobody_out(
    start_app, make_settings, migrated_sqlite
) -> None:
    clip = make_clip("landscape")
    app, client = await site(
        start_app, make_settings, migrated_sqlite, quotas={"storage_bytes_per_user": 1000}
    )
    admin, person = await admin_and_user(client)
    url = f"/api/admin/users/{person['user']['id']}"
    assert (await upload(client, person["token"], clip)).status_code == 413

    changed = await client.patch(url, json={"storageQuotaBytes": 0}, headers=bearer(admin))

    assert changed.status_code == 200, changed.text
    assert changed.json()["user"]["storageQuotaBytes"] == 0
    # Unlimited now, and still signed in: a quota is no change of rights.
    assert (await upload(client, person["token"], clip)).status_code == 201
    entry = await AuditEntry.get(action="user_update")
    assert entry.details == {"storageQuotaBytes": {"old": None, "new": 0}}

    size = clip.stat().st_size
    more = {"storageQuotaBytes": 2 * size + 4096, "dailyUploadQuotaBytes": None}
    changed = await client.patch(url, json=more, headers=bearer(admin))
    assert changed.json()["user"]["storageQuotaBytes"] == 2 * size + 4096
    assert (await upload(client, person["token"], clip)).status_code == 201
    assert (await upload(client, person["token"], clip)).status_code == 413

    # null: back to the default.
    await client.patch(url, json={"storageQuotaBytes": None}, headers=bearer(admin))
    user = await User.get(id=person["user"]["id"])
    assert user.storage_quota_bytes is None
    assert quotas.limits(app.ctx.settings, user) == (1000, 0)


@pytest.mark.parametrize("value", [-1, 1.5, "10", True, 2**63])
async def test_a_quota_that_is_not_a_byte_count_is_refused(
    value, start_app, make_settings, migrated_sqlite
) -> None:
    _app, client = await site(start_app, make_settings, migrated_sqlite)
    admin, person = await admin_and_user(client)
    refused = await client.patch(
        f"/api/admin/users/{person['user']['id']}",
        json={"dailyUploadQuotaBytes": value},
        headers=bearer(admin),
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "dailyUploadQuotaBytes"


async def test_only_admins_set_quotas(start_app, make_settings, migrated_sqlite) -> None:
    _app, client = await site(start_app, make_settings, migrated_sqlite)
    _admin, person = await admin_and_user(client)
    refused = await client.patch(
        f"/api/admin/users/{person['user']['id']}",
        json={"storageQuotaBytes": 0},
        headers=bearer(person["token"]),
    )
    assert refused.status_code == 403
    assert (await User.get(id=person["user"]["id"])).storage_quota_bytes is None


# --- shown to the uploader and the admin --------------------------------------------------------


async def test_the_upload_page_says_how_much_is_used_and_left_today(
    start_app, make_settings, migrated_sqlite
) -> None:
    clip = make_clip("landscape")
    _app, client = await site(
        start_app,
        make_settings,
        migrated_sqlite,
        quotas={"storage_bytes_per_user": GiB, "daily_upload_bytes_per_user": 2 * GiB},
    )
    _admin, person = await admin_and_user(client)  # a site that is set up
    assert (await upload_and_register(client, person["token"], clip)).status_code == 201
    used = (await Video.get()).size
    client.cookies.set(SESSION_COOKIE, person["token"])
    page = await client.get("/upload")
    assert page.status_code == 200, page.text
    assert (
        f"{format_size(used)} of 1 GiB used, {format_size(2 * GiB - used)} left today" in page.text
    )


async def test_the_admin_users_page_has_quota_fields_saved_with_a_button(
    start_app, make_settings, migrated_sqlite
) -> None:
    _app, client = await site(start_app, make_settings, migrated_sqlite)
    admin, person = await admin_and_user(client)
    await client.patch(
        f"/api/admin/users/{person['user']['id']}",
        json={"storageQuotaBytes": 5 * GiB},
        headers=bearer(admin),
    )
    client.cookies.set(SESSION_COOKIE, admin)
    page = await client.get("/admin/users")
    assert page.status_code == 200, page.text
    field = f'id="storageQuotaBytes-{person["user"]["id"]}"'
    assert field in page.text
    row = page.text.split(field, 1)[1].split(">", 1)[0]
    assert f'data-value="{5 * GiB}" value="5"' in row
    assert "Save quotas" in page.text
