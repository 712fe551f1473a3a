"""What the cache saves: list, detail and master playlist with the cache off, in memory
and in Redis, on 10k videos.

Run it with `.venv/bin/python bench/cache.py` (about a minute; `--videos`,
`--requests`). For each `[cache] backend` (off, memory, redis: a throwaway
`RedisServer` from tests/services.py) it makes a fresh SQLite install in a temporary
folder, starts the app in this process (its real lifespan, as the tests do) and
fills it: 60 viewers (an admin, an editor and ten users of each of five categories),
200 owners, `--videos` videos straight through SQL (60 % approved), and a stored
master playlist for the 100 newest approved videos of each category. Then, one request
at a time over ASGI, each viewer picked at random:

- *list*: `GET /api/videos?pageSize=20` (the first numbered page, with its count);
- *detail*: `GET /api/videos/<id>` of one of the hot videos of the viewer's category;
- *master*: `GET /hls/<id>/master.m3u8` of the same.

It prints p50 and p99 of each, side by side for the three backends, and the hit
ratio of the cache over each run (hits / lookups, from the process's own counts;
a request makes several lookups: the user behind the token, then rows or heads). The
first `--warm` requests of each kind are not timed. There are no targets; it exits 1
only when something failed to run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sanic import Sanic

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from services import RedisServer  # noqa: E402

from clipsync import cache, db  # noqa: E402
from clipsync.app import create_app  # noqa: E402
from clipsync.models import Role  # noqa: E402
from clipsync.settings import parse_settings  # noqa: E402
from clipsync.storage import keys  # noqa: E402

CATEGORIES = [f"team{n}" for n in range(5)]
MASTER = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=426x240\n240p/index.m3u8\n"  # noqa: E501
HOT = 100
KINDS = ("list", "detail", "master")
# One app after another in this process, as the tests run them.
Sanic.test_mode = True


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Lifespan:
    """The app's ASGI lifespan: startup on enter, shutdown on exit (as tests/conftest.py)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()

    async def __aenter__(self) -> Lifespan:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
        self.task = asyncio.create_task(self.app(scope, self.inbox.get, self.outbox.put))
        await self.inbox.put({"type": "lifespan.startup"})
        message = await self.outbox.get()
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"startup failed: {message}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self.outbox.get()
        await self.task


def fill(path: Path, owners: list[tuple[int, str]], count: int) -> dict[str, list[str]]:
    """`count` videos; the HOT newest approved ones of each category, by category."""
    chance = random.Random(15)
    statuses = ["APPROVED"] * 6 + ["READY", "PROCESSING", "FAILED", "REJECTED"]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    made = []
    for n in range(count):
        owner, category = chance.choice(owners)
        at = start + timedelta(seconds=n * 60, microseconds=chance.randrange(1, 999_999))
        made.append((str(uuid.UUID(int=chance.getrandbits(128), version=4)), owner,
                     category, chance.choice(statuses), at.isoformat(" ")))  # fmt: skip
    connection = sqlite3.connect(path, timeout=30)
    connection.executemany(
        "INSERT INTO videos (id, owner_id, title, original_filename, description, category,"
        " status, progress, attempts, duration, hls_key, created_at, updated_at)"
        " VALUES (?, ?, 'A bench clip', 'clip.mp4', 'About it.', ?, ?, 100, 1, 60.0,"
        " 'x', ?, ?)",
        [(i, o, c, s, at, at) for i, o, c, s, at in made],
    )
    connection.commit()
    connection.close()
    hot: dict[str, list[str]] = {c: [] for c in CATEGORIES}
    for video_id, _, category, status, _ in reversed(made):
        if status == "APPROVED" and len(hot[category]) < HOT:
            hot[category].append(video_id)
    return hot


