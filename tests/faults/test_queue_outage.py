"""Redis (the job queue) stopped and started again under a real `clipsync serve`.

Registering a video queues its transcode. While the queue is down, registration
answers 503 with Retry-After and leaves the upload exactly as it was: registrable
again, never "already registered" for a video that has no job. Once Redis is back,
the same upload registers and becomes READY with no one stepping in.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import LiveServer
from clips import Clips, clips_fixture  # noqa: F401  (the `clips` fixture)
from faults.processes import Api, Timeline, database_row, fast_jobs_toml, running, wait_for
from services import RedisServer

pytestmark = pytest.mark.faults


def test_registering_while_redis_is_down_answers_503_and_works_once_it_is_back(
    tmp_path: Path, clips: Clips
) -> None:
    timeline = Timeline("Redis (the queue) down during registration")
    with RedisServer() as redis:
        server = LiveServer(
            tmp_path / "site",
            fast_jobs_toml(queue=f'backend = "redis"\nredis_url = "{redis.url}"'),
        )
        with running(server):
            api = Api(server)
            video_id = api.upload(clips("landscape"))
            redis.stop(keep_data=True)
            timeline.mark("redis down")
            for _ in range(2):  # and again: never 409 for a video that has no job
                refused = api.register(video_id)
                assert refused.status_code == 503, refused.text
                assert int(refused.headers["Retry-After"]) > 0
                assert "queue" in refused.json()["error"]["message"]
                assert api.video(video_id)["status"] == "UPLOADED"
                row = database_row(server.data_dir, video_id)
                assert row is not None and row["status"] == "UPLOADED"
            assert api.health().status_code == 503

            redis.start()
            timeline.mark("redis back")
            accepted = api.register(video_id)
            assert accepted.status_code == 201, accepted.text
            api.wait_until_ready(video_id)
            timeline.mark("ready")
            wait_for("/healthz to recover", lambda: api.health().status_code == 200)
            timeline.mark("healthy")
    timeline.report(
        back_to_ready=timeline.between("redis back", "ready"),
        back_to_healthy=timeline.between("redis back", "healthy"),
    )
