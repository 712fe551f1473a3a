"""Live news crosses processes: the job consumer's "ready" reaches a live page.

A real `clipsync serve` runs its job consumer as a process of its own; the page's
stream (`GET /api/videos/events`) is served by a Sanic worker. The stream is opened
before the video is registered, so every later status it shows came over the event
bus: through the log file on the embedded defaults, through Redis pub/sub when the
queue is on Redis. On PostgreSQL, open streams cost the database nothing while
nothing happens.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis
from browser import LiveServer
from clients import PASSWORD, bearer
from clips import make_clip
from faults.processes import PATIENCE, fast_jobs_toml
from services import PostgresServer, RedisServer

EVENTS = "/api/videos/events"
QUEUE_EVENTS = "/api/admin/videos/events"


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own: consumers and queued jobs of other tests stay out."""
    with RedisServer() as server:
        yield server


def sign_up(http: httpx.Client, email: str = "live@example.org") -> str:
    answer = http.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


def statuses_until_ready(server: LiveServer) -> list[str]:
    """Upload a clip, open the live stream, register the clip: the statuses it shows."""
    with httpx.Client(base_url=server.base_url, timeout=PATIENCE) as http:
        token = sign_up(http)
        with make_clip("landscape").open("rb") as fh:
            uploaded = http.post(
                "/api/videos/upload-local",
                files={"file": ("clip.mp4", fh, "video/mp4")},
                headers=bearer(token),
            )
        assert uploaded.status_code == 201, uploaded.text
        video_id = uploaded.json()["videoId"]
        statuses: list[str] = []
        with http.stream("GET", EVENTS, headers=bearer(token)) as stream:
            lines = stream.iter_lines()
            assert next(lines) == ": connected"
            registered = http.post(
                "/api/videos/register",
                json={"videoId": video_id, "title": "Live"},
                headers=bearer(token),
            )
            assert registered.status_code == 201, registered.text
            for line in lines:
                if line.startswith("data: "):
                    video = json.loads(line.removeprefix("data: "))
                    assert video["id"] == video_id
                    statuses.append(video["status"])
                    if video["status"] in ("READY", "FAILED"):
                        break
        return statuses


def test_the_consumers_ready_reaches_a_live_page_on_the_embedded_defaults(tmp_path: Path) -> None:
    with LiveServer(tmp_path, extra_toml=fast_jobs_toml()) as server:
        statuses = statuses_until_ready(server)
        assert statuses[0] == "UPLOADED", statuses  # the state when the page opened
        assert statuses[-1] == "READY", f"{statuses}{server.log_tail()}"
        # It travelled through the log file every process reads.
        assert (server.data_dir / "events.sqlite3").exists()


