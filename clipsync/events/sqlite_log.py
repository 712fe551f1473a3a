"""Events across processes on the embedded defaults: a small log file, one reader each.

Publishers append a row to `events.sqlite3` in the data directory (its own file, so
a burst of progress events never waits on the main database's write lock); each
process reads rows newer than the last it saw every `POLL_SECONDS`, whatever the
number of open live pages. Rows older than `KEEP_SECONDS` are pruned by publishers.
The embedded defaults already keep every process on one host (the SQLite database
and queue), so a file in the data directory reaches them all.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from clipsync.events.bus import Deliver, Event, forever
from clipsync.sqlite_wal import enable_wal

POLL_SECONDS = 0.5
KEEP_SECONDS = 300
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, payload TEXT NOT NULL)"
)


class SqliteLogTransport:
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.last_id = 0
        self.reads = 0  # polls made by this process's reader (tests count them)
        self._reader: asyncio.Task[None] | None = None

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        enable_wal(conn, timeout=10)
        conn.execute(SCHEMA)
        return conn

    def _newest(self) -> int:
        with self._connect() as conn:
            return conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]

    def _append(self, payload: str) -> None:
        now = time.time()
        conn = self._connect()
        try:
            conn.execute("INSERT INTO events (at, payload) VALUES (?, ?)", (now, payload))
            conn.execute("DELETE FROM events WHERE at < ?", (now - KEEP_SECONDS,))
        finally:
            conn.close()

    def _read_after(self, last_id: int) -> list[tuple[int, str]]:
        conn = self._connect()
        try:
            query = "SELECT id, payload FROM events WHERE id > ? ORDER BY id LIMIT 1000"
            return conn.execute(query, (last_id,)).fetchall()
        finally:
            conn.close()

    async def start(self, deliver: Deliver) -> None:
        # Only news from now on: a page that opens loads the current state itself.
        self.last_id = await asyncio.to_thread(self._newest)

        async def poll() -> None:
            rows = await asyncio.to_thread(self._read_after, self.last_id)
            self.reads += 1
            for row_id, payload in rows:
                self.last_id = row_id
                deliver(Event.decode(payload))
            await asyncio.sleep(POLL_SECONDS)

        self._reader = asyncio.create_task(forever(poll, "log read", POLL_SECONDS))

    async def send(self, event: Event) -> None:
        await asyncio.to_thread(self._append, event.encode())

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
