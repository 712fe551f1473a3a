"""Killed job consumers: the video is READY after the restart plus one transcode.

Each test kills a real consumer in the middle of a real transcode, the way an
operator's server dies (SIGKILL, the OOM killer) or is stopped (SIGTERM), and checks
what issue 12 promises: the video becomes READY without waiting minutes for a reaper,
it is never transcoded by two jobs at once, and no ffmpeg outlives its consumer.

ffmpeg is frozen (SIGSTOP) before its consumer is killed, so the test sees whether it
dies with its consumer however fast this machine encodes: a frozen orphan would stay
forever.

The `[fault-timing]` lines these tests print (run with `-s`) are the figures in
docs/operations.md.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from browser import LiveServer
from clips import Clips, clips_fixture  # noqa: F401  (the `clips` fixture)
from faults.processes import (
    Api,
    FfmpegWatch,
    Timeline,
    Worker,
    alive,
    database_row,
    fast_jobs_toml,
    ffmpeg_pids,
    freeze,
    in_server_consumers,
    kill_all,
    one_consumer,
    running,
    wait_for,
)
from services import RedisServer

pytestmark = pytest.mark.faults


@pytest.fixture
def redis() -> RedisServer:
    """A Redis of this test's own: consumers and queued jobs of other tests stay out."""
    with RedisServer() as server:
        yield server


def redis_worker_toml(redis: RedisServer) -> str:
    return fast_jobs_toml(
        queue=f'backend = "redis"\nredis_url = "{redis.url}"\nrun_in_server = false'
    )


def transcoding_ffmpeg(video_id: str) -> list[int]:
    return wait_for(f"ffmpeg to transcode {video_id}", lambda: ffmpeg_pids(video_id))


def assert_dies_with_its_consumer(ffmpeg: list[int]) -> None:
    try:
        wait_for(
            "the killed consumer's ffmpeg to die with it",
            lambda: not any(alive(pid) for pid in ffmpeg),
            timeout=10,
        )
    finally:
        kill_all(ffmpeg)  # an orphan must not outlive the test either


def test_a_killed_in_server_consumer_is_restarted_and_its_video_gets_ready(
    tmp_path: Path, clips: Clips
) -> None:
    server = LiveServer(tmp_path / "site", fast_jobs_toml())
    timeline = Timeline("SIGKILL of the consumer under clipsync serve (SQLite queue)")
    with running(server):
        api = Api(server)
        killed = one_consumer(server)
        video_id = api.upload_and_register(clips("landscape"))
        with FfmpegWatch(video_id) as watch:
            ffmpeg = transcoding_ffmpeg(video_id)
            freeze(ffmpeg[0])
            timeline.mark("kill")
            os.kill(killed, signal.SIGKILL)
            assert_dies_with_its_consumer(ffmpeg)
            restarted = wait_for(
                "clipsync serve to start a new consumer",
                lambda: [p for p in in_server_consumers(server) if p != killed],
            )
            timeline.mark("restarted")
            video = api.wait_until_ready(video_id)
            timeline.mark("ready")
        assert video["progress"] == 100 and video["error"] is None
        assert not alive(killed) and alive(restarted[0])
        # Two attempts, never side by side: the killed one and the one that finished.
        assert watch.most_at_once == 1
        row = database_row(server.data_dir, video_id)
        assert row is not None and row["attempts"] == 2 and row["worker_lease"] is None
        assert api.health().status_code == 200
    timeline.report(
        restart=timeline.between("kill", "restarted"),
        kill_to_ready=timeline.between("kill", "ready"),
    )


def test_a_killed_worker_on_redis_gives_its_video_back_when_it_restarts(
    tmp_path: Path, clips: Clips, redis: RedisServer
) -> None:
    server = LiveServer(tmp_path / "site", redis_worker_toml(redis))
    worker = Worker(server)
    timeline = Timeline("SIGKILL of clipsync worker (Redis queue), restarted")
    server.write_config()
    worker.start()
    try:
        with running(server):
            api = Api(server)
            video_id = api.upload_and_register(clips("landscape"))
            with FfmpegWatch(video_id) as watch:
                ffmpeg = transcoding_ffmpeg(video_id)
                freeze(ffmpeg[0])
                timeline.mark("kill")
                worker.signal(signal.SIGKILL)
                worker.wait()
                assert_dies_with_its_consumer(ffmpeg)
                # No consumer: health says so instead of "ok".
                health = wait_for(
                    "/healthz to notice the consumer is gone",
                    lambda: (answer := api.health()).status_code == 503 and answer,
                )
                assert health.json()["checks"]["jobs"]["ok"] is False
                worker.start()
                timeline.mark("restarted")
                api.wait_until_ready(video_id)
                timeline.mark("ready")
            assert watch.most_at_once == 1
            row = database_row(server.data_dir, video_id)
            assert row is not None and row["attempts"] == 2
            jobs = wait_for(
                "/healthz to see the new consumer",
                lambda: (check := api.health().json()["checks"]["jobs"])["ok"] and check,
            )
            assert jobs["consumers"] == 1
    finally:
        worker.stop()
    timeline.report(
        restart=timeline.between("kill", "restarted"),
        restart_to_ready=timeline.between("restarted", "ready"),
        kill_to_ready=timeline.between("kill", "ready"),
    )


def test_sigterm_on_a_worker_finishes_the_running_job_before_it_exits(
    tmp_path: Path, clips: Clips, redis: RedisServer
) -> None:
    server = LiveServer(tmp_path / "site", redis_worker_toml(redis))
    worker = Worker(server)
    timeline = Timeline("SIGTERM of clipsync worker (Redis queue)")
    server.write_config()
    worker.start()
    try:
        with running(server):
            api = Api(server)
            video_id = api.upload_and_register(clips("landscape"))
            with FfmpegWatch(video_id) as watch:
                ffmpeg = transcoding_ffmpeg(video_id)
                timeline.mark("sigterm")
                worker.signal(signal.SIGTERM)
                assert worker.wait() == 0, worker.log()
                timeline.mark("exited")
            # Finished, not abandoned: READY with no other worker running.
            video = api.video(video_id)
            assert video["status"] == "READY", (video, worker.log())
            assert not any(alive(pid) for pid in ffmpeg)
            assert watch.seen <= set(ffmpeg)  # no second transcode
            assert database_row(server.data_dir, video_id)["attempts"] == 1
    finally:
        worker.stop()
        kill_all(ffmpeg_pids(str(tmp_path)))
    timeline.report(sigterm_to_ready_and_exit=timeline.between("sigterm", "exited"))
