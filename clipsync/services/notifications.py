"""Notifications: delivering what an event tells people, and the in-app inbox.

Exactly once, however many processes run: the messages for an event are made by a
publish handler (`events.on_publish`), which runs in the one process that published
the event (the Sanic worker that handled the moderator's request, or the job
consumer that finished the transcode), once, before the event goes out. No process
acts on what its bus reader hears, so N Sanic workers never make N rows or N mails.
Each process that publishes calls `install` at start (the web workers and the job
runtime do).

Who hears what is `notification_audience`; the types and each person's choices are
`notification_types`. A message goes to every channel a plugin registers
(`register_notifiers`) that the person wants for its type:

- `deliver(message)` runs in the publishing process. The in-app channel writes the
  inbox row there; a channel that reaches outside (email) writes a `Delivery` row and
  queues it (`queue_delivery`), never sending inside the request.
- `send(delivery)` runs in the job consumer (`deliver_notification` task), with
  retries and back-off from `[notifications]`; a delivery that still fails after the
  last attempt is marked FAILED with the reason.
- `broadcast(event)`, when a channel has it, runs once per event for channels that
  are not per person (webhooks).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from tortoise.expressions import Q

from clipsync import events, metrics
from clipsync.backends import BackendContext
from clipsync.errors import NotFound
from clipsync.events import Event
from clipsync.models import Delivery, DeliveryStatus, Notification, User
from clipsync.plugins import PluginHost
from clipsync.services import notification_audience, notification_types
from clipsync.services.notification_types import Message
from clipsync.settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "Message",
    "Notifier",
    "deliver",
    "deliver_all",
    "install",
    "queue_delivery",
    "send_delivery",
]

PAGE_SIZE = 20
# The events whose messages this module delivers.
PREFIXES = ("video.", "account.", "admin.", "comment.")


@dataclass
class Inbox:
    """One page of a person's notifications, with their totals."""

    items: list[Notification]
    total: int
    unread: int


class Notifier(Protocol):
    """A channel (see the `register_notifiers` hook); `send` and `broadcast` are optional."""

    name: str

    async def deliver(self, message: Message) -> None: ...


# Queues a delivery's job: (delivery id, delay in seconds).
EnqueueDelivery = Callable[[int, float], None]


@dataclass
class _Installed:
    settings: Settings | None = None
    notifiers: tuple[Any, ...] = ()
    enqueue: EnqueueDelivery | None = None


# This process's channels, from its plugins (the last `install` wins).
_installed = _Installed()


def make_notifiers(plugins: PluginHost) -> tuple[Any, ...]:
    """One instance of each registered notifier, given its plugin's settings."""
    return tuple(
        cls(BackendContext(plugins.settings, plugins.plugin_config(plugin)))
        for plugin, classes in plugins.collect("register_notifiers")
        for cls in classes
    )


def install(plugins: PluginHost, enqueue: EnqueueDelivery | None = None) -> None:
    """Deliver notifications for the events this process publishes (call once at start).

    `enqueue` queues the job of an outside delivery; without it (a process with no
    queue) such deliveries stay PENDING for the reaper to queue.
    """
    _installed.settings = plugins.settings
    _installed.notifiers = make_notifiers(plugins)
    _installed.enqueue = enqueue
    events.on_publish(PREFIXES, on_event)


def notifier(name: str) -> Any | None:
    """This process's notifier called `name`."""
    return next((n for n in _installed.notifiers if n.name == name), None)


def email_enabled() -> bool:
    """Whether this process can send email (the `email` channel is set up)."""
    channel = notifier("email")
    return channel is not None and bool(getattr(channel, "enabled", True))


async def on_event(event: Event) -> None:
    """The publish handler: deliver every message the event makes, then broadcast it."""
    await deliver_all(await notification_audience.messages_for(event))
    for channel in _installed.notifiers:
        if hasattr(channel, "broadcast"):
            try:
                await channel.broadcast(event)
            except Exception:
                log.exception("notifier %s failed to broadcast %s", channel.name, event.name)


async def deliver(message: Message) -> None:
    """Hand one message to every channel its person wants for its type."""
    await deliver_all([message])