def test_the_consumers_ready_reaches_a_live_page_over_redis(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    queue = f'backend = "redis"\nredis_url = "{own_redis.url}"'
    heard: list[dict] = []
    listener = redis.Redis.from_url(own_redis.url).pubsub(ignore_subscribe_messages=True)
    listener.subscribe("clipsync:events")

    def listen() -> None:
        for message in listener.listen():
            heard.append(json.loads(message["data"]))
            if heard[-1]["name"] == "video.ready":
                return

    watcher = threading.Thread(target=listen, daemon=True)
    watcher.start()
    with LiveServer(tmp_path, extra_toml=fast_jobs_toml(queue=queue)) as server:
        statuses = statuses_until_ready(server)
        assert statuses[-1] == "READY", f"{statuses}{server.log_tail()}"
        watcher.join(PATIENCE)
    listener.close()
    # The video's own news, in order (the cache's `cache.stale` notes go out beside it).
    names = [event["name"] for event in heard if event["name"].startswith("video.")]
    assert names[0] == "video.uploaded" and names[-1] == "video.ready", names
    assert not (server.data_dir / "events.sqlite3").exists()


def test_open_live_pages_cost_postgres_no_queries_while_nothing_happens(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """20 open streams, a quiet spell of 3 s: not one query for a page's videos or session.

    Polling each stream once a second, as ClipSync did before the bus, makes 60 or so.
    PostgreSQL logs every statement of this test's database, so they are counted there.
    """
    name = f"live_{uuid.uuid4().hex[:8]}"
    url = postgres_server.create_database(name)
    postgres_server_sql(postgres_server, f"ALTER DATABASE {name} SET log_statement = 'all'")
    toml = f'[database]\nurl = "{url}"\n'
    with LiveServer(tmp_path, extra_toml=toml) as server, ExitStack() as stack:
        http = stack.enter_context(httpx.Client(base_url=server.base_url, timeout=PATIENCE))
        token = sign_up(http)
        pages = []  # each stream's line iterator: dropping one would close its stream
        for _ in range(20):
            stream = stack.enter_context(http.stream("GET", EVENTS, headers=bearer(token)))
            pages.append(stream.iter_lines())
            assert next(pages[-1]) == ": connected"
        # Each stream read the videos once as it opened; from here on only news counts.
        time.sleep(1)
        start = postgres_server.log_path.stat().st_size
        time.sleep(3)
        with postgres_server.log_path.open("rb") as log:
            log.seek(start)
            quiet = log.read().decode(errors="replace")
        per_page = re.findall(r'FROM "videos" WHERE "owner_id"|FROM "revoked_tokens"', quiet)
        assert per_page == [], f"{len(per_page)} queries while nothing happened"
        # Quiet, not deaf: signing out (news over LISTEN/NOTIFY) ends every stream.
        assert http.post("/api/auth/logout", headers=bearer(token)).status_code == 204
        for lines in pages:
            assert "event: signed-out" in lines


def postgres_server_sql(server: PostgresServer, sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(server.dsn())
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


CATEGORIES = """
[[category]]
name = "general"
label = "General"
self_select = true
default = true

[[category]]
name = "news"
label = "News"
"""


def create_account(server: LiveServer, email: str, role: str, category: str = "general") -> str:
    """An account made with the CLI, as an installer makes one; its token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPSYNC_")}
    command = [sys.executable, "-m", "clipsync", "--config", str(server.config_path), "user"]
    command += ["create", "--email", email, "--role", role, "--category", category]
    subprocess.run(
        [*command, "--password-stdin"],
        input=PASSWORD + "\n",
        text=True,
        capture_output=True,
        env=env,
        timeout=60,
        check=True,
    )
    with httpx.Client(base_url=server.base_url) as http:
        answer = http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def next_queue_event(lines: Iterator[str]) -> dict:
    for line in lines:
        if line.startswith("data: "):
            return json.loads(line.removeprefix("data: "))
    raise AssertionError("the queue stream ended")


def test_the_moderation_queue_hears_only_of_videos_its_moderator_may_decide(
    tmp_path: Path,
) -> None:
    with (
        LiveServer(tmp_path, extra_toml=fast_jobs_toml() + CATEGORIES) as server,
        httpx.Client(base_url=server.base_url, timeout=PATIENCE) as http,
    ):
        admin = create_account(server, "admin@example.org", "admin")
        general = create_account(server, "general@example.org", "editor", "general")
        news = create_account(server, "news@example.org", "editor", "news")
        member = sign_up(http, "member@example.org")
        assert http.get(QUEUE_EVENTS, headers=bearer(member)).status_code == 403
        with (
            http.stream("GET", QUEUE_EVENTS, headers=bearer(general)) as general_stream,
            http.stream("GET", QUEUE_EVENTS, headers=bearer(news)) as news_stream,
        ):
            general_lines, news_lines = general_stream.iter_lines(), news_stream.iter_lines()
            assert next(general_lines) == ": connected"
            assert next(news_lines) == ": connected"
            with make_clip("landscape").open("rb") as fh:
                uploaded = http.post(
                    "/api/videos/upload-local",
                    files={"file": ("clip.mp4", fh, "video/mp4")},
                    headers=bearer(member),
                )
            video_id = uploaded.json()["videoId"]
            registered = http.post(
                "/api/videos/register",
                json={"videoId": video_id, "title": "For the queue"},
                headers=bearer(member),
            )
            assert registered.status_code == 201, registered.text
            heard = next_queue_event(general_lines)
            assert heard["videoId"] == video_id and heard["event"] == "video.uploaded", heard
            moved = http.patch(
                f"/api/admin/videos/{video_id}",
                json={"categoryRole": "news"},
                headers=bearer(admin),
            )
            assert moved.status_code == 200, moved.text
            # The news editor's first news is the move into their category: they heard
            # nothing of the video while it was in another.
            heard = next_queue_event(news_lines)
            assert heard["videoId"] == video_id and heard["event"] == "video.moved", heard
