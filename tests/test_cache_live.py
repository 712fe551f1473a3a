"""Two `clipsync serve` workers, one change: the other worker never keeps a stale answer.

Each test pins one HTTP connection to each of the two Sanic workers (the kernel says
which process holds the server end of a connection: /proc/net/tcp and the workers'
file descriptors), primes worker B's cache through its connection, makes a change
through worker A, and reads it back through B. The TTL is an hour, so only the
invalidation can make B's answer fresh.

- With `[cache] backend = "redis"` the change's invalidation is in Redis before A
  answers: B's very next answer is fresh.
- With the embedded default (memory in each process) B drops its entries when its
  bus reader hears the news (the SQLite event log, polled every half second): B's
  answer is fresh within that delay, and the test measures it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from clients import PASSWORD, bearer
from live_install import Install, set_up_admin
from services import RedisServer
from test_notifications_live import TwoWorkerServer

from clipsync.storage import keys

MASTER = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=426x240\n240p/index.m3u8\n"  # noqa: E501
SRT = b"1\n00:00:00,000 --> 00:00:01,000\nBonjour\n"
# The memory backend hears another process's news within the SQLite log's poll (0.5 s).
NEWS_SECONDS = 3.0


# --- which worker holds a connection ------------------------------------------------------


def _server_inode(server_port: int, client_port: int) -> int | None:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if (
            int(local.split(":")[1], 16) == server_port
            and int(remote.split(":")[1], 16) == client_port
        ):
            return int(fields[9])
    return None


def worker_of(server: TwoWorkerServer, client: httpx.Client) -> int:
    """The pid of the worker that answers `client`'s one keep-alive connection."""
    answer = client.get("/healthz/live")
    stream = answer.extensions["network_stream"]
    client_port = stream.get_extra_info("socket").getsockname()[1]
    inode = _server_inode(server.port, client_port)
    assert inode, "the connection's server end is not in /proc/net/tcp"
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            if os.getpgid(int(fd_dir.parent.name)) != server.pid:
                continue
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == f"socket:[{inode}]":
                        return int(fd_dir.parent.name)
    raise AssertionError("no worker holds the connection")


@contextlib.contextmanager
def two_workers(server: TwoWorkerServer) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """One client pinned to each worker (one keep-alive connection each)."""
    clients: dict[int, httpx.Client] = {}
    spare: list[httpx.Client] = []
    try:
        for _ in range(40):
            client = httpx.Client(
                base_url=server.base_url,
                timeout=30,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            )
            pid = worker_of(server, client)
            if pid in clients:
                spare.append(client)
            else:
                clients[pid] = client
            if len(clients) == 2:
                break
        assert len(clients) == 2, "every connection went to one worker"
        a, b = clients.values()
        yield a, b
        assert worker_of(server, a) != worker_of(server, b), "a connection changed worker"
    finally:
        for client in [*clients.values(), *spare]:
            client.close()


# --- the install ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Live:
    install: Install
    backend: str


@pytest.fixture(params=["memory", "redis"])
def live(request, tmp_path: Path) -> Iterator[Live]:
    toml = "[quotas]\nregistrations_per_address_per_hour = 0\n[cache]\nttl_seconds = 3600\n"
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        toml += f'backend = "redis"\n[queue]\nredis_url = "{server.url}"\n'
    with TwoWorkerServer(tmp_path, extra_toml=toml) as server:
        yield Live(Install(server, str(server.data_dir / "clipsync.sqlite3")), request.param)


def tokens(install: Install) -> dict[str, str]:
    import asyncio

    asyncio.run(set_up_admin(install, "admin@example.org"))
    found = {}
    with httpx.Client(base_url=install.server.base_url, timeout=30) as http:
        for name in ("admin", "uploader", "viewer"):
            if name != "admin":
                made = http.post(
                    "/api/auth/register",
                    json={"email": f"{name}@example.org", "password": PASSWORD},
                )
                assert made.status_code == 201, made.text
            answer = http.post(
                "/api/auth/login", json={"email": f"{name}@example.org", "password": PASSWORD}
            )
            assert answer.status_code == 200, answer.text
            found[name] = answer.json()["token"]
    return found


