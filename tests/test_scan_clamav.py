"""The `scan_clamav` plugin against a real clamd, with a signature database made here.

clamd (`services.ClamdServer`) knows one signature, EICAR's test string as
`Eicar-Test-Signature`; the infected upload is a real clip with that string appended,
so ffprobe accepts it and only the scan refuses it. Uploads go through the real API:
the form upload, tus, and a direct upload to S3 (moto).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import shutil
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from clients import bearer, register, upload, upload_and_register
from clips import make_clip
from clipsync_scan_clamav import clamd
from services import EICAR, ClamdServer, S3Server, free_port

from clipsync import doctor, hookimpl
from clipsync.context import ClipSyncApp
from clipsync.errors import ConfigError
from clipsync.models import AuditEntry, Video, VideoStatus
from clipsync.plugins import create_plugin_host

MiB = 1024 * 1024
REFUSED = "The file was refused: it contains Eicar-Test-Signature"
# What clamd itself reads of one stream here; the clips are about 1 MiB.
STREAM_MAX = 4 * MiB


@pytest.fixture(scope="module")
def clamd_server() -> Iterator[ClamdServer]:
    with ClamdServer(stream_max_bytes=STREAM_MAX) as server:
        yield server


@pytest.fixture(scope="module")
def open_s3() -> Iterator[S3Server]:
    with S3Server(enforce_auth=False) as server:
        yield server


def on_socket(clamd: ClamdServer, **extra: Any) -> dict[str, Any]:
    return {"socket": str(clamd.socket_path), **extra}


def on_tcp(clamd: ClamdServer, **extra: Any) -> dict[str, Any]:
    return {"host": clamd.host, "port": clamd.port, **extra}


def nobody_listening(**extra: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": free_port(), **extra}


Site = tuple[ClipSyncApp, httpx.AsyncClient, str]


@pytest.fixture
def site(start_app, make_settings, migrated_sqlite: Path) -> Callable[..., Any]:
    """`await site(scan_table, **tables)`: an app scanning with that table, and a user."""

    async def make(scan: dict[str, Any], **tables: Any) -> Site:
        plugins = {"scan_clamav": scan, **tables.pop("plugins", {})}
        settings = make_settings(plugins=plugins, **tables)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated_sqlite, settings.data_dir / "clipsync.sqlite3")
        app, client = await start_app(settings)
        token = (await register(client, "uploader@example.org"))["token"]
        return app, client, token

    return make


def with_free_box(path: Path, payload: bytes) -> Path:
    """The landscape clip with `payload` in a `free` box at its end: it still plays."""
    box = (8 + len(payload)).to_bytes(4, "big") + b"free" + payload
    path.write_bytes(make_clip("landscape").read_bytes() + box)
    return path


@pytest.fixture
def infected(tmp_path: Path) -> Path:
    """A clip that plays and holds EICAR's test string."""
    return with_free_box(tmp_path / "infected.mp4", EICAR)


def padded(tmp_path: Path, size: int) -> Path:
    """A clean clip that plays, `size` bytes long."""
    clip = make_clip("landscape").stat().st_size
    return with_free_box(tmp_path / "padded.mp4", bytes(size - clip - 8))


def stored_files(app: ClipSyncApp) -> list[Path]:
    root = app.ctx.settings.data_dir / "media"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def register_upload(client: httpx.AsyncClient, token: str, video_id: str) -> httpx.Response:
    return await client.post(
        "/api/videos/register",
        json={"videoId": video_id, "title": "Scanned", "description": ""},
        headers=bearer(token),
    )


def error_of(response: httpx.Response) -> dict[str, Any]:
    return response.json()["error"]


async def audit(action: str) -> list[AuditEntry]:
    return await AuditEntry.filter(action=action)


# --- the verdicts --------------------------------------------------------------------------


async def test_a_clean_upload_is_scanned_and_accepted(site, clamd_server: ClamdServer) -> None:
    _app, client, token = await site(on_socket(clamd_server))
    before = len(clamd_server.scans())
    response = await upload_and_register(client, token, make_clip("landscape"))
    assert response.status_code == 201, response.text
    assert response.json()["video"]["status"] == "PROCESSING"
    assert clamd_server.scans()[before:] == ["instream(local): OK"]
    assert await AuditEntry.all().count() == 0


