"""Events across processes and hosts through Redis pub/sub (`[queue] backend = "redis"`)."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from clipsync.events.bus import Deliver, Event, forever, wait_ready

CHANNEL = "clipsync:events"
RECONNECT_SECONDS = 1.0


class RedisTransport:
    name = "redis"

    def __init__(self, url: str) -> None:
        self.url = url
        self._client = aioredis.Redis.from_url(url)
        self._reader: asyncio.Task[None] | None = None

    async def start(self, deliver: Deliver) -> None:
        ready = asyncio.Event()

        async def listen() -> None:
            async with self._client.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(CHANNEL)
                ready.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        deliver(Event.decode(message["data"]))

        self._reader = asyncio.create_task(forever(listen, "subscription", RECONNECT_SECONDS))
        await wait_ready(ready, self.name)

    async def send(self, event: Event) -> None:
        await self._client.publish(CHANNEL, event.encode())

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        await self._client.aclose()
