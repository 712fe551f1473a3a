"""The per-process runtime of the job consumer.

Huey runs tasks as plain functions in worker threads. Each consumer process gets
one event loop, in a thread of its own, with the ORM and the backends opened once;
a task hands its coroutine to that loop and waits for the result. Tasks in several
worker threads share the loop, which suits work that mostly waits on ffmpeg.

At most `max_concurrent` transcoding jobs run at once in one process, however many
worker threads there are: a transcode takes a slot (`transcode_slot`) first, so a
box keeps CPU (or its one GPU) for serving pages while it encodes.

A process that runs as a consumer (`start_consumer`) also shows it is alive
(`jobs.liveness`), renews the leases of its running jobs every
`[queue] heartbeat_seconds`, and runs the reaper at once and then every
`[queue] reaper_interval_seconds` (its install-wide duties once per interval for
all hosts together): a consumer that starts after one was killed queues the killed
one's videos again straight away.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from clipsync import cache, db, events, generated_keys, tracing
from clipsync.backends import Backends, select_all
from clipsync.jobs.liveness import Liveness, Presence, new_consumer_id
from clipsync.plugins import create_plugin_host
from clipsync.services import chunk_jobs, notifications, reaper
from clipsync.services.transcoding import JobContext, max_concurrent, renew_leases
from clipsync.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


class WorkerRuntime:
    def __init__(self, settings: Settings, liveness: Liveness | None = None) -> None:
        self.settings = settings
        self.liveness = liveness
        self.consumer_id = new_consumer_id()
        self._presence: Presence | None = None
        self._duties: list[asyncio.Future[None]] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._context: JobContext | None = None
        self._slots: threading.BoundedSemaphore | None = None
        self.max_concurrent = 0
        # Videos whose job waits for a slot: queued, as far as the reaper is concerned.
        self._waiting: set[str] = set()
        # Queues a notification's delivery job (set by `register_tasks`).
        self.enqueue_delivery: notifications.EnqueueDelivery | None = None
        # Queue a video's transcode, and a chunk of one (set by `register_tasks`; see
        # services/chunked_transcoding.py).
        self.enqueue_transcode: Callable[[uuid.UUID], object] | None = None
        self.enqueue_chunk: Callable[[str, str, int, float], object] | None = None

    @property
    def started(self) -> bool:
        return self._loop is not None

    def _start(self) -> None:
        plugins = create_plugin_host(self.settings)
        # Before the backends are built, so that with tracing on their calls are traced.
        tracing.start(plugins)
        backends = Backends(select_all(plugins, self.settings))
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="clipsync-jobs", daemon=True).start()
        asyncio.run_coroutine_threadsafe(db.open_database(self.settings), loop).result()
        # A worker host with keys of its own (jobs sign links in emails) never starts.
        check = generated_keys.check_shared(self.settings)
        asyncio.run_coroutine_threadsafe(check, loop).result()
        # Progress, ready and failed reach the live pages of every server process.
        asyncio.run_coroutine_threadsafe(events.start(self.settings), loop).result()
        # What jobs change is dropped from the cache before their news goes out.
        asyncio.run_coroutine_threadsafe(cache.start(self.settings), loop).result()
        # People hear of ready and failed from the process that decided it.
        notifications.install(plugins, self.enqueue_delivery)
        self._context = JobContext(
            self.settings,
            plugins,
            backends,
            consumer_id=self.consumer_id,
            liveness=self.liveness,
            enqueue_transcode=self.enqueue_transcode,
            enqueue_chunk=self.enqueue_chunk,
        )
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

    def start_consumer(
        self, enqueue: Callable[[uuid.UUID], object], queued: Callable[[], set[str]]
    ) -> None:
        """Show this consumer alive, renew its jobs' leases, and run the reaper now and then."""
        ctx = self.context()
        assert self._loop is not None
        if self.liveness is not None:
            self._presence = Presence(self.liveness, self.consumer_id)
            self._presence.start()
        self._duties = [
            asyncio.run_coroutine_threadsafe(self._renew_leases(ctx), self._loop),
            asyncio.run_coroutine_threadsafe(self._reap(ctx, enqueue, queued), self._loop),
        ]
        log.info("job consumer %s started", self.consumer_id)

    async def _renew_leases(self, ctx: JobContext) -> None:
        while True:
            await asyncio.sleep(self.settings.queue.heartbeat_seconds)
            try:
                await renew_leases(ctx)
                await chunk_jobs.renew_chunk_leases(ctx)
            except Exception as exc:
                log.warning("could not renew the leases of running jobs: %s", exc)

    async def _reap(
        self,
        ctx: JobContext,
        enqueue: Callable[[uuid.UUID], object],
        queued: Callable[[], set[str]],
    ) -> None:
        while True:
            try:
                cluster = await reaper.cluster_turn(self.settings)
                done = await reaper.reap(ctx, enqueue, queued, cluster=cluster)
                if self.liveness is not None:
                    await asyncio.to_thread(self.liveness.record_reaper_run, done)
                    await asyncio.to_thread(self.liveness.forget_dead)
            except Exception:
                log.exception("housekeeping failed; it runs again in a while")
            await asyncio.sleep(self.settings.queue.reaper_interval_seconds)

    def stop_consumer(self) -> None:
        """Stop the consumer's duties and say it is gone (after its jobs finished or stopped)."""
        for duty in self._duties:
            duty.cancel()
        self._duties = []
        if self._presence is not None:
            # Jobs still running were interrupted: their leases stay until this
            # process ends, when the lock it leaves behind shows them free at once.
            interrupted = bool(self._context and self._context.running)
            self._presence.stop(keep_lock=interrupted)
            self._presence = None

    def close(self) -> None:
        self.stop_consumer()
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(cache.stop(), loop).result(timeout=10)
        asyncio.run_coroutine_threadsafe(events.stop(), loop).result(timeout=10)
        asyncio.run_coroutine_threadsafe(db.close_database(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        # The consumer's process ends without atexit handlers: export the last spans now.
        tracing.stop()