async def deliver_all(messages: list[Message]) -> None:
    """Hand messages to every channel, each to the people who want it there.

    An event may tell a whole category: preferences are read in one query per
    channel, and a channel with `deliver_many` gets the batch at once. A channel
    that fails is logged; the other channels (and, one by one, the other
    messages) still deliver.
    """
    settings = _installed.settings
    if not messages or settings is None:
        return
    for channel in _installed.notifiers:
        batch = await notification_types.chosen(settings, messages, channel.name)
        if not batch:
            continue
        if hasattr(channel, "deliver_many"):
            try:
                await channel.deliver_many(batch)
            except Exception:
                log.exception("notifier %s failed for %d messages", channel.name, len(batch))
            continue
        for message in batch:
            try:
                await channel.deliver(message)
            except Exception:
                log.exception("notifier %s failed for %s", channel.name, message.type)


def queue_delivery(delivery: Delivery, delay: float = 0.0) -> None:
    """Queue the job that sends `delivery` (after `delay` seconds)."""
    if _installed.enqueue is None:
        log.warning("no job queue in this process: delivery %s waits for the reaper", delivery.id)
        return
    try:
        _installed.enqueue(delivery.id, delay)
    except Exception as exc:
        # The row stays PENDING: the reaper queues it again (see `requeue_stale`).
        log.warning("could not queue delivery %s: %s", delivery.id, exc)


async def queue_lost_deliveries(older_than: timedelta = timedelta(minutes=10)) -> int:
    """Queue again deliveries whose first job never ran (the queue was down).

    The reaper calls it. Only rows never attempted: retries are the queue's. A
    digest's rows wait for their window first, so they count as lost only after it.
    """
    now = datetime.now(UTC)
    digest = timedelta(minutes=_installed.settings.notifications.digest_minutes
                       if _installed.settings else 0)  # fmt: skip
    lost = await Delivery.filter(
        Q(status=DeliveryStatus.PENDING, created_at__lt=now - older_than)
        | Q(status=DeliveryStatus.BATCHED, created_at__lt=now - older_than - digest),
        attempts=0,
    ).limit(500)
    for delivery in lost:
        queue_delivery(delivery)
    return len(lost)


class DeliveryFailed(Exception):
    """This attempt failed and another will follow; the queue retries on it."""


async def send_delivery(plugins: PluginHost, delivery_id: int, *, final_attempt: bool) -> None:
    """Send one queued delivery through its channel (the job's body).

    A delivery already SENT or FAILED is left alone, so a repeated job never sends
    twice. A failed attempt is recorded; it raises `DeliveryFailed` for the queue to
    retry, or, on the last attempt, marks the delivery FAILED.
    """
    delivery = await Delivery.get_or_none(id=delivery_id)
    if delivery is None or delivery.status in (DeliveryStatus.SENT, DeliveryStatus.FAILED):
        return
    channel = notifier(delivery.channel) or next(
        (n for n in make_notifiers(plugins) if n.name == delivery.channel), None
    )
    now = datetime.now(UTC)
    # Claim this attempt: of two jobs for one row (a job queued again by the reaper
    # while the first still ran), only one gets past here.
    claimed = await Delivery.filter(
        id=delivery.id, attempts=delivery.attempts, status=delivery.status
    ).update(attempts=delivery.attempts + 1, last_attempt_at=now)
    if not claimed:
        return
    delivery.attempts += 1
    delivery.last_attempt_at = now
    try:
        if channel is None or not hasattr(channel, "send"):
            raise RuntimeError(f"no notifier called {delivery.channel!r} sends deliveries")
        await channel.send(delivery)
    except Exception as exc:
        delivery.last_error = str(exc)[:2000] or type(exc).__name__
        if final_attempt:
            delivery.status = DeliveryStatus.FAILED
        await delivery.save(
            update_fields=["attempts", "last_attempt_at", "last_error", "status", "response_status"]
        )
        metrics.delivery_attempted(delivery.channel, "failed" if final_attempt else "retried")
        if final_attempt:
            log.warning("delivery %s (%s) failed for good: %s", delivery.id, delivery.channel, exc)
            return
        raise DeliveryFailed(delivery.last_error) from exc
    if delivery.status != DeliveryStatus.SENT:
        # A channel may settle several rows at once (a digest) and mark them itself.
        delivery.status = DeliveryStatus.SENT
        delivery.sent_at = now
    delivery.last_error = ""
    await delivery.save(
        update_fields=[
            "attempts", "last_attempt_at", "last_error", "status", "sent_at", "response_status"
        ]
    )  # fmt: skip
    metrics.delivery_attempted(delivery.channel, "sent")


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
