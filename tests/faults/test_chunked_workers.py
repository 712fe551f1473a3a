"""Chunked transcoding on real `clipsync worker` processes sharing a Redis queue.

Two workers share one long video's chunks; a worker killed in the middle of a chunk
(its ffmpeg frozen first, as in test_killed_workers.py) costs that chunk alone: the
other worker's reaper sees the dead consumer and queues the chunk again, and every
other chunk is made once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from browser import LiveServer
from faults.processes import (
    Api,
    Worker,
    alive,
    fast_jobs_toml,
    ffmpeg_pids,
    freeze,
    kill_all,
    running,
    wait_for,
)
from services import RedisServer
from test_chunked_transcoding import make_long_clip

pytestmark = pytest.mark.faults


@pytest.fixture
def redis() -> RedisServer:
    with RedisServer() as server:
        yield server


class NamedWorker(Worker):
    """A `clipsync worker` with a log of its own, so two can run on one config."""

    def __init__(self, server: LiveServer, name: str) -> None:
        super().__init__(server)
        self.name = name

    @property
    def log_path(self) -> Path:
        return self.server.workdir / f"worker-{self.name}.log"

    def chunks_done(self, video_id: str) -> int:
        text = self.log_path.read_text(errors="replace")
        return sum(1 for line in text.splitlines() if f"of {video_id} done by consumer" in line)


def chunked_toml(redis: RedisServer) -> str:
    return fast_jobs_toml(
        queue=f'backend = "redis"\nredis_url = "{redis.url}"\nrun_in_server = false',
        transcoder="segment_seconds = 2\nchunk_seconds = 2",
    )


def chunk_rows(data_dir: Path, video_id: str) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(data_dir / "clipsync.sqlite3", timeout=10)) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            'SELECT * FROM transcode_chunks WHERE video_id = ? ORDER BY "index"', (video_id,)
        ).fetchall()
    return [dict(row) for row in rows]


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


@pytest.fixture
def two_workers(tmp_path: Path, redis: RedisServer):
    server = LiveServer(tmp_path / "site", chunked_toml(redis))
    server.write_config()
    workers = [NamedWorker(server, "a"), NamedWorker(server, "b")]
    try:
        for worker in workers:
            worker.start()
        with running(server):
            yield server, workers
    finally:
        for worker in workers:
            worker.stop()
        kill_all(ffmpeg_pids(str(tmp_path)))


def test_two_workers_share_one_videos_chunks(two_workers, tmp_path: Path) -> None:
    server, workers = two_workers
    api = Api(server)
    video_id = api.upload_and_register(make_long_clip("landscape", tmp_path))
    video = api.wait_until_ready(video_id)
    assert video["chunks"] == 6 and video["error"] is None
    done = [worker.chunks_done(video_id) for worker in workers]
    assert sum(done) == 6 and all(done), (done, workers[0].log(), workers[1].log())
    rows = chunk_rows(server.data_dir, video_id)
    assert [row["attempts"] for row in rows] == [1] * 6
    assert {row["status"] for row in rows} == {"JOINED"}


def test_a_worker_killed_mid_chunk_costs_that_chunk_alone(two_workers, tmp_path: Path) -> None:
    server, workers = two_workers
    api = Api(server)
    video_id = api.upload_and_register(make_long_clip("landscape", tmp_path))
    # A chunk's ffmpeg (its scratch folder is `chunk-<n>`), frozen where it is.
    ffmpeg = wait_for(
        "a chunk's ffmpeg",
        lambda: [pid for pid in ffmpeg_pids(video_id) if parent_of(pid) > 1],
    )[0]
    freeze(ffmpeg)
    owner = next(w for w in workers if w.process and w.process.pid == parent_of(ffmpeg))
    owner.signal(signal.SIGKILL)
    owner.wait()
    wait_for("the frozen ffmpeg to die with its worker", lambda: not alive(ffmpeg), timeout=10)
    video = api.wait_until_ready(video_id)
    assert video["status"] == "READY" and video["chunks"] == 6
    rows = chunk_rows(server.data_dir, video_id)
    attempts = sorted(row["attempts"] for row in rows)
    # The killed chunk was made twice, every other chunk once.
    assert attempts == [1, 1, 1, 1, 1, 2], rows
    survivor = next(w for w in workers if w is not owner)
    assert "was left by a job that stopped: queued again" in survivor.log_path.read_text()
    assert not alive(ffmpeg) and os.path.exists(survivor.log_path)