def stored_video(install: Install, owner_email: str, status: str) -> str:
    """A video row and its master playlist, put in place as an operator would."""
    video_id = str(uuid.uuid4())
    now = datetime.now(UTC).isoformat(" ")
    master = keys.hls_key(video_id, "master.m3u8")
    path = install.server.data_dir / "media" / master
    path.parent.mkdir(parents=True)
    path.write_text(MASTER)
    with contextlib.closing(sqlite3.connect(install.database, timeout=10)) as db, db:
        owner, category = db.execute(
            "SELECT id, category FROM users WHERE email = ?", (owner_email,)
        ).fetchone()
        db.execute(
            "INSERT INTO videos (id, owner_id, title, original_filename, description, category,"
            " status, progress, attempts, duration, hls_key, created_at, updated_at)"
            " VALUES (?, ?, 'Clip', 'clip.mp4', '', ?, ?, 100, 1, 10.0, ?, ?, ?)",
            (video_id, owner, category, status, master, now, now),
        )
    return video_id


def fresh_on_b(live: Live, read: Callable[[], bool]) -> float:
    """Seconds until worker B's answer is fresh: 0 for the very next one on Redis."""
    started = time.monotonic()
    if live.backend == "redis":
        assert read(), "worker B's next answer after the change was stale"
        return 0.0
    while not read():
        assert time.monotonic() - started < NEWS_SECONDS, "worker B kept a stale answer"
        time.sleep(0.05)
    return time.monotonic() - started


# --- the changes ---------------------------------------------------------------------------


def test_changes_through_one_worker_are_fresh_through_the_other(live: Live) -> None:
    install = live.install
    people = tokens(install)
    admin, owner, viewer = (bearer(people[n]) for n in ("admin", "uploader", "viewer"))
    ready = stored_video(install, "uploader@example.org", "READY")
    approved = stored_video(install, "uploader@example.org", "APPROVED")
    with two_workers(install.server) as (a, b):

        def listed(headers: dict[str, str]) -> dict[str, dict]:
            answer = b.get("/api/videos?pageSize=100", headers=headers).json()
            assert answer["total"] == len(answer["items"])
            return {item["id"]: item for item in answer["items"]}

        # An approval: B lists the video and plays it.
        assert ready not in listed(viewer)
        assert b.get(f"/hls/{ready}/master.m3u8", headers=viewer).status_code == 404
        assert a.post(f"/api/admin/videos/{ready}/approve", headers=admin).status_code == 200
        fresh_on_b(live, lambda: ready in listed(viewer))
        assert b.get(f"/hls/{ready}/master.m3u8", headers=viewer).status_code == 200

        # An edit: B shows the new title in the list and the detail.
        assert b.get(f"/api/videos/{approved}", headers=viewer).json()["video"]["title"] == "Clip"
        edited = a.patch(f"/api/videos/{approved}", json={"title": "Renamed"}, headers=owner)
        assert edited.status_code == 200, edited.text
        fresh_on_b(live, lambda: listed(viewer)[approved]["title"] == "Renamed")
        assert (
            b.get(f"/api/videos/{approved}", headers=viewer).json()["video"]["title"] == "Renamed"
        )

        # A caption track: B's master playlist lists it.
        assert "SUBTITLES" not in b.get(f"/hls/{approved}/master.m3u8", headers=viewer).text
        added = a.post(
            f"/api/videos/{approved}/captions",
            data={"language": "fr"},
            files={"file": ("fr.srt", SRT, "application/x-subrip")},
            headers=owner,
        )
        assert added.status_code == 201, added.text
        fresh_on_b(
            live,
            lambda: "SUBTITLES" in b.get(f"/hls/{approved}/master.m3u8", headers=viewer).text,
        )

        # A rejection: B hides it.
        rejected = a.post(
            f"/api/admin/videos/{approved}/reject", json={"reason": "No"}, headers=admin
        )
        assert rejected.status_code == 200, rejected.text
        fresh_on_b(live, lambda: approved not in listed(viewer))
        assert b.get(f"/hls/{approved}/master.m3u8", headers=viewer).status_code == 404

        # A deactivation: B refuses the person's token.
        assert b.get("/api/auth/me", headers=viewer).status_code == 200
        with sqlite3.connect(install.database) as db:
            viewer_id = db.execute(
                "SELECT id FROM users WHERE email = 'viewer@example.org'"
            ).fetchone()[0]
        off = a.patch(f"/api/admin/users/{viewer_id}", json={"active": False}, headers=admin)
        assert off.status_code == 200, off.text
        fresh_on_b(live, lambda: b.get("/api/auth/me", headers=viewer).status_code == 401)
