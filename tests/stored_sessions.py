"""Sign-in sessions in tests, whichever store keeps them (services/session_store.py).

`store_settings` gives the tables of a throwaway install for each store: Redis on
its own database number of the suite's Redis, emptied first, so sessions of earlier
tests (whose users had the same ids) never show. The other helpers read or bend a
stored session the way a test needs (a session started weeks ago, one ended behind
the app's back), through the store itself or, where no store method does it, its
rows or keys.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from services import RedisServer

from clipsync.context import ClipSyncApp
from clipsync.models.auth_sessions import AuthSession
from clipsync.services.session_store import StoredSession
from clipsync.services.session_store_redis import PREFIX
from clipsync.settings import Settings

STORES = ["database", "redis"]
# Kept apart from the database numbers the queue and event tests use.
REDIS_DB = 3
# The hash field of each time a test may bend.
REDIS_FIELDS = {
    "expires_at": "expires",
    "ends_at": "ends",
    "last_used_at": "used",
    "revoked_at": "revoked",
}


def installed(make_settings: Callable[..., Settings], template: Path, **tables: Any) -> Settings:
    """Settings for a throwaway install, its SQLite database copied from `template`."""
    settings = make_settings(**tables)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, settings.data_dir / "clipsync.sqlite3")
    return settings


def redis_url(server: RedisServer) -> str:
    return server.url.rsplit("/", 1)[0] + f"/{REDIS_DB}"


def store_settings(store: str, server: RedisServer | None) -> dict[str, Any]:
    """Settings tables for `store`; the Redis one starts empty."""
    if store != "redis":
        return {}
    assert server is not None
    url = redis_url(server)
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    return {"auth": {"session_store": "redis"}, "queue": {"redis_url": url}}


def is_redis(app: ClipSyncApp) -> bool:
    return app.ctx.accounts.sessions.store.name == "redis"


async def stored(app: ClipSyncApp, session_id: str) -> StoredSession | None:
    return await app.ctx.accounts.sessions.store.get(session_id)


async def bend(app: ClipSyncApp, session_id: str, **times: datetime) -> None:
    """Set times of a stored session (`expires_at`, `ends_at`, `last_used_at`,
    `revoked_at`) as if they had come about; a Redis key's TTL stays as it was."""
    if not is_redis(app):
        await AuthSession.filter(id=session_id).update(**times)
        return
    client = app.ctx.accounts.sessions.store.redis  # type: ignore[attr-defined]
    fields = {REDIS_FIELDS[name]: when.timestamp() for name, when in times.items()}
    await client.hset(f"{PREFIX}s:{session_id}", mapping=fields)


async def everything_stored(app: ClipSyncApp) -> str:
    """All that the store keeps, as text: to show what it never keeps."""
    if not is_redis(app):
        return str(await AuthSession.all().values())
    client = app.ctx.accounts.sessions.store.redis  # type: ignore[attr-defined]
    found = []
    async for key in client.scan_iter(f"{PREFIX}*"):
        kind = await client.type(key)
        value: object = {
            "hash": client.hgetall,
            "string": client.get,
            "set": client.smembers,
            "zset": lambda k: client.zrange(k, 0, -1),
        }[kind](key)
        found.append((key, await value))  # type: ignore[misc]
    return str(found)
