"""The event bus: each transport carries an event from one process's bus to every bus.

Two `EventBus` objects on one transport stand for two processes (the cross-process
runs with real `clipsync serve` processes are in tests/test_live_events.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from services import PostgresServer, RedisServer

from clipsync import events
from clipsync.events.bus import MAX_PAYLOAD_BYTES, Event, EventBus, Transport
from clipsync.events.postgres_notify import PostgresTransport
from clipsync.events.redis_pubsub import RedisTransport
from clipsync.events.sqlite_log import SqliteLogTransport
from clipsync.settings import parse_settings

WAIT = 30.0


@asynccontextmanager
async def two_buses(make: Callable[[], Transport]) -> AsyncIterator[tuple[EventBus, EventBus]]:
    first, second = EventBus(make()), EventBus(make())
    await first.start()
    await second.start()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def delivered_to_both(make: Callable[[], Transport]) -> None:
    async with (
        two_buses(make) as (publisher, other),
        publisher.subscribe(["video."]) as mine,
        other.subscribe(["video."]) as theirs,
        other.subscribe(["account."]) as unrelated,
    ):
        await publisher.publish(Event("video.ready", {"videoId": "v1", "ownerId": 7}))
        for subscription in (mine, theirs):
            event = await subscription.get(within=WAIT)
            assert event == Event("video.ready", {"videoId": "v1", "ownerId": 7})
        assert unrelated.queue.empty()


async def test_the_sqlite_log_carries_an_event_to_every_process(tmp_path: Path) -> None:
    await delivered_to_both(lambda: SqliteLogTransport(tmp_path / "events.sqlite3"))


async def test_redis_pub_sub_carries_an_event_to_every_process(redis_server: RedisServer) -> None:
    await delivered_to_both(lambda: RedisTransport(redis_server.url))


async def test_postgres_listen_notify_carries_an_event_to_every_process(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database(f"events_{uuid.uuid4().hex[:8]}")
    await delivered_to_both(lambda: PostgresTransport(url))


async def test_many_subscribers_share_one_reader_of_the_log(tmp_path: Path) -> None:
    """N open live pages cost the process one poller, not one per page."""
    transport = SqliteLogTransport(tmp_path / "events.sqlite3")
    bus = EventBus(transport)
    before = {t for t in asyncio.all_tasks()}
    await bus.start()
    readers = {t for t in asyncio.all_tasks()} - before
    try:
        async with asyncio.TaskGroup() as group:
            pages = [group.create_task(one_page(bus)) for _ in range(100)]
            await asyncio.sleep(0)  # each page subscribes in its first step
            assert len(bus.subscriptions) == 100
            await bus.publish(Event("video.status", {"videoId": "v1"}))
        assert all(page.result() == "video.status" for page in pages)
        # Still the one task that started with the bus: no poller was added per page.
        assert len(readers) == 1
        assert {t for t in asyncio.all_tasks()} - before == readers
    finally:
        await bus.close()


async def test_pages_that_want_the_same_row_read_it_once(tmp_path: Path) -> None:
    """A hundred pages hearing one event share one read of what it names."""
    bus = EventBus(SqliteLogTransport(tmp_path / "events.sqlite3"))
    await bus.start()
    reads = []

    async def read_video() -> dict[str, str]:
        reads.append(1)
        await asyncio.sleep(0.01)  # a query: the other pages ask meanwhile
        return {"title": "Harbour tour"}

    async def page() -> dict[str, str]:
        async with bus.subscribe(["video."]) as subscription:
            event = await subscription.get(within=WAIT)
            assert event is not None
            return await event.shared("video", read_video)

    try:
        async with asyncio.TaskGroup() as group:
            pages = [group.create_task(page()) for _ in range(100)]
            await asyncio.sleep(0)
            await bus.publish(Event("video.status", {"videoId": "v1"}))
        assert [p.result() for p in pages] == [{"title": "Harbour tour"}] * 100
        assert len(reads) == 1
        # The shared reads stay out of the event's identity and its payload.
        event = Event("video.status", {"videoId": "v1"})
        await event.shared("video", read_video)
        assert event == Event("video.status", {"videoId": "v1"})
        assert event.encode() == '{"name":"video.status","data":{"videoId":"v1"}}'
    finally:
        await bus.close()


async def one_page(bus: EventBus) -> str:
    async with bus.subscribe(["video."]) as subscription:
        event = await subscription.get(within=WAIT)
        assert event is not None
        return event.name


async def test_a_process_without_a_transport_delivers_to_its_own_subscribers() -> None:
    async with events.subscribe("account.") as subscription:
        await events.publish("account.signed_out", userId=3)
        assert await subscription.get(within=WAIT) == Event("account.signed_out", {"userId": 3})


async def test_an_event_too_large_for_notify_is_refused_before_sending() -> None:
    bus = EventBus()
    with pytest.raises(ValueError, match="too large"):
        await bus.publish(Event("video.status", {"title": "x" * MAX_PAYLOAD_BYTES}))


@pytest.mark.parametrize(
    ("tables", "expected"),
    [
        ({}, "sqlite"),
        ({"queue": {"backend": "redis"}}, "redis"),
        ({"database": {"url": "postgres://u@h/db"}}, "postgres"),
        # Both configured: Redis, which every host of such an install reaches anyway.
        ({"queue": {"backend": "redis"}, "database": {"url": "postgres://u@h/db"}}, "redis"),
        ({"queue": {"backend": "redis"}, "events": {"transport": "sqlite"}}, "sqlite"),
    ],
)
def test_auto_picks_the_transport_from_the_queue_and_database(
    tmp_path: Path, tables: dict, expected: str
) -> None:
    settings = parse_settings(
        {"paths": {"data_dir": str(tmp_path)}, **tables}, where="test", source=None
    )
    assert events.transport_for(settings).name == expected
