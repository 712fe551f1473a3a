"""The event bus of one process: publish through a transport, fan out to subscribers.

Every event goes out through the process's transport, and every process (this one
included) hears it back from its one reader and hands it to its local subscribers:
an asyncio queue per subscriber (an open live page, for instance). However many
pages are open, the process reads the transport once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

# Payloads carry ids and a few small fields, never whole rows: PostgreSQL's NOTIFY
# refuses more than 8000 bytes, and every process decodes every event.
MAX_PAYLOAD_BYTES = 7000
# A subscriber that falls this far behind loses the oldest news, not the process.
QUEUE_SIZE = 256


@dataclass(frozen=True)
class Event:
    """A domain event: a dotted name (`video.ready`) and a small JSON object."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)
    # What subscribers of this process read about it, read once (see `shared`).
    _reads: dict[str, asyncio.Future[Any]] = field(default_factory=dict, compare=False, repr=False)

    async def shared(self, key: str, read: Callable[[], Awaitable[T]]) -> T:
        """What `read` gives, read once in this process for all who ask about this event.

        Every local subscriber gets the same event, so a thousand open pages that
        each want the video it names cost one query, not a thousand. Treat the
        result as read-only: the other subscribers see the same object.
        """
        if key not in self._reads:
            self._reads[key] = asyncio.ensure_future(read())
        return await asyncio.shield(self._reads[key])

    def encode(self) -> str:
        return json.dumps({"name": self.name, "data": self.data}, separators=(",", ":"))

    @classmethod
    def decode(cls, payload: str | bytes) -> Event:
        raw = json.loads(payload)
        return cls(str(raw["name"]), dict(raw.get("data") or {}))


Deliver = Callable[[Event], None]


class Transport(Protocol):
    """Carries encoded events between processes; each process runs one reader."""

    name: str

    async def start(self, deliver: Deliver) -> None:
        """Start this process's one reader; it calls `deliver` for every event heard."""

    async def send(self, event: Event) -> None:
        """Send one event to every process (this one included)."""

    async def close(self) -> None:
        """Stop the reader and release connections."""


class Subscription:
    """One subscriber's queue of events, filtered by name prefix."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        self.prefixes = prefixes
        self.queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)

    def wants(self, event: Event) -> bool:
        return not self.prefixes or event.name.startswith(self.prefixes)

    def offer(self, event: Event) -> None:
        if self.queue.full():
            self.queue.get_nowait()  # the oldest news goes; a live page reloads state anyway
        self.queue.put_nowait(event)

    async def get(self, within: float | None = None) -> Event | None:
        """The next event, or None when `within` seconds pass without one."""
        try:
            return await asyncio.wait_for(self.queue.get(), within)
        except TimeoutError:
            return None


class EventBus:
    """One per process: a transport, its reader, and the local subscribers."""

    def __init__(
        self,
        transport: Transport | None = None,
        listeners: list[tuple[tuple[str, ...], Deliver]] | None = None,
    ) -> None:
        self.transport = transport
        self.subscriptions: set[Subscription] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        # (prefixes, callback): called as each event is heard, before any queue, so
        # nothing is lost to a full one (the cache drops what the news makes stale).
        self.listeners = [] if listeners is None else listeners

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        if self.transport is not None:
            await self.transport.start(self.deliver)

    async def close(self) -> None:
        if self.transport is not None:
            await self.transport.close()

    def deliver(self, event: Event) -> None:
        """Hand an event heard from the transport to every local subscriber that wants it."""
        for prefixes, listener in list(self.listeners):
            if event.name.startswith(prefixes):
                try:
                    listener(event)
                except Exception:
                    log.exception("event listener for %s failed", event.name)
        for subscription in list(self.subscriptions):
            if subscription.wants(event):
                subscription.offer(event)

    async def publish(self, event: Event) -> None:
        payload = event.encode()
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"event {event.name} is too large to send ({len(payload)} bytes)")
        if self.transport is None:
            self.deliver(event)
            return
        running = asyncio.get_running_loop()
        if self.loop is None or self.loop is running:
            await self.transport.send(event)
        else:
            # Published from another thread's loop: the transport's connections
            # belong to the loop the bus started on.
            future = asyncio.run_coroutine_threadsafe(self.transport.send(event), self.loop)
            await asyncio.wrap_future(future)

    @asynccontextmanager
    async def subscribe(self, prefixes: Iterable[str] = ()) -> AsyncIterator[Subscription]:
        """Receive events whose name starts with one of `prefixes` (all when empty)."""
        subscription = Subscription(tuple(prefixes))
        self.subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self.subscriptions.discard(subscription)


async def forever(step: Callable[[], Awaitable[None]], what: str, pause: float) -> None:
    """Run a reader's `step` again and again; a failure is logged and retried after `pause`."""
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("event %s failed, retrying in %.1f s: %s", what, pause, exc)
            await asyncio.sleep(pause)


# How long a process waits at start for its reader to listen.
READY_SECONDS = 5.0


async def wait_ready(ready: asyncio.Event, transport: str) -> None:
    """Wait until the reader listens, so nothing published after start is missed.

    A transport that is down does not stop the process from starting (its pages
    answer, and say so where they need the service); the reader keeps trying.
    """
    try:
        await asyncio.wait_for(ready.wait(), READY_SECONDS)
    except TimeoutError:
        log.warning("event bus: %s does not answer yet; live news waits for it", transport)