async def run_backend(backend: str, redis_url: str, args: argparse.Namespace) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="clipsync-bench-cache-"))
    try:
        settings = parse_settings(
            {
                "paths": {"data_dir": str(folder / "data")},
                "server": {"public_url": "http://clipsync.test"},
                "plugins": {"auth_local": {"bcrypt_rounds": 4}},
                "cache": {"backend": backend},
                "queue": {"redis_url": redis_url},
                "logging": {"level": "WARNING"},
                "category": [
                    {"name": c, "label": c, "self_select": True, "default": c == CATEGORIES[0]}
                    for c in CATEGORIES
                ],
            },
            where="bench",
        )
        await db.migrate(settings)
        app = create_app(settings, load_entry_points=False)
        async with Lifespan(app):
            accounts = app.ctx.accounts
            viewers: list[tuple[str, str]] = []  # (token, category)
            admin = await accounts.create_user(
                "admin@bench.test", "bench password 1", role=Role.ADMIN, category=CATEGORIES[0]
            )
            viewers.append((accounts.start_session(admin).token, CATEGORIES[0]))
            for c in CATEGORIES:
                editor = await accounts.create_user(
                    f"editor-{c}@bench.test", "bench password 1", role=Role.EDITOR, category=c
                )
                viewers.append((accounts.start_session(editor).token, c))
                for n in range(10):
                    user = await accounts.create_user(
                        f"user{n}-{c}@bench.test", "bench password 1", category=c
                    )
                    viewers.append((accounts.start_session(user).token, c))
            owners = []
            for n in range(200):
                owner = await accounts.create_user(
                    f"owner{n}@bench.test", "bench password 1", category=CATEGORIES[n % 5]
                )
                owners.append((owner.id, owner.category))
            hot = fill(settings.data_dir / "clipsync.sqlite3", owners, args.videos)
            storage = app.ctx.backends.storage
            for ids in hot.values():
                for video_id in ids:

                    async def body() -> Any:
                        yield MASTER.encode()

                    await storage.put_stream(keys.hls_key(video_id, "master.m3u8"), body())
            chance = random.Random(7)
            results = {}
            transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5000))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://clipsync.test"
            ) as client:
                for kind in KINDS:
                    times = []
                    for n in range(args.warm + args.requests):
                        if n == args.warm:
                            counts = cache.current().counts
                            before = (counts.hits, counts.misses)
                        token, category = chance.choice(viewers)
                        video_id = chance.choice(hot[category])
                        url = {
                            "list": "/api/videos?pageSize=20",
                            "detail": f"/api/videos/{video_id}",
                            "master": f"/hls/{video_id}/master.m3u8",
                        }[kind]
                        started = time.perf_counter()
                        answer = await client.get(url, headers={"Authorization": f"Bearer {token}"})
                        elapsed = time.perf_counter() - started
                        if answer.status_code != 200:
                            raise RuntimeError(
                                f"{url} answered {answer.status_code}: {answer.text[:200]}"
                            )
                        if n >= args.warm:
                            times.append(elapsed * 1000)
                    counts = cache.current().counts
                    hits, misses = counts.hits - before[0], counts.misses - before[1]
                    times.sort()
                    results[kind] = {
                        "p50": statistics.median(times),
                        "p99": times[int(len(times) * 0.99) - 1],
                        "hit": hits / (hits + misses) if hits + misses else 0.0,
                    }
        return results
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--warm", type=int, default=200)
    args = parser.parse_args()
    say(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    try:
        with RedisServer() as redis_server:
            found = {}
            for backend in ("off", "memory", "redis"):
                say(f"{backend}: filling {args.videos} videos and measuring ...")
                found[backend] = asyncio.run(run_backend(backend, redis_server.url, args))
    except Exception as exc:
        say(f"bench failed: {exc!r}")
        return 1
    print(f"\n{args.videos} videos, {args.requests} requests of each kind, one at a time, "
          f"load average {os.getloadavg()[0]:.1f} after the run\n")  # fmt: skip
    print("| request | off p50 / p99 ms | memory p50 / p99 ms | redis p50 / p99 ms "
          "| hit ratio memory / redis |")  # fmt: skip
    print("|---|---|---|---|---|")
    for kind in KINDS:
        cells = [f"{found[b][kind]['p50']:.2f} / {found[b][kind]['p99']:.2f}"
                 for b in ("off", "memory", "redis")]  # fmt: skip
        ratio = f"{found['memory'][kind]['hit']:.2f} / {found['redis'][kind]['hit']:.2f}"
        print(f"| {kind} | {' | '.join(cells)} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
