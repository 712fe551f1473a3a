"""The whole video path with real processes: the job consumer under `clipsync worker`
(SQLite and Redis queues) and under `clipsync serve`, and ffmpeg as an HLS client."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import LiveServer
from clients import PASSWORD, bearer, play_with_ffmpeg, register, upload_and_register
from clips import FFMPEG, make_clip, run

from clipsync.models import Video, VideoStatus
from clipsync.settings import load_settings

LADDER = """
[transcoder]
ladder = [{ height = 144, bitrate = 150 }, { height = 240, bitrate = 300 }]
max_attempts = 2
retry_delay_seconds = 0
"""


def write_config(folder: Path, extra: str = "") -> Path:
    path = folder / "config.toml"
    path.write_text(
        # The test client's name (conftest's base_url) is this server's public name.
        '[server]\npublic_url = "http://clipsync.test"\n'
        f'[paths]\ndata_dir = "data"\n[plugins.auth_local]\nbcrypt_rounds = 4\n{LADDER}{extra}'
    )
    return path


async def migrated_app(tmp_path: Path, start_app, extra: str = "") -> tuple[Path, Any, Any]:
    """A config file, `clipsync migrate` run on it, and the app (with its client) on it."""
    config = write_config(tmp_path, extra)
    subprocess.run(
        [sys.executable, "-m", "clipsync", "--config", str(config), "migrate"], check=True
    )
    app, client = await start_app(load_settings(config, environ={}))
    return config, app, client


class Worker:
    """`clipsync worker` in a process of its own, stopped with SIGINT (graceful)."""

    def __init__(self, config: Path) -> None:
        self.log = config.parent / "worker.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "clipsync", "--config", str(config), "worker"],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise


async def wait_for_status(video_id: str, *statuses: VideoStatus, timeout: float = 90) -> Video:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        video = await Video.get(id=video_id)
        if video.status in statuses:
            return video
        await asyncio.sleep(0.5)
    raise AssertionError(f"video {video_id} is still {video.status} ({video.error})")


@pytest.mark.parametrize("queue", ["sqlite", "redis"])
async def test_clipsync_worker_transcodes_from_the_queue(
    queue: str, tmp_path: Path, start_app, request: pytest.FixtureRequest
) -> None:
    extra = ""
    if queue == "redis":
        redis_url = request.getfixturevalue("redis_server").url
        extra = f'[queue]\nbackend = "redis"\nredis_url = "{redis_url}"\n'
    config, _, client = await migrated_app(tmp_path, start_app, extra)
    worker = Worker(config)
    try:
        token = (await register(client, "w@example.org"))["token"]
        response = await upload_and_register(client, token, make_clip("landscape"))
        video = await wait_for_status(
            response.json()["video"]["id"], VideoStatus.READY, VideoStatus.FAILED
        )
        assert video.status == VideoStatus.READY, video.error
        assert video.progress == 100
    finally:
        code = worker.stop()
    assert code == 0, worker.log.read_text()[-2000:]


async def test_the_worker_retries_then_marks_failed_with_a_reason(
    tmp_path: Path, start_app
) -> None:
    config, app, client = await migrated_app(tmp_path, start_app)
    token = (await register(client, "w@example.org"))["token"]
    response = await upload_and_register(client, token, make_clip("landscape"))
    video = await Video.get(id=response.json()["video"]["id"])
    app.ctx.backends.storage.path(video.source_key).write_bytes(b"\x00" * 4096)
    worker = Worker(config)
    try:
        video = await wait_for_status(str(video.id), VideoStatus.FAILED)
    finally:
        worker.stop()
    assert video.attempts == 2
    assert video.error.startswith("Transcoding failed:")


async def test_ctrl_c_reaching_the_worker_twice_still_lets_the_running_job_finish(
    tmp_path: Path, start_app
) -> None:
    """A terminal's Ctrl-C and Sanic's manager both send SIGINT: one graceful stop."""
    config, _, client = await migrated_app(tmp_path, start_app)
    token = (await register(client, "w@example.org"))["token"]
    clip = tmp_path / "long.mp4"
    run([
        FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=40",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clip),
    ])  # fmt: skip
    response = await upload_and_register(client, token, clip)
    video_id = response.json()["video"]["id"]
    worker = Worker(config)
    try:
        deadline = time.monotonic() + 60
        while not (await Video.get(id=video_id)).progress:
            assert time.monotonic() < deadline, worker.log.read_text()[-2000:]
            await asyncio.sleep(0.1)
        os.killpg(worker.process.pid, signal.SIGINT)
        await asyncio.sleep(0.05)
        os.killpg(worker.process.pid, signal.SIGINT)
        code = await asyncio.to_thread(worker.process.wait, 120)
    finally:
        if worker.process.poll() is None:
            os.killpg(worker.process.pid, signal.SIGKILL)
    log = worker.log.read_text()
    assert code == 0, log[-2000:]
    assert "still finishing the jobs" in log, log[-2000:]
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.READY, (video.status, video.error, log[-2000:])


def test_serve_transcodes_and_ffmpeg_plays_the_stream_only_with_credentials(tmp_path: Path) -> None:
    with (
        LiveServer(tmp_path, extra_toml=LADDER) as server,
        httpx.Client(base_url=server.base_url) as http,
    ):
        token = http.post(
            "/api/auth/register", json={"email": "e@example.org", "password": PASSWORD}
        ).json()["token"]
        with make_clip("landscape").open("rb") as fh:
            uploaded = http.post(
                "/api/videos/upload-local",
                files={"file": ("clip.mp4", fh, "video/mp4")},
                headers=bearer(token),
            )
        video_id = uploaded.json()["videoId"]
        http.post(
            "/api/videos/register",
            json={"videoId": video_id, "title": "Served"},
            headers=bearer(token),
        ).raise_for_status()

        # Live status, as the "My videos" page receives it.
        statuses = []
        with http.stream("GET", "/api/videos/events", headers=bearer(token), timeout=120) as events:
            for line in events.iter_lines():
                if line.startswith("data: "):
                    data = json.loads(line[6:])
                    statuses.append(data["status"])
                    if data["status"] in ("READY", "FAILED"):
                        break
        assert statuses[-1] == "READY", statuses
        assert statuses[0] == "PROCESSING"

        master = f"{server.base_url}/hls/{video_id}/master.m3u8"
        allowed = play_with_ffmpeg(master, token)
        assert allowed.returncode == 0, allowed.stderr
        refused = play_with_ffmpeg(master)
        assert refused.returncode != 0 and "401" in refused.stderr
