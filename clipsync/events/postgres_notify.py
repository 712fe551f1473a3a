"""Events across processes and hosts through PostgreSQL LISTEN/NOTIFY.

A dedicated connection listens (asyncpg's `add_listener`); another sends, so a
NOTIFY never waits behind a listener. PostgreSQL refuses payloads over 8000 bytes:
the bus sends ids and small fields only.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from clipsync.events.bus import Deliver, Event, forever, wait_ready

CHANNEL = "clipsync_events"
RECONNECT_SECONDS = 1.0


def asyncpg_dsn(database_url: str) -> str:
    """Tortoise spells PostgreSQL URLs `postgres://`; asyncpg takes the same form."""
    return "postgresql://" + database_url.split("://", 1)[1]


class PostgresTransport:
    name = "postgres"

    def __init__(self, database_url: str) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self._listener: asyncpg.Connection | None = None
        self._sender: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None

    async def start(self, deliver: Deliver) -> None:
        ready = asyncio.Event()

        def heard(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            deliver(Event.decode(payload))

        async def listen() -> None:
            conn = await asyncpg.connect(self.dsn)
            self._listener = conn
            closed = asyncio.Event()
            conn.add_termination_listener(lambda _conn: closed.set())
            await conn.add_listener(CHANNEL, heard)
            ready.set()
            await closed.wait()
            raise ConnectionError("the listening connection closed")

        self._reader = asyncio.create_task(forever(listen, "listener", RECONNECT_SECONDS))
        await wait_ready(ready, self.name)

    async def send(self, event: Event) -> None:
        async with self._lock:
            if self._sender is None or self._sender.is_closed():
                self._sender = await asyncpg.connect(self.dsn)
            await self._sender.execute("SELECT pg_notify($1, $2)", CHANNEL, event.encode())

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        for conn in (self._listener, self._sender):
            if conn is not None and not conn.is_closed():
                await conn.close()
        self._listener = self._sender = None
