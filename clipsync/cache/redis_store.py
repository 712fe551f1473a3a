"""The cache in Redis (`[cache] backend = "redis"`): one for every process and host.

Keys (all under `clipsync:cache:`):

- `e:<key>`: an entry, `{"s": stamp, "v": value}` as JSON, expiring after `ttl_seconds`
  (its value comes back frozen, as the memory backend's: clipsync/cache/values.py);
- `g:<tag>`: a tag's generation, a random token (never expires).

A lookup reads the generations of its tags and the entries in one round trip, and
serves an entry only if its stamp equals those generations. Invalidating sets new
tokens: one round trip, however many entries the tags cover, and a fill that read
before it stores an entry with the old stamp, which is never served. Tokens are
random rather than counters so that a generation Redis evicted and made again can
never equal an old one; a missing one is created (SET NX) before it is used.

Entries hold what the database holds (user rows included): protect this Redis as
the database. When Redis does not answer, every lookup is a miss and the request
reads the database; an invalidation that fails is logged, and `ttl_seconds` bounds
what it leaves behind.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from clipsync.cache.stores import Cache, Lookup, Stamp, Tags
from clipsync.cache.values import encode, freeze

log = logging.getLogger(__name__)
PREFIX = "clipsync:cache:"


def _token() -> str:
    return secrets.token_hex(8)


class RedisCache(Cache):
    name = "redis"
    enabled = True

    def __init__(self, url: str, ttl_seconds: int) -> None:
        super().__init__()
        self.ttl = ttl_seconds
        self._client = aioredis.Redis.from_url(url)
        self._pending: set[asyncio.Future[None]] = set()

    async def _generations(self, tags: list[str]) -> dict[str, str]:
        if not tags:
            return {}
        names = [f"{PREFIX}g:{tag}" for tag in tags]
        values = await self._client.mget(names)
        missing = [name for name, value in zip(names, values, strict=True) if value is None]
        if missing:
            async with self._client.pipeline(transaction=False) as pipe:
                for name in missing:
                    pipe.set(name, _token(), nx=True)
                await pipe.execute()
            values = await self._client.mget(names)
        return {tag: value.decode() for tag, value in zip(tags, values, strict=True)}

    async def lookup(self, items: Sequence[tuple[str, Tags]]) -> list[Lookup]:
        tags = sorted({tag for _, item_tags in items for tag in item_tags})
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.mget([f"{PREFIX}g:{tag}" for tag in tags] or [f"{PREFIX}g:"])
                pipe.mget([f"{PREFIX}e:{key}" for key, _ in items])
                generation_values, payloads = await pipe.execute()
            generations = {
                tag: value.decode() for tag, value in zip(tags, generation_values, strict=False)
                if value is not None
            }  # fmt: skip
            if len(generations) < len(tags):
                generations = await self._generations(tags)
        except RedisError as exc:
            log.warning("cache: Redis does not answer, reading the database: %s", exc)
            return [Lookup(False, None, ("unavailable",)) for _ in items]
        answers = []
        for (_, item_tags), payload in zip(items, payloads, strict=True):
            stamp: Stamp = tuple(generations[tag] for tag in item_tags)
            entry = json.loads(payload) if payload is not None else None
            if entry is not None and tuple(entry["s"]) == stamp:
                # Decoded per hit (JSON crosses processes), read-only as memory's.
                answers.append(Lookup(True, freeze(entry["v"]), stamp))
            else:
                answers.append(Lookup(False, None, stamp))
        return answers

    async def store(self, items: Sequence[tuple[str, Tags, Stamp, Any]]) -> None:
        items = [item for item in items if item[2] != ("unavailable",)]
        if not items:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, _tags, stamp, value in items:
                    pipe.set(f"{PREFIX}e:{key}", encode({"s": stamp, "v": value}), ex=self.ttl)
                await pipe.execute()
        except RedisError as exc:
            log.warning("cache: could not store in Redis: %s", exc)

    async def delete(self, key: str) -> None:
        await self._client.delete(f"{PREFIX}e:{key}")

    async def invalidate(self, tags: Sequence[str]) -> None:
        if not tags:
            return
        token = _token()
        try:
            await self._client.mset({f"{PREFIX}g:{tag}": token for tag in tags})
        except RedisError as exc:
            log.warning("cache: invalidation of %s lost (Redis): %s", ", ".join(tags), exc)

    def heard(self, tags: Sequence[str]) -> None:
        # The process that made the change has invalidated already, unless it runs no
        # cache (a command-line tool): invalidating again costs one round trip.
        task = asyncio.ensure_future(self.invalidate(tags))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def close(self) -> None:
        await self._client.aclose()
