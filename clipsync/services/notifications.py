"""Notifications: who hears what from a domain event, and the in-app inbox.

Exactly once, however many processes run: the notification for an event is written
by a publish handler (`events.on_publish`), which runs in the one process that
published the event (the Sanic worker that handled the moderator's request, or the
job consumer that finished the transcode), once, before the event goes out. No
process writes notifications from what its bus reader hears, so N Sanic workers
never make N rows. Each process that publishes calls `install(plugins)` at start (the
web workers and the job runtime do).

A message goes to every channel a plugin registers (`register_notifiers`); the
built-in `notify_inapp` writes the inbox row. After a person's inbox changes,
`notification.changed` (with `userId`) tells their open bells, in every process, to
show the new unread count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from clipsync import events
from clipsync.errors import NotFound
from clipsync.events import Event
from clipsync.models import Notification, User, Video
from clipsync.plugins import PluginHost

log = logging.getLogger(__name__)

PAGE_SIZE = 20
# The video events the uploader hears about.
UPLOADER_TYPES = ("video.ready", "video.failed", "video.approved", "video.rejected", "video.moved")


@dataclass(frozen=True)
class Message:
    """What one person is told: the in-app item's fields."""

    user_id: int
    type: str
    title: str
    body: str
    url: str
    video_id: Any = None


@dataclass
class Inbox:
    """One page of a person's notifications, with their totals."""

    items: list[Notification]
    total: int
    unread: int


class Notifier(Protocol):
    """A channel (see the `register_notifiers` hook)."""

    name: str

    async def deliver(self, message: Message) -> None: ...


# This process's channels, from its plugins (the last `install` wins).
_notifiers: list[Notifier] = []


def install(plugins: PluginHost) -> None:
    """Deliver notifications for the events this process publishes (call once at start)."""
    _notifiers[:] = [
        cls() for _, classes in plugins.collect("register_notifiers") for cls in classes
    ]
    events.on_publish(("video.",), on_event)


def _name(video: Video) -> str:
    return f"“{video.title or video.original_filename or 'Untitled'}”"


def message_for(event: Event, video: Video) -> Message | None:
    """The uploader's message for a video event, or None when it tells them nothing."""
    name = _name(video)
    watch = f"/watch/{video.id}"
    if event.name == "video.ready":
        title, body, url = f"{name} is ready", "It has been processed and can be watched.", watch
    elif event.name == "video.failed":
        reason = (video.error or "the file could not be processed").strip()
        title, body, url = f"{name} could not be processed", f"Reason: {reason}", "/videos"
    elif event.name == "video.approved":
        title, body, url = f"{name} was approved", "It is now visible to its category.", watch
    elif event.name == "video.rejected":
        reason = (video.moderation_reason or "no reason was given").strip()
        title, body, url = f"{name} was rejected", f"Reason: {reason}", "/videos"
    elif event.name == "video.moved":
        old = event.data.get("oldCategory") or "its category"
        title = f"{name} was moved"
        body, url = f"It moved from {old} to {video.category}.", watch
    else:
        return None
    return Message(video.owner_id, event.name, title[:200], body, url, video.id)


async def on_event(event: Event) -> None:
    """The publish handler: tell the uploader what happened to their video."""
    if event.name not in UPLOADER_TYPES or not event.data.get("videoId"):
        return
    video = await Video.get_or_none(id=event.data["videoId"])
    if video is None:
        return
    message = message_for(event, video)
    if message is not None:
        await deliver(message)


async def deliver(message: Message) -> None:
    """Hand the message to every channel; one that fails is logged, the others still run."""
    for notifier in list(_notifiers):
        try:
            await notifier.deliver(message)
        except Exception:
            log.exception("notifier %s failed for %s", notifier.name, message.type)


async def unread_count(user: User) -> int:
    return await Notification.filter(user_id=user.id, read_at__isnull=True).count()


async def inbox(user: User, *, unread_only: bool = False, page: int = 1) -> Inbox:
    """A page of the person's notifications, newest first."""
    query = Notification.filter(user_id=user.id)
    if unread_only:
        query = query.filter(read_at__isnull=True)
    total = await query.count()
    items = (
        await query.order_by("-created_at", "-id")
        .offset((max(page, 1) - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    )
    return Inbox(list(items), total, await unread_count(user))


async def mark_read(user: User, notification_id: int) -> Notification:
    """Mark one of the person's notifications read; another person's is not found."""
    item = await Notification.get_or_none(id=notification_id, user_id=user.id)
    if item is None:
        raise NotFound("There is no such notification.")
    if item.read_at is None:
        item.read_at = datetime.now(UTC)
        await item.save(update_fields=["read_at"])
        await events.publish("notification.changed", userId=user.id)
    return item


async def mark_all_read(user: User) -> int:
    """Mark every unread notification of the person read; returns how many."""
    count = await Notification.filter(user_id=user.id, read_at__isnull=True).update(
        read_at=datetime.now(UTC)
    )
    if count:
        await events.publish("notification.changed", userId=user.id)
    return count


async def prune_read(keep_days: int) -> int:
    """Delete read notifications older than `keep_days`; returns how many went."""
    cutoff = datetime.now(UTC) - timedelta(days=keep_days)
    return await Notification.filter(read_at__isnull=False, created_at__lt=cutoff).delete()


def as_json(item: Notification) -> dict[str, Any]:
    """The API's shape of one notification."""
    data: dict[str, Any] = {
        "id": item.id,
        "type": item.type,
        "createdAt": item.created_at.isoformat(),
        "readAt": item.read_at.isoformat() if item.read_at else None,
        "title": item.title,
        "body": item.body,
        "url": item.url,
    }
    if item.video_id is not None:
        data["videoId"] = str(item.video_id)
    return data
