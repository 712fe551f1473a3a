"""The cache's one interface, the same on both backends: in memory and in a real Redis.

get / set / delete by key, invalidate by tag, the TTL and the LRU bound (values come
back read-only: test_cache_values.py), and the race a cache must win: a fill that
read the database before a change must never put its old answer back after the change.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from services import RedisServer

from clipsync import events
from clipsync.cache import tags_of
from clipsync.cache.redis_store import PREFIX, RedisCache
from clipsync.cache.stores import Cache, MemoryCache


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "memory":
        yield MemoryCache(max_entries=100, ttl_seconds=60)
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    store = RedisCache(server.url, ttl_seconds=60)
    await store._client.flushdb()
    yield store
    await store.close()


async def test_a_value_set_is_got_back_until_deleted(cache: Cache) -> None:
    assert not (await cache.get("k", ["video:1"])).hit
    await cache.set("k", {"title": "A", "n": [1, 2]}, ["video:1"])
    found = await cache.get("k", ["video:1"])
    assert found.hit and found.value == {"title": "A", "n": (1, 2)}  # read-only: a tuple
    await cache.delete("k")
    assert not (await cache.get("k", ["video:1"])).hit


async def test_invalidating_a_tag_drops_exactly_the_entries_that_carry_it(cache: Cache) -> None:
    await cache.set("a", 1, ["video:1", "lists:all"])
    await cache.set("b", 2, ["video:2", "lists:all"])
    await cache.set("c", 3, ["user:9"])
    await cache.invalidate(["video:1"])
    assert [(await cache.get(k, t)).hit for k, t in [
        ("a", ["video:1", "lists:all"]), ("b", ["video:2", "lists:all"]), ("c", ["user:9"])
    ]] == [False, True, True]  # fmt: skip
    await cache.invalidate(["lists:all"])
    assert not (await cache.get("b", ["video:2", "lists:all"])).hit
    assert (await cache.get("c", ["user:9"])).hit


async def test_a_fill_that_began_before_a_change_is_never_served_after_it(cache: Cache) -> None:
    """The race: read the database, a change commits and invalidates, then the slow
    read stores its old answer. The next reader must not get that answer."""
    read_started = asyncio.Event()
    change_done = asyncio.Event()
    database = {"title": "old"}
    reads = []

    async def slow_read() -> dict:
        answer = dict(database)  # the read happens now...
        reads.append(answer)
        read_started.set()
        await change_done.wait()  # ...and is stored only after the change
        return answer

    async def change() -> None:
        await read_started.wait()
        database["title"] = "new"
        await cache.invalidate(["video:1"])
        change_done.set()

    filled, _ = await asyncio.gather(cache.get_or_fill("k", ["video:1"], slow_read), change())
    assert filled == {"title": "old"}  # that reader asked before the change: fair
    after = await cache.get_or_fill("k", ["video:1"], lambda: _answer(database))
    assert after == {"title": "new"}
    assert (await cache.get("k", ["video:1"])).value == {"title": "new"}


async def _answer(database: dict) -> dict:
    return dict(database)


async def test_get_many_or_fill_reads_only_the_misses_in_one_call(cache: Cache) -> None:
    await cache.set("v:1", {"id": 1}, ["video:1"])
    calls = []

    async def fill(missing: list[str]) -> dict:
        calls.append(missing)
        return {key: {"id": int(key[2:])} for key in missing if key != "v:3"}

    values = await cache.get_many_or_fill(
        ["v:1", "v:2", "v:3"], lambda key: [f"video:{key[2:]}"], fill
    )
    assert values == [{"id": 1}, {"id": 2}, None]
    assert calls == [["v:2", "v:3"]]
    assert (await cache.get("v:2", ["video:2"])).hit
    assert not (await cache.get("v:3", ["video:3"])).hit  # what does not exist is not kept


async def test_entries_expire_after_the_ttl(cache: Cache) -> None:
    cache.ttl = 1
    await cache.set("k", 1, ["t"])
    assert (await cache.get("k", ["t"])).hit
    await asyncio.sleep(1.3)
    assert not (await cache.get("k", ["t"])).hit


async def test_the_memory_cache_keeps_at_most_its_bound_least_recently_used_first() -> None:
    cache = MemoryCache(max_entries=3, ttl_seconds=60)
    for key in "abc":
        await cache.set(key, key, [f"t:{key}"])
    assert (await cache.get("a", ["t:a"])).hit  # a is now the most recent
    await cache.set("d", "d", ["t:d"])
    assert len(cache) == 3
    assert not (await cache.get("b", ["t:b"])).hit
    assert all([(await cache.get(k, [f"t:{k}"])).hit for k in "acd"])
    await cache.invalidate(["t:a"])
    assert len(cache) == 2  # invalidated entries are dropped, not just hidden


async def test_redis_generations_evicted_never_bring_an_old_entry_back(
    redis_server: RedisServer,
) -> None:
    """A tag's generation that Redis evicts is made again as a new random token, so an
    entry stored under the old one can never match it."""
    cache = RedisCache(redis_server.url, ttl_seconds=60)
    try:
        await cache.set("k", "old", ["video:1"])
        raw = aioredis.Redis.from_url(redis_server.url)
        await raw.delete(f"{PREFIX}g:video:1")
        await raw.aclose()
        assert not (await cache.get("k", ["video:1"])).hit
    finally:
        await cache.close()


async def test_redis_that_does_not_answer_is_a_miss_not_an_error() -> None:
    cache = RedisCache("redis://127.0.0.1:1/0", ttl_seconds=60)
    try:
        assert await cache.get_or_fill("k", ["t"], lambda: _answer({"a": 1})) == {"a": 1}
    finally:
        await cache.close()


async def test_the_off_cache_always_reads() -> None:
    cache = Cache()
    await cache.set("k", 1, ["t"])
    assert not (await cache.get("k", ["t"])).hit
    assert await cache.get_or_fill("k", ["t"], lambda: _answer({"a": 1})) == {"a": 1}


def test_events_name_the_tags_they_make_stale() -> None:
    moved = events.Event(
        "video.moved",
        {"videoId": "v1", "ownerId": 3, "category": "b", "status": "APPROVED", "oldCategory": "a"},
    )
    assert tags_of(moved) == [
        "video:v1", "lists:all", "lists:owner:3", "lists:category:b", "lists:category:a"
    ]  # fmt: skip
    progress = events.Event(
        "video.status", {"videoId": "v1", "ownerId": 3, "category": "b", "progress": 40}
    )
    assert tags_of(progress) == ["video:v1"]  # a job's progress moves it between no lists
    assert tags_of(events.Event("account.access_changed", {"userId": 7})) == ["user:7"]
    assert tags_of(events.Event("cache.stale", {"tags": ["video:v2"]})) == ["video:v2"]
    assert tags_of(events.Event("comment.posted", {"videoId": "v1"})) == []
