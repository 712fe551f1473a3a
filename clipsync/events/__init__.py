"""The event bus: the one way news crosses processes and hosts.

Services publish domain events after their transaction commits:

    await events.publish("video.ready", videoId=str(video.id), ownerId=video.owner_id)

and live channels subscribe in their own process:

    async with events.subscribe("video.", "account.") as subscription:
        event = await subscription.get(within=15)

Names in use: `video.uploaded`, `video.status` (progress of a job), `video.ready`,
`video.failed`, `video.approved`, `video.rejected`, `video.moved`, `video.edited`,
`video.unpublished` (approved → ready again), `video.deleted`;
`account.sessions_ended` / `account.signed_out` (a user's sessions no longer count),
`account.access_changed` (role, category or active state), `account.quota_changed`
(an administrator changed the person's quotas), `account.new_sign_in`;
`admin.storage_low` (free space is running out), `admin.backup_failed`;
`comment.posted` (videoId, commentId, authorId); `notification.changed` (a person's
inbox changed); `cache.stale` (tags: cached answers a row change made stale, see
clipsync/cache).
Payloads hold ids (`videoId`, `ownerId`, `userId`, `category`) and small fields;
subscribers read the rows themselves.

Each process starts its bus once (`start`), with the transport `[events] transport`
picks: Redis pub/sub, PostgreSQL LISTEN/NOTIFY, or a log file read by one poller
per process on the embedded defaults. A process that never started one (the CLI,
a unit test) delivers to its own subscribers only.

Work that must happen exactly once per event (writing a notification row) is a
publish handler (`on_publish`): it runs in the process that publishes, once, before
the event goes out, never in the readers of every process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from clipsync.events.bus import Event, EventBus, Subscription, Transport
from clipsync.settings import Settings

if TYPE_CHECKING:
    from clipsync.plugins import PluginHost

__all__ = [
    "Event",
    "EventBus",
    "Subscription",
    "current",
    "on_delivery",
    "on_publish",
    "publish",
    "publish_status",
    "publish_video",
    "start",
    "status_changed",
    "stop",
]
log = logging.getLogger(__name__)
# The longest a service waits for its news to go out (a transport that hangs).
PUBLISH_SECONDS = 2.0
PublishHandler = Callable[[Event], Awaitable[None]]
# (prefixes, handler): run by `publish` in the publishing process only.
_handlers: list[tuple[tuple[str, ...], PublishHandler]] = []
# (prefixes, callback): run as this process hears each event (`on_delivery`); the
# same list is handed to every bus this process starts.
_listeners: list[tuple[tuple[str, ...], Callable[[Event], None]]] = []
_bus = EventBus(listeners=_listeners)


def on_delivery(prefixes: tuple[str, ...], listener: Callable[[Event], None]) -> None:
    """Call `listener` (synchronously, in the reader) for each event this process hears
    whose name matches: news from every process, this one's own included.

    Unlike a subscription it has no queue to overflow, so it suits work that must
    never miss an event and never waits (the cache dropping stale entries).
    Registering the same listener again changes nothing.
    """
    if not any(known is listener for _, known in _listeners):
        _listeners.append((prefixes, listener))


def on_publish(prefixes: tuple[str, ...], handler: PublishHandler) -> None:
    """Run `handler` once for each event this process publishes whose name matches.

    Registering the same handler again changes nothing (a process may install twice).
    """
    if not any(known is handler for _, known in _handlers):
        _handlers.append((prefixes, handler))


def transport_for(settings: Settings) -> Transport:
    """The transport `[events] transport` names, or the one "auto" picks."""
    from clipsync.db import dialect

    choice = settings.events.transport
    if choice == "auto":
        if settings.queue.backend == "redis":
            choice = "redis"
        elif dialect(settings.database_url) == "postgres":
            choice = "postgres"
        else:
            choice = "sqlite"
    if choice == "redis":
        from clipsync.events.redis_pubsub import RedisTransport

        return RedisTransport(settings.queue.redis_url.reveal())
    if choice == "postgres":
        from clipsync.events.postgres_notify import PostgresTransport

        return PostgresTransport(settings.database_url)
    from clipsync.events.sqlite_log import SqliteLogTransport

    return SqliteLogTransport(settings.data_dir / "events.sqlite3")


def current() -> EventBus:
    """This process's bus."""
    return _bus


async def start(settings: Settings) -> EventBus:
    """Start this process's bus and its one reader (once per worker process)."""
    global _bus
    await _bus.close()
    _bus = EventBus(transport_for(settings), _listeners)
    await _bus.start()
    assert _bus.transport is not None
    log.info("event bus started (%s)", _bus.transport.name)
    return _bus


async def stop() -> None:
    """Stop this process's bus; publishing afterwards reaches this process only."""
    global _bus
    bus, _bus = _bus, EventBus(listeners=_listeners)
    await bus.close()


async def publish(name: str, **data: Any) -> None:
    """Publish a domain event to every process; call it after the change committed.

    News is best effort: a transport that fails or hangs is logged after at most
    `PUBLISH_SECONDS`, never fails the change that was already made (the pages
    reload the state when they reconnect). The publish handlers run first; one that
    fails is logged and the others still run.
    """
    event = Event(name, data)
    for prefixes, handler in list(_handlers):
        if name.startswith(prefixes):
            try:
                await handler(event)
            except Exception:
                log.exception("publish handler for %s failed", name)
    try:
        await asyncio.wait_for(_bus.publish(event), PUBLISH_SECONDS)
    except Exception as exc:
        log.warning("event %s not published: %s", name, exc)


@asynccontextmanager
async def subscribe(*prefixes: str) -> AsyncIterator[Subscription]:
    """Receive this process's copy of events whose name starts with one of `prefixes`."""
    async with _bus.subscribe(prefixes) as subscription:
        yield subscription


# The event a video's new status is news of; other changes are `video.status`.
STATUS_NEWS = {
    "READY": "video.ready",
    "FAILED": "video.failed",
    "APPROVED": "video.approved",
    "REJECTED": "video.rejected",
}


async def publish_status(video: Any, **extra: Any) -> None:
    """Publish the news of the video's current status (`video.ready`, ...)."""
    await publish_video(STATUS_NEWS.get(str(video.status), "video.status"), video, **extra)


async def publish_video(name: str, video: Any, **extra: Any) -> None:
    """Publish a `video.*` event naming the video, its owner, category and status."""
    await publish(
        name,
        videoId=str(video.id),
        ownerId=video.owner_id,
        category=video.category,
        status=str(video.status),
        **extra,
    )


async def status_changed(
    plugins: PluginHost, video: Any, old: object, name: str | None = None
) -> None:
    """A video's status changed: the `video_status_changed` hook, then the news.

    `name` overrides the event `publish_status` would choose (`video.uploaded`).
    """
    await plugins.notify("video_status_changed", video=video, old=str(old), new=str(video.status))
    await publish_video(name or STATUS_NEWS.get(str(video.status), "video.status"), video)
