"""Buffering events and writing them in batches, with a spool for when the store is away.

`record()` only appends to a buffer. A background task writes the buffer every
`flush_interval` seconds, or as soon as it holds `batch_size` events, one insert per
`batch_size` events. When an insert fails the batch goes to the `Spool` on local
disk; spooled batches are delivered, oldest first, on the following ticks, waiting
longer after each failure (from `flush_interval` up to `MAX_BACKOFF` seconds), several
files per insert (up to `batch_size` events), so that a long outage's many small
files do not become as many inserts.

While the store is away, what is buffered is spooled (written and fsync'd) at every
tick, whatever the back-off, so an event answered 200 is on disk within about
`flush_interval` seconds: a process killed during an outage loses no more than one
killed while the store answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from clipsync import metrics
from clipsync.analytics.events import WatchEvent
from clipsync.analytics.spool import Spool

log = logging.getLogger(__name__)

# Longest wait between tries while the store is away: how late delivery may resume.
MAX_BACKOFF = 10.0
# A spooled batch the store refuses this many times, while reachable, is set aside.
MAX_REFUSALS = 5

# insert(events, redelivery): write one batch in one insert. `redelivery` is True for
# a spooled batch, which the store may already hold in part (an insert that failed
# on the way back): the store must then skip the events it already has.
Insert = Callable[[list[WatchEvent], bool], Awaitable[None]]


class BatchWriter:
    """The write path shared by analytics backends."""

    def __init__(
        self,
        *,
        name: str,
        insert: Insert,
        unreachable: Callable[[BaseException], bool],
        spool: Spool,
        batch_size: int,
        flush_interval: float,
    ) -> None:
        self.name = name
        self._insert = insert
        self._unreachable = unreachable
        self.spool = spool
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._buffer: list[WatchEvent] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._down = False
        self._delay = 0.0
        self._retry_at = 0.0
        self._refusals: dict[Path, int] = {}
        #: Successful inserts, spooled deliveries included.
        self.inserts = 0
        #: Batches written to the spool.
        self.spooled = 0

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def store_down(self) -> bool:
        """Whether the last attempt to reach the store failed."""
        return self._down

    def start(self) -> None:
        """Start the background flusher (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"analytics-{self.name}-flusher")

    def record(self, events: list[WatchEvent]) -> None:
        self._buffer.extend(events)
        if len(self._buffer) >= self.batch_size:
            self._wake.set()

    async def flush(self) -> None:
        """Deliver the spool and write the buffer now, whatever the back-off says."""
        await self._flush(force=True)

    async def close(self) -> None:
        """Stop the flusher, then flush (what cannot be written is spooled)."""
        if self._task is not None:
            # Not cancel(): a batch being inserted must finish, or be spooled.
            self._stopping = True
            self._wake.set()
            await self._task
            self._task = None
        await self.flush()

    # --- the flusher ----------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_interval)
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self._flush(force=False)
            except Exception:  # the flusher must outlive any one bad batch
                log.exception("analytics (%s): flushing failed", self.name)

    async def _flush(self, force: bool) -> None:
        async with self._lock:
            attempt = force or not self._down or time.monotonic() >= self._retry_at
            failed_now = False
            if attempt and self.spool.files():
                failed_now = not await self._deliver_spool()
            if not self._buffer:
                return
            if self._down and (failed_now or not attempt):
                # The store is away: to disk now, not at the next attempt (up to
                # MAX_BACKOFF away), or a killed process would lose all it accepted.
                await self._spool_buffer()
                return
            await self._write_buffer()

    async def _write_buffer(self) -> None:
        while self._buffer:
            batch = self._buffer[: self.batch_size]
            del self._buffer[: self.batch_size]
            try:
                await self._insert(batch, False)
            except Exception as exc:
                self._buffer[:0] = batch
                self._failed(exc)
                await self._spool_buffer()
                return
            self.inserts += 1
            self._recovered()

    async def _spool_buffer(self) -> None:
        while self._buffer:
            batch = self._buffer[: self.batch_size]
            try:
                path = await asyncio.to_thread(self.spool.put, batch)
            except OSError:
                log.exception(
                    "analytics (%s): cannot spool %d events to %s; keeping them in memory",
                    self.name,
                    len(self._buffer),
                    self.spool.folder,
                )
                return
            # Only what was spooled: record() may have added more meanwhile.
            del self._buffer[: len(batch)]
            self.spooled += 1
            metrics.analytics_spooled(len(batch))
            log.debug("analytics (%s): spooled %d events to %s", self.name, len(batch), path)

    async def _deliver_spool(self) -> bool:
        """Deliver spooled batches; False when the store turned out to be unreachable."""
        with self.spool.delivering() as mine:
            if not mine:  # another process is delivering this folder
                return True
            delivered = 0
            group: list[tuple[Path, list[WatchEvent]]] = []
            for path in self.spool.files():
                try:
                    events = await asyncio.to_thread(self.spool.read, path)
                except (OSError, ValueError, TypeError, KeyError) as exc:
                    log.error("analytics (%s): unreadable spool file %s: %s", self.name, path, exc)
                    self.spool.reject(path)
                    continue
                if group and sum(len(batch) for _, batch in group) + len(events) > self.batch_size:
                    sent = await self._deliver_group(group)
                    if sent is None:
                        return False
                    delivered += sent
                    group = []
                group.append((path, events))
            if group:
                sent = await self._deliver_group(group)
                if sent is None:
                    return False
                delivered += sent
            if delivered:
                log.info("analytics (%s): delivered %d spooled events", self.name, delivered)
            return True

    async def _deliver_group(self, group: list[tuple[Path, list[WatchEvent]]]) -> int | None:
        """Insert spooled files as one batch; the events delivered, or None if unreachable.

        A file is removed only once the insert holding it succeeded; one killed in
        between is sent again, and the store skips what it already has.
        """
        events = [event for _, batch in group for event in batch]
        try:
            await self._insert(events, True)
        except Exception as exc:
            if self._unreachable(exc):
                self._failed(exc)
                return None
            if len(group) == 1:
                self._refused(group[0][0], exc)
                return 0
            # One of them is refused: file by file, so only that one is set aside.
            sent = 0
            for item in group:
                one = await self._deliver_group([item])
                if one is None:
                    return None
                sent += one
            return sent
        for path, _ in group:
            self.spool.remove(path)
            self._refusals.pop(path, None)
        self.inserts += 1
        self._recovered()
        return len(events)

    def _refused(self, path: Path, exc: BaseException) -> None:
        count = self._refusals.get(path, 0) + 1
        self._refusals[path] = count
        if count < MAX_REFUSALS:
            log.warning("analytics (%s): the store refused %s: %s", self.name, path.name, exc)
            return
        self._refusals.pop(path, None)
        target = self.spool.reject(path)
        log.error(
            "analytics (%s): the store refused %s %d times (%s); set aside as %s",
            self.name,
            path.name,
            count,
            exc,
            target,
        )

    def _failed(self, exc: BaseException) -> None:
        if not self._down:
            log.warning(
                "analytics (%s): cannot write (%s); events go to %s until it can",
                self.name,
                exc,
                self.spool.folder,
            )
        self._down = True
        self._delay = min(MAX_BACKOFF, self._delay * 2 if self._delay else self.flush_interval)
        self._retry_at = time.monotonic() + self._delay

    def _recovered(self) -> None:
        if self._down:
            log.info("analytics (%s): the store answers again", self.name)
        self._down = False
        self._delay = 0.0
