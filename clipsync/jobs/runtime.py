"""The per-process runtime of the job consumer.

Huey runs tasks as plain functions in worker threads. Each consumer process gets
one event loop, in a thread of its own, with the ORM and the backends opened once;
a task hands its coroutine to that loop and waits for the result. Tasks in several
worker threads share the loop, which suits work that mostly waits on ffmpeg.

At most `max_concurrent` transcoding jobs run at once in one process, however many
worker threads there are: a transcode takes a slot (`transcode_slot`) first, so a
box keeps CPU (or its one GPU) for serving pages while it encodes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from clipsync import db
from clipsync.backends import Backends, select_all
from clipsync.plugins import create_plugin_host
from clipsync.services.transcoding import JobContext, max_concurrent
from clipsync.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


class WorkerRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._context: JobContext | None = None
        self._slots: threading.BoundedSemaphore | None = None
        self.max_concurrent = 0
        # Videos whose job waits for a slot: queued, as far as the reaper is concerned.
        self._waiting: set[str] = set()

    @property
    def started(self) -> bool:
        return self._loop is not None

    def _start(self) -> None:
        plugins = create_plugin_host(self.settings)
        backends = Backends(select_all(plugins, self.settings))
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="clipsync-jobs", daemon=True).start()
        asyncio.run_coroutine_threadsafe(db.open_database(self.settings), loop).result()
        self._context = JobContext(self.settings, plugins, backends)
        self.max_concurrent = max_concurrent(self.settings, backends)
        self._slots = threading.BoundedSemaphore(self.max_concurrent)
        self._loop = loop
        log.info(
            "job runtime ready (%s transcoder, %d job(s) at once)",
            backends.selections["transcoder"].chosen.name,
            self.max_concurrent,
        )

    def context(self) -> JobContext:
        with self._lock:
            if self._loop is None:
                self._start()
        assert self._context is not None
        return self._context

    @contextmanager
    def transcode_slot(self, video_id: str) -> Iterator[None]:
        """Wait (this worker thread) until fewer than `max_concurrent` transcodes run."""
        self.context()
        assert self._slots is not None
        with self._lock:
            self._waiting.add(video_id)
        try:
            self._slots.acquire()
        finally:
            with self._lock:
                self._waiting.discard(video_id)
        try:
            yield
        finally:
            self._slots.release()

    def waiting(self) -> set[str]:
        """Videos whose transcode is waiting for a slot."""
        with self._lock:
            return set(self._waiting)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the runtime's loop and wait for its result."""
        self.context()
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def close(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(db.close_database(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
