"""A disk that fills up: uploads and transcodes are refused up front, never half-done.

The data directory (database, queue, staged uploads, scratch, local media) lives on
a 64 MiB tmpfs of its own, a real file system that really fills: a filler file
takes all of its room but what a test leaves. Mounting needs root (or
CAP_SYS_ADMIN); where that is refused these tests skip, except under CI=true, where
they fail. The arithmetic of the checks is tested with the free space of the real
disk; the real ENOSPC path is taken by writes that overrun it (a chunked upload
with no Content-Length, ffmpeg writing renditions).
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from clients import PASSWORD, bearer, register, upload, upload_and_register
from clips import run

from clipsync.context import ClipSyncApp
from clipsync.models import ResumableUpload, Role, Video, VideoStatus
from clipsync.services import disk_space
from clipsync.services.transcoding import JobContext, run_transcode

pytestmark = pytest.mark.faults

MiB = 1024 * 1024
DISK_MIB = 64
RESERVE_MIB = 16
TUS = {"Tus-Resumable": "1.0.0"}
# One rendition at a high bitrate, so that the output of a short clip is a few MiB.
BIG_RUNG = {"ladder": [{"height": 360, "bitrate": 8000}]}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs mounted for this test alone."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MIB}m,mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount_point
    finally:
        # Lazily: a process of the test may still hold a file open on it.
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def free_bytes(folder: Path) -> int:
    return disk_space.room(folder).free


def fill(disk: Path, leave: int) -> Path:
    """Take every byte of `disk` but `leave` with one file (replacing an earlier one)."""
    filler = disk / "filler"
    filler.unlink(missing_ok=True)
    size = free_bytes(disk) - leave
    assert size > 0, f"only {free_bytes(disk)} bytes free, cannot leave {leave}"
    with filler.open("wb") as fh:
        os.posix_fallocate(fh.fileno(), 0, size)
    return filler


def noisy_clip(folder: Path) -> Path:
    """4 s of 640x360 with noise, which no encoder squeezes: renditions of a few MiB."""
    out = folder / "noisy.mp4"
    if not out.exists():
        run([
            "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=4",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=4",
            "-vf", "noise=alls=40:allf=t", "-c:v", "libx264", "-preset", "ultrafast",
            "-pix_fmt", "yuv420p", "-b:v", "4M", "-c:a", "aac", "-shortest", str(out),
        ])  # fmt: skip
    return out


@pytest.fixture
async def site_on_disk(
    small_disk: Path, start_app, make_settings, migrated_sqlite: Path
) -> AsyncIterator:
    """`start(reserve_mb, **tables)`: a ClipSync whose data directory is on the tmpfs."""

    async def start(
        reserve_mb: int = RESERVE_MIB, **tables
    ) -> tuple[ClipSyncApp, httpx.AsyncClient]:
        settings = make_settings(
            paths={"data_dir": str(small_disk / "data")}, disk={"reserve_mb": reserve_mb}, **tables
        )
        settings.data_dir.mkdir(parents=True)
        (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
        return await start_app(settings)

    yield start


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


async def create_tus(client: httpx.AsyncClient, token: str, length: int) -> httpx.Response:
    return await client.post(
        "/api/uploads/",
        headers={
            **TUS,
            **bearer(token),
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(filename="clip.mp4", filetype="video/mp4"),
        },
    )


def assert_not_enough_storage(response: httpx.Response, needed: int) -> dict:
    assert response.status_code == 507, response.text
    error = response.json()["error"]
    assert error["code"] == "insufficient_storage"
    assert error["needed"] >= needed
    assert error["reserve"] == RESERVE_MIB * MiB
    assert error["free"] - error["needed"] < error["reserve"]
    assert error["message"].startswith("Not enough storage")
    assert f"keeps {RESERVE_MIB} MiB of it in reserve" in error["message"]
    return error


async def test_a_resumable_upload_bigger_than_the_room_above_the_reserve_is_refused_with_507(
    site_on_disk,
) -> None:
    app, client = await site_on_disk()
    token = (await register(client, "uploader@example.org"))["token"]
    too_big = (DISK_MIB - RESERVE_MIB) * MiB  # more than is free above the reserve
    refused = await create_tus(client, token, too_big)
    assert_not_enough_storage(refused, too_big)
    assert await ResumableUpload.all().count() == 0
    staging = app.ctx.settings.data_dir / "uploads"
    assert not staging.exists() or not any(staging.iterdir())

    assert (await create_tus(client, token, 1 * MiB)).status_code == 201


async def test_bytes_promised_to_unfinished_uploads_count_as_used(site_on_disk) -> None:
    _app, client = await site_on_disk()
    token = (await register(client, "uploader@example.org"))["token"]
    first = await create_tus(client, token, 25 * MiB)
    assert first.status_code == 201, first.text
    # Nothing of the first has arrived yet, but it will: 25 + 25 + 16 > 64.
    assert_not_enough_storage(await create_tus(client, token, 25 * MiB), 50 * MiB)
    gone = await client.delete(first.headers["Location"], headers={**TUS, **bearer(token)})
    assert gone.status_code == 204
    assert (await create_tus(client, token, 25 * MiB)).status_code == 201


async def test_a_form_upload_bigger_than_the_room_is_refused_before_a_byte_is_stored(
    site_on_disk, tmp_path: Path
) -> None:
    app, client = await site_on_disk()
    token = (await register(client, "uploader@example.org"))["token"]
    big = tmp_path / "big.mp4"
    with big.open("wb") as fh:
        fh.truncate(50 * MiB)
    before = free_bytes(app.ctx.settings.data_dir)
    assert_not_enough_storage(await upload(client, token, big), 50 * MiB)
    media = app.ctx.settings.data_dir / "media"
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))
    assert free_bytes(app.ctx.settings.data_dir) >= before - MiB


async def test_a_write_that_finds_the_disk_full_answers_507_and_keeps_nothing(
    site_on_disk, small_disk: Path
) -> None:
    """The real ENOSPC path: a chunked upload declares no size, so no check can stop it."""
    app, client = await site_on_disk(reserve_mb=0)
    token = (await register(client, "uploader@example.org"))["token"]
    filler = fill(small_disk, leave=2 * MiB)
    boundary = "clipsync-test-boundary"

    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="clip.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
        ).encode()
        for _ in range(8):  # 8 MiB into 2
            yield b"\0" * MiB
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await client.post(
        "/api/videos/upload-local",
        content=body(),
        headers={**bearer(token), "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 507, response.text
    error = response.json()["error"]
    assert error["code"] == "insufficient_storage"
    assert "disk is full" in error["message"]
    media = app.ctx.settings.data_dir / "media"
    assert not any(p.is_file() for p in media.rglob("*"))  # no .part, no source
    assert await Video.all().count() == 0

    filler.unlink()
    signed_in = await client.post(
        "/api/auth/login", json={"email": "uploader@example.org", "password": PASSWORD}
    )
    assert signed_in.status_code == 200, signed_in.text


async def test_ready_reports_low_disk_while_sign_in_keeps_working(
    site_on_disk, small_disk: Path
) -> None:
    app, client = await site_on_disk()
    admin = await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    admin_token = app.ctx.accounts.start_session(admin).token
    token = (await register(client, "uploader@example.org"))["token"]

    async def ready() -> httpx.Response:
        return await client.get("/healthz/ready", headers=bearer(admin_token))

    healthy = await ready()
    assert healthy.json()["checks"]["disk"]["ok"] is True, healthy.text

    filler = fill(small_disk, leave=(RESERVE_MIB - 6) * MiB)  # inside the reserve
    low = await ready()
    assert low.status_code == 503 and low.json()["status"] == "failing"
    disk = low.json()["checks"]["disk"]
    assert disk["ok"] is False and disk["reserve"] == RESERVE_MIB * MiB
    assert disk["free"] < disk["reserve"]
    assert "uploads and transcodes are refused" in disk["error"]
    # Nothing new lands on the disk, but what the database must write still does.
    assert_not_enough_storage(await create_tus(client, token, 1 * MiB), 1 * MiB)
    signed_in = await client.post(
        "/api/auth/login", json={"email": "uploader@example.org", "password": PASSWORD}
    )
    assert signed_in.status_code == 200, signed_in.text

    filler.unlink()
    back = await ready()
    checks = back.json()["checks"]
    assert checks["disk"]["ok"] is True
    assert (back.status_code == 200) == all(check["ok"] for check in checks.values())


def job_context(app: ClipSyncApp) -> JobContext:
    return JobContext(app.ctx.settings, app.ctx.plugins, app.ctx.backends)


async def registered_video(client: httpx.AsyncClient, clip: Path, email: str) -> str:
    token = (await register(client, email))["token"]
    response = await upload_and_register(client, token, clip)
    assert response.status_code == 201, response.text
    return response.json()["video"]["id"]


def tree_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


async def test_a_transcode_without_room_for_its_output_fails_with_the_disk_is_full(
    site_on_disk, small_disk: Path, tmp_path: Path
) -> None:
    app, client = await site_on_disk(transcoder=BIG_RUNG)
    video_id = await registered_video(client, noisy_clip(tmp_path), "uploader@example.org")
    video = await Video.get(id=video_id)
    needed = disk_space.transcode_estimate(app.ctx.settings, video)
    fill(small_disk, leave=RESERVE_MIB * MiB + needed // 2)

    await run_transcode(job_context(app), video_id, final_attempt=True)

    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.FAILED
    assert "the disk is full" in video.error
    assert f"{RESERVE_MIB} MiB are kept in reserve" in video.error
    assert not (app.ctx.settings.data_dir / "scratch" / video_id).exists()
    assert not (app.ctx.settings.data_dir / "media" / "videos" / video_id / "hls").exists()


async def test_a_transcode_that_runs_out_of_space_fails_with_the_disk_is_full(
    site_on_disk, small_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The estimate let it start (another program filled the disk meanwhile, say)."""
    app, client = await site_on_disk(reserve_mb=0, transcoder=BIG_RUNG)
    video_id = await registered_video(client, noisy_clip(tmp_path), "uploader@example.org")
    monkeypatch.setattr(disk_space, "transcode_estimate", lambda settings, video: 0)
    fill(small_disk, leave=512 * 1024)  # the renditions need about 3.5 MiB

    await run_transcode(job_context(app), video_id, final_attempt=True)

    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.FAILED
    assert "the disk is full" in video.error, video.error
    assert "unexpected" not in video.error
    assert not (app.ctx.settings.data_dir / "scratch" / video_id).exists()


async def test_the_transcoded_output_is_moved_into_media_not_copied(
    site_on_disk, small_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for one and a half outputs a transcode succeeds: no second copy is made."""
    app, client = await site_on_disk(reserve_mb=0, transcoder=BIG_RUNG)
    media = app.ctx.settings.data_dir / "media" / "videos"
    clip = noisy_clip(tmp_path)
    first = await registered_video(client, clip, "first@example.org")
    await run_transcode(job_context(app), first, final_attempt=True)
    assert (await Video.get(id=first)).status == VideoStatus.READY
    output = tree_size(media / first / "hls")
    assert output > 2 * MiB  # big enough that half of it is far more than the slack

    second = await registered_video(client, clip, "second@example.org")
    monkeypatch.setattr(disk_space, "transcode_estimate", lambda settings, video: 0)
    # One output and a half, plus room for the database's few writes.
    fill(small_disk, leave=output * 3 // 2 + 256 * 1024)
    await run_transcode(job_context(app), second, final_attempt=True)

    video = await Video.get(id=second)
    assert video.status == VideoStatus.READY, video.error
    assert tree_size(media / second / "hls") > output * 9 // 10
    assert not (app.ctx.settings.data_dir / "scratch" / second).exists()