async def test_an_infected_upload_is_refused_by_name_and_nothing_is_kept(
    site, clamd_server: ClamdServer, infected: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app, client, token = await site(on_socket(clamd_server))
    caplog.set_level(logging.WARNING, logger="clipsync_scan_clamav")
    uploaded = await upload(client, token, infected)
    assert uploaded.status_code == 201, uploaded.text
    video_id = uploaded.json()["videoId"]

    refused = await register_upload(client, token, video_id)
    assert refused.status_code == 422, refused.text
    assert error_of(refused)["message"] == REFUSED
    assert await Video.all().count() == 0
    assert stored_files(app) == []
    (entry,) = await audit("upload_infected")
    assert entry.actor_email == "uploader@example.org"
    assert entry.details["signature"].startswith("Eicar-Test-Signature")
    assert entry.details["videoId"] == video_id
    assert "Eicar-Test-Signature" in caplog.text
    # Gone for good: registering it again finds nothing.
    assert (await register_upload(client, token, video_id)).status_code == 404


async def test_tus_uploads_are_scanned_over_tcp(site, clamd_server: ClamdServer, infected) -> None:
    app, client, token = await site(on_tcp(clamd_server))
    tus = {"Tus-Resumable": "1.0.0", **bearer(token)}

    async def send(data: bytes) -> str:
        name = base64.b64encode(b"clip.mp4").decode()
        created = await client.post(
            "/api/uploads/",
            headers={**tus, "Upload-Length": str(len(data)), "Upload-Metadata": f"filename {name}"},
        )
        assert created.status_code == 201, created.text
        url = created.headers["location"]
        for offset in range(0, len(data), 400_000):
            sent = await client.patch(
                url,
                content=data[offset : offset + 400_000],
                headers={
                    **tus,
                    "Content-Type": "application/offset+octet-stream",
                    "Upload-Offset": str(offset),
                },
            )
            assert sent.status_code == 204, sent.text
        return url.rsplit("/", 1)[1]

    clean = await register_upload(client, token, await send(make_clip("landscape").read_bytes()))
    assert clean.status_code == 201, clean.text

    video_id = await send(infected.read_bytes())
    assert (await Video.get(id=video_id)).status == VideoStatus.UPLOADED
    refused = await register_upload(client, token, video_id)
    assert refused.status_code == 422 and error_of(refused)["message"] == REFUSED
    assert not await Video.exists(id=video_id)
    assert [p.parent.name for p in stored_files(app)] == [clean.json()["video"]["id"]]


async def test_a_direct_upload_to_s3_is_scanned_and_deleted_from_the_bucket(
    site, clamd_server: ClamdServer, open_s3: S3Server, infected: Path
) -> None:
    bucket = f"scan-{uuid.uuid4().hex[:12]}"
    app, client, token = await site(
        on_socket(clamd_server),
        storage={"backend": "s3"},
        plugins={"storage_s3": open_s3.plugin_table(bucket=bucket, prefix="media")},
    )
    data = infected.read_bytes()
    answer = await client.post(
        "/api/upload/presigned-url",
        json={"filename": "clip.mp4", "size": len(data), "contentType": "video/mp4"},
        headers=bearer(token),
    )
    assert answer.status_code == 201, answer.text
    file_key = answer.json()["fileKey"]
    async with httpx.AsyncClient(trust_env=False) as http:
        put = await http.put(
            answer.json()["uploadUrl"], content=data, headers={"Content-Type": "video/mp4"}
        )
    assert put.status_code == 200
    s3 = app.ctx.backends.storage.client
    assert list(s3.list_objects(bucket, prefix="media/", recursive=True))

    refused = await client.post(
        "/api/videos/register", json={"fileKey": file_key, "title": "x"}, headers=bearer(token)
    )
    assert refused.status_code == 422 and error_of(refused)["message"] == REFUSED
    assert list(s3.list_objects(bucket, prefix="media/", recursive=True)) == []
    assert await Video.all().count() == 0


# --- no verdict: clamd away, or the file too large -------------------------------------------


async def test_clamd_down_refuses_with_503_and_keeps_the_upload_until_it_is_back(
    site, clamd_server: ClamdServer
) -> None:
    app, client, token = await site(on_socket(clamd_server))
    uploaded = await upload(client, token, make_clip("landscape"))
    video_id = uploaded.json()["videoId"]
    clamd_server.stop(keep_data=True)
    try:
        refused = await register_upload(client, token, video_id)
    finally:
        clamd_server.start()
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "5"
    assert error_of(refused)["code"] == "scanner_unavailable"
    assert "virus scanner is not answering" in error_of(refused)["message"]
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.UPLOADED and len(stored_files(app)) == 1

    again = await register_upload(client, token, video_id)
    assert again.status_code == 201, again.text


async def test_a_clamd_that_does_not_answer_is_given_up_after_the_timeout(
    site, clamd_server: ClamdServer
) -> None:
    _app, client, token = await site(on_tcp(clamd_server, timeout_seconds=1))
    uploaded = await upload(client, token, make_clip("landscape"))
    clamd_server.pause()
    try:
        started = time.monotonic()
        refused = await register_upload(client, token, uploaded.json()["videoId"])
        waited = time.monotonic() - started
    finally:
        clamd_server.resume()
    assert refused.status_code == 503 and error_of(refused)["code"] == "scanner_unavailable"
    assert waited < 10


async def test_clamd_down_with_accept_lets_the_upload_through_and_flags_it(
    site, caplog: pytest.LogCaptureFixture
) -> None:
    _app, client, token = await site(nobody_listening(when_unavailable="accept"))
    caplog.set_level(logging.WARNING, logger="clipsync_scan_clamav")
    response = await upload_and_register(client, token, make_clip("landscape"))
    assert response.status_code == 201, response.text
    video_id = response.json()["video"]["id"]
    (entry,) = await audit("upload_not_scanned")
    assert str(entry.video_id) == video_id and entry.category == "general"
    assert "cannot be reached" in entry.reason
    assert f"upload {video_id} accepted WITHOUT a virus scan" in caplog.text


async def test_a_file_over_max_bytes_is_refused_unscanned(site, clamd_server: ClamdServer) -> None:
    app, client, token = await site(on_socket(clamd_server, max_bytes=500_000))
    clip = make_clip("landscape")
    assert clip.stat().st_size > 500_000
    refused = await upload_and_register(client, token, clip)
    assert refused.status_code == 422, refused.text
    message = error_of(refused)["message"]
    assert "files over 488.3 KiB cannot be checked for viruses here" in message
    assert await Video.all().count() == 0 and stored_files(app) == []


async def test_a_file_over_max_bytes_is_accepted_and_flagged_with_accept(
    site, clamd_server: ClamdServer
) -> None:
    _app, client, token = await site(
        on_socket(clamd_server, max_bytes=500_000, when_unavailable="accept")
    )
    response = await upload_and_register(client, token, make_clip("landscape"))
    assert response.status_code == 201, response.text
    (entry,) = await audit("upload_not_scanned")
    assert "larger than max_bytes (500000 bytes)" in entry.reason


async def test_a_file_over_clamds_stream_limit_is_refused(
    site, clamd_server: ClamdServer, tmp_path: Path
) -> None:
    app, client, token = await site(on_socket(clamd_server))
    refused = await upload_and_register(client, token, padded(tmp_path, STREAM_MAX + MiB))
    assert refused.status_code == 422, refused.text
    assert "larger than the virus scanner here can check" in error_of(refused)["message"]
    assert await Video.all().count() == 0 and stored_files(app) == []


async def test_a_file_clamd_did_not_scan_whole_is_refused(site, tmp_path: Path) -> None:
    # With AlertExceedsMax, clamd reports what it did not scan instead of saying OK.
    options = {"MaxFileSize": "2M", "MaxScanSize": "2M", "AlertExceedsMax": "yes"}
    with ClamdServer(options=options) as limited:
        app, client, token = await site(on_socket(limited))
        refused = await upload_and_register(client, token, padded(tmp_path, 3 * MiB))
        assert limited.scans()[-1].startswith("instream(local): Heuristics.Limits.Exceeded")
    assert refused.status_code == 422, refused.text
    assert "larger than the virus scanner here can check" in error_of(refused)["message"]
    assert await Video.all().count() == 0 and stored_files(app) == []


def test_the_size_limit_reply_is_read_when_clamd_hangs_up_while_the_file_is_sent(
    tmp_path: Path,
) -> None:
    # clamd answers "size limit exceeded" and closes while the client is still writing.
    # Whichever comes first, the failed write or the reply, the reply must be read: a
    # stream transport dropped it about one time in six ("Broken pipe" -> unavailable).
    # A thread stands in for clamd so that its hang-up races the writes hundreds of times.
    path = str(tmp_path / "clamd.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(1)
    rounds = 400

    def clamd_stand_in() -> None:
        for _ in range(rounds):
            conn, _addr = listener.accept()
            with conn:
                got = 0
                while got < 2 * MiB:
                    got += len(conn.recv(65536))
                conn.sendall(b"INSTREAM size limit exceeded. ERROR\0")

    async def scans() -> dict[str, int]:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(40):
                yield bytes(256 * 1024)

        outcomes: dict[str, int] = {}
        for _ in range(rounds):
            try:
                await clamd.instream(clamd.Address(socket=path), chunks(), 10)
                outcome = "clean"
            except Exception as exc:  # counted, and shown if not the size limit
                outcome = f"{type(exc).__name__}: {exc}"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        return outcomes

    thread = threading.Thread(target=clamd_stand_in, daemon=True)
    thread.start()
    try:
        outcomes = asyncio.run(scans())
    finally:
        listener.close()
    assert outcomes == {"StreamTooLarge: INSTREAM size limit exceeded. ERROR": rounds}


# --- configuration, the doctor's probe, the hook ------------------------------------------


async def test_without_socket_or_host_nothing_is_scanned(site, infected: Path) -> None:
    _app, client, token = await site({})
    response = await upload_and_register(client, token, infected)
    assert response.status_code == 201, response.text


def test_settings_are_checked_at_start_up(make_settings) -> None:
    cases = [
        ({"socket": "/run/clamd.ctl", "host": "127.0.0.1"}, "set socket or host, not both"),
        ({"host": "127.0.0.1", "when_unavailable": "maybe"}, "when_unavailable"),
        ({"host": "127.0.0.1", "max_bytes": 0}, "max_bytes must be greater than 0"),
        ({"host": "127.0.0.1", "port": 70000}, "port must be between 1 and 65535"),
        ({"sockets": "/run/clamd.ctl"}, "has no setting 'sockets'"),
    ]
    for table, problem in cases:
        with pytest.raises(ConfigError, match=problem):
            create_plugin_host(make_settings(plugins={"scan_clamav": table}))


async def test_probe_says_whether_clamd_answers_ping(make_settings, clamd_server) -> None:
    probe = create_plugin_host(make_settings()).pm.get_plugin("scan_clamav").probe

    def host(table: dict[str, Any]) -> Any:
        return create_plugin_host(make_settings(plugins={"scan_clamav": table}))

    assert await probe(host({})) is None
    answer = await probe(host(on_socket(clamd_server)))
    assert answer.ok and "answers PING" in answer.reason
    answer = await probe(host(on_tcp(clamd_server)))
    assert answer.ok and f"{clamd_server.port}" in answer.reason
    answer = await probe(host(nobody_listening()))
    assert not answer.ok and "cannot be reached" in answer.reason and "refused" in answer.reason


async def test_hook_doctor_checks_report_clamd(make_settings, clamd_server) -> None:
    async def check(table: dict[str, Any]) -> doctor.Check:
        host = create_plugin_host(make_settings(plugins={"scan_clamav": table}))
        [found] = [c for c in await doctor.check_plugins(host) if c.name == "virus scanner"]
        return found

    off = await check({})
    assert (off.ok, off.required) == (False, False) and "off" in off.detail
    on = await check(on_socket(clamd_server))
    assert on.ok and on.required and "answers PING" in on.detail
    down = await check(nobody_listening())
    assert down.failed and "cannot be reached" in down.detail


async def test_hook_validate_upload_gets_the_local_file_and_the_plugin_host(site) -> None:
    app, client, token = await site({})
    seen: list[Any] = []

    class Reader:
        @hookimpl
        def validate_upload(self, video, source, path, plugins):
            seen.append((hashlib.sha256(path.read_bytes()).hexdigest(), plugins, source.width))

    app.ctx.plugins.pm.register(Reader(), name="reader")
    try:
        clip = make_clip("landscape")
        response = await upload_and_register(client, token, clip)
        assert response.status_code == 201, response.text
    finally:
        app.ctx.plugins.pm.unregister(name="reader")
    assert seen == [(hashlib.sha256(clip.read_bytes()).hexdigest(), app.ctx.plugins, 640)]
