"""Cache values are read-only, on both backends (in memory, in a real Redis), hit or miss.

The memory backend hands every request that hits an entry the same object, so that
a hit decodes nothing: no request may be able to change that object, or what one
person's request did to it would show in the next person's answer. Each test here
tries to change a value it got and checks that the next reader still gets it whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from services import RedisServer
from test_library import make_site, site_settings, video

from clipsync import cache
from clipsync.cache import rows
from clipsync.cache.redis_store import RedisCache
from clipsync.cache.stores import Cache, MemoryCache
from clipsync.cache.values import settle, thaw
from clipsync.models import AuditEntry
from clipsync.services import video_reads

VALUE = {"title": "A", "grants": {"7": None}, "extra": ["b"], "n": [[1, "x"], [2, "y"]]}


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "memory":
        yield MemoryCache(max_entries=100, ttl_seconds=60)
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    backend = RedisCache(server.url, ttl_seconds=60)
    await backend._client.flushdb()
    yield backend
    await backend.close()


def changes(value: Any) -> list[str]:
    """Every change a caller could try on `value`, and which of them went through."""
    attempts = {
        "set a key": lambda: value.__setitem__("title", "B"),
        "delete a key": lambda: value.__delitem__("title"),
        "update": lambda: value.update(title="B"),
        "pop": lambda: value.pop("title"),
        "clear": lambda: value.clear(),
        "set a nested key": lambda: value["grants"].__setitem__("8", None),
        "append to a nested list": lambda: value["extra"].append("c"),
        "replace an item of a nested list": lambda: value["n"][0].__setitem__(0, 9),
        "in-place add to a nested list": lambda: value["extra"].__iadd__(["c"]),
    }
    went_through = []
    for name, attempt in attempts.items():
        try:
            attempt()
        except (TypeError, AttributeError):
            continue
        went_through.append(name)
    return went_through


async def test_a_hit_cannot_be_changed_by_its_reader(store: Cache) -> None:
    await store.set("k", VALUE, ["video:1"])
    found = await store.get("k", ["video:1"])
    assert found.hit
    assert changes(found.value) == []
    assert (await store.get("k", ["video:1"])).value == settle(VALUE)


async def test_a_filled_value_cannot_be_changed_by_its_reader_nor_its_filler(
    store: Cache,
) -> None:
    mine = thaw(VALUE)

    async def fill() -> dict[str, Any]:
        return mine

    filled = await store.get_or_fill("k", ["video:1"], fill)
    assert changes(filled) == []
    mine["extra"].append("c")  # the filler keeps its own object: the cache does not
    assert (await store.get_or_fill("k", ["video:1"], fill)) == settle(VALUE)
    assert (await store.get("k", ["video:1"])).hit


async def test_every_backend_hands_out_what_a_json_round_trip_makes(store: Cache) -> None:
    await store.set("k", {1: (1, 2), "a": [{"b": None}]}, ["t"])
    value = (await store.get("k", ["t"])).value
    assert value == {"1": (1, 2), "a": ({"b": None},)}
    assert thaw(value) == {"1": [1, 2], "a": [{"b": None}]}
    with pytest.raises(TypeError):
        await store.set("bad", {"at": object()}, ["t"])


async def test_the_memory_cache_hands_every_hit_the_one_value_it_keeps() -> None:
    memory = MemoryCache(max_entries=10, ttl_seconds=60)
    await memory.set("k", VALUE, ["t"])
    first, second = [(await memory.get("k", ["t"])).value for _ in range(2)]
    assert first is second  # decoded once, when stored: nothing to decode per hit


async def test_the_off_cache_hands_out_read_only_values_too() -> None:
    async def fill() -> dict[str, Any]:
        return thaw(VALUE)

    assert changes(await Cache().get_or_fill("k", ["t"], fill)) == []


async def test_a_row_loaded_from_a_value_has_values_of_its_own(app) -> None:
    # No cached row has a JSON column yet; the audit log's stands for the next one.
    value = settle({"id": 1, "action": "a", "details": {"reasons": ["x"]}})
    entry = rows.load(AuditEntry, value)
    entry.details["reasons"].append("y")
    entry.details["more"] = True
    entry.action = "b"
    again = rows.load(AuditEntry, value)  # the same value again: a copy of the first
    assert (again.action, again.details) == ("a", {"reasons": ["x"]})
    assert value["details"] == {"reasons": ("x",)}


@pytest.fixture(params=["memory", "redis"])
async def site(request, start_app, make_settings, migrated_sqlite: Path):
    tables: dict[str, Any] = {"cache": {"backend": request.param, "ttl_seconds": 3600}}
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        tables["queue"] = {"redis_url": server.url}
    app, client, people = await make_site(
        start_app, site_settings(make_settings, migrated_sqlite, **tables)
    )
    assert cache.current().name == request.param
    return app, client, people


async def test_what_one_request_does_to_cached_rows_never_reaches_the_next(site) -> None:
    app, _client, people = site
    owner = people["uploader"][0]
    row = await video(app, owner, title="Clip")
    key = str(row.id)
    [first] = (await video_reads.video_rows([key])).values()
    await video_reads.with_owners([first])
    # One request changes what it read (a handler shaping its answer)...
    first.title = "Someone else's"
    first.owner.email = "changed@example.org"
    [again] = (await video_reads.video_rows([key])).values()  # ...the next is a hit
    await video_reads.with_owners([again])
    assert cache.current().counts.hits >= 2
    assert (again.title, again.owner.email) == ("Clip", owner.email)
    [head] = await video_reads.heads([{"owner_id": owner.id}])
    with pytest.raises(AttributeError):
        head.append((0, "another"))  # type: ignore[attr-defined]
    [head] = await video_reads.heads([{"owner_id": owner.id}])
    assert [video_id for _, video_id in head] == [key]
