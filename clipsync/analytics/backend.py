"""`BufferedBackend`: what the built-in analytics backends share, for plugins to reuse.

A subclass says how to open its store, insert one batch and answer the sums of
`clipsync.analytics.figures.FigureSource`; this class does the rest of the
`AnalyticsBackend` contract: buffering and batching (`BatchWriter`), the spool, and
running the store's synchronous client in threads. Writes run on one thread and
reads on another, each with its own connection, so a dashboard never waits behind a
batch being written and the event loop never waits for either.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import ClassVar, TypeVar

from clipsync.analytics import figures, recommendations
from clipsync.analytics.events import Period, Scope, WatchEvent, millis
from clipsync.analytics.figures import (
    CategoryStats,
    FigureSource,
    Overview,
    TopVideo,
    VideoStats,
)
from clipsync.analytics.spool import Spool
from clipsync.analytics.writer import BatchWriter
from clipsync.errors import AnalyticsUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


def spool_folder(data_dir: Path, backend: str) -> Path:
    """Where a backend spools: `<data_dir>/analytics-spool/<backend>`."""
    return data_dir / "analytics-spool" / backend


class BufferedBackend(ABC):
    """An analytics backend that buffers, batches and spools; see the module docstring."""

    name: ClassVar[str]

    def __init__(
        self,
        *,
        spool_dir: Path,
        min_view_seconds: float = 3.0,
        batch_size: int = 5000,
        flush_interval: float = 1.0,
    ) -> None:
        self.min_view_ms = millis(min_view_seconds)
        self.writer = BatchWriter(
            name=self.name,
            insert=self._insert,
            unreachable=self.unreachable,
            spool=Spool(spool_dir),
            batch_size=batch_size,
            flush_interval=flush_interval,
        )
        self._writes = ThreadPoolExecutor(1, thread_name_prefix=f"analytics-{self.name}-write")
        self._reads = ThreadPoolExecutor(1, thread_name_prefix=f"analytics-{self.name}-read")
        self._opened = False
        self._closed = False
        self._source: FigureSource | None = None

    # --- what a subclass provides (each called on its own thread) ---------------------

    @abstractmethod
    def open_store(self) -> None:
        """Write thread: connect, and create or upgrade the schema. Must be idempotent."""

    @abstractmethod
    def insert(self, events: list[WatchEvent], redelivery: bool) -> None:
        """Write thread: write one batch in one insert (see `writer.Insert`)."""

    @abstractmethod
    def open_source(self) -> FigureSource:
        """Read thread: a connected `FigureSource` (kept and reused)."""

    @abstractmethod
    def close_store(self) -> None:
        """Write thread: close the write connection."""

    @abstractmethod
    def close_source(self, source: FigureSource) -> None:
        """Read thread: close the read connection."""

    def reopen(self) -> None:
        """Write thread: run `open_store()` again before the next insert."""
        self._opened = False

    def unreachable(self, exc: BaseException) -> bool:
        """Whether `exc` means the store cannot be reached now (so retrying may work)."""
        return False

    def describe_store(self) -> str:
        """The store, as named in messages a person reads (never with secrets)."""
        return self.name

    # --- the AnalyticsBackend contract -------------------------------------------------

    @property
    def inserts(self) -> int:
        """How many inserts reached the store (spool deliveries included)."""
        return self.writer.inserts

    @property
    def spool(self) -> Spool:
        return self.writer.spool

    async def start(self) -> None:
        """Open the store and upgrade its schema, start the flusher, deliver the spool.

        An unreachable store is not an error here: events are spooled until it
        answers. Any other failure (a schema that cannot be upgraded) is raised.
        """
        try:
            await self._on_writer(self._ensure_open)
        except Exception as exc:
            if not self.unreachable(exc):
                raise
            log.warning(
                "analytics (%s): %s is unreachable at start (%s); events will be spooled",
                self.name,
                self.describe_store(),
                exc,
            )
            self.writer.start()
            return
        self.writer.start()
        await self.writer.flush()

    async def record(self, events: Sequence[WatchEvent]) -> None:
        """Buffer events; returns at once and never raises for an unreachable store."""
        self.writer.record(list(events))

    async def flush(self) -> None:
        """Write what is buffered now (and deliver the spool); spool what cannot be."""
        await self.writer.flush()

    async def overview(self, period: Period, scope: Scope) -> Overview:
        return await self._figures(figures.overview, period, scope)

    async def video_stats(self, video_id: str, period: Period) -> VideoStats:
        return await self._figures(figures.video_stats, video_id, period)

    async def category_stats(self, period: Period, scope: Scope) -> list[CategoryStats]:
        return await self._figures(figures.category_stats, period, scope)

    async def co_watched(
        self, since: date, min_seconds: float, limit: int = 20
    ) -> list[recommendations.CoWatched]:
        """Who watched this also watched that: see `clipsync.analytics.recommendations`."""
        return await self._figures(recommendations.co_watched, since, min_seconds, limit)

    async def popular(self, period: Period, limit: int = 10) -> list[TopVideo]:
        """The most viewed videos of `period`: see `clipsync.analytics.recommendations`."""
        return await self._figures(recommendations.popular, period, limit)

    async def disconnect(self) -> None:
        """Close the store's connections now; the next write or read opens them again.

        For a planned restart of the store: ClickHouse, for one, waits for open
        connections before it stops.
        """
        await self._on_writer(self._close_writes)
        await asyncio.get_running_loop().run_in_executor(self._reads, self._close_reads)

    async def close(self) -> None:
        """Flush (spooling what the store does not take), then close connections."""
        if self._closed:
            return
        self._closed = True
        await self.writer.close()
        await self.disconnect()
        self._writes.shutdown(wait=False)
        self._reads.shutdown(wait=False)

    # --- plumbing ----------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if not self._opened:
            self.open_store()
            self._opened = True

    def _insert_now(self, events: list[WatchEvent], redelivery: bool) -> None:
        self._ensure_open()
        self.insert(events, redelivery)

    async def _insert(self, events: list[WatchEvent], redelivery: bool) -> None:
        await self._on_writer(self._insert_now, events, redelivery)

    def _close_writes(self) -> None:
        self._opened = False
        self.close_store()

    def _close_reads(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            self.close_source(source)

    async def _on_writer(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writes, fn, *args)

    def _read_now(self, fn: Callable[..., T], *args: object) -> T:
        if self._source is None:
            self._source = self.open_source()
        return fn(self._source, *args)

    async def _figures(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        try:
            if not self._opened:  # the schema must exist before anything reads it
                await self._on_writer(self._ensure_open)
            return await loop.run_in_executor(self._reads, self._read_now, fn, *args)
        except Exception as exc:
            if not self.unreachable(exc):
                raise
            raise AnalyticsUnavailable(
                f"Analytics are unavailable right now: {self.describe_store()} does not "
                "answer. Events are kept and will be counted once it is back."
            ) from exc
