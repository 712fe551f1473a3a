"""The Huey tasks: thin shims that run a service on the worker's runtime.

A task's name is its identity in the queue: renaming one orphans messages already
queued under the old name, so names are given explicitly.

A task queued while a request runs carries the request's id (`request_id`, a keyword
argument), and every log line of the job, Huey's own included, carries it too;
messages queued without one, by older versions or by the reaper, run as before.

The reaper is not a Huey task: each consumer runs it on its own runtime, when it
starts and every `[queue] reaper_interval_seconds` (Huey's periodic tasks run at
most once a minute, too seldom for jobs to recover in seconds). Up next's refresh
is one (`refresh_up_next`): every `[recommendations] refresh_minutes` is plenty.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from huey import Huey, crontab

from clipsync import metrics, request_ids, tracing
from clipsync.jobs.liveness import Liveness
from clipsync.jobs.runtime import WorkerRuntime
from clipsync.services import chunk_jobs, notifications, transcoding, up_next
from clipsync.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tasks:
    huey: Huey
    runtime: WorkerRuntime
    liveness: Liveness
    transcode_video: Any
    deliver_notification: Any
    # Videos with a transcode job waiting in this queue or for a slot in this process.
    queued: Callable[[], set[str]]
    # The periodic Up next refresh (see services/up_next.py).
    refresh_up_next: Any = None

    # One chunk of a long video (services/chunked_transcoding.py).
    transcode_chunk: Any = None

    def enqueue_transcode(self, video_id: uuid.UUID | str) -> None:
        self.transcode_video(str(video_id), **carried_request_id())

    def enqueue_chunk(self, video_id: str, plan: str, index: int, delay: float = 0.0) -> None:
        if delay > 0:
            self.transcode_chunk.schedule(
                args=(video_id, plan, index), kwargs=carried_request_id(), delay=delay
            )
        else:
            self.transcode_chunk(video_id, plan, index, **carried_request_id())

    def enqueue_delivery(self, delivery_id: int, delay: float = 0.0) -> None:
        if delay > 0:
            self.deliver_notification.schedule(
                args=(delivery_id,), kwargs=carried_request_id(), delay=delay
            )
        else:
            self.deliver_notification(delivery_id, **carried_request_id())

    def start_consumer(self) -> None:
        """Run this process as a consumer: liveness, lease renewal and the reaper."""
        self.runtime.start_consumer(self.enqueue_transcode, self.queued)


def carried_request_id() -> dict[str, str]:
    """The keyword arguments that hand a job the current request's id and trace, if any.

    `traceparent` only while tracing is on (`clipsync.tracing`): the job's span is a
    child of the request's.
    """
    request_id = request_ids.current()
    return ({"request_id": request_id} if request_id else {}) | tracing.carried_trace()


def carry_request_ids(huey: Huey) -> None:
    """Make a task's `request_id` current in the worker thread while Huey runs it.

    Around `huey.execute`, which the consumer's workers (and immediate mode) call for
    each task, so Huey's own lines ("Executing", "executed in", a traceback) carry
    the id as well as the task's; `runtime.run` hands the context on to the coroutine
    it schedules on the worker's loop.
    """
    execute = huey.execute

    def execute_with_request_id(task: Any, timestamp: Any = None) -> Any:
        with request_ids.bound((task.kwargs or {}).get("request_id")):
            return execute(task, timestamp)

    huey.execute = execute_with_request_id  # type: ignore[method-assign]


def register_tasks(huey: Huey, settings: Settings) -> Tasks:
    carry_request_ids(huey)
    metrics.count_jobs(huey)
    tracing.trace_jobs(huey)
    liveness = Liveness(huey, settings)
    runtime = WorkerRuntime(settings, liveness)
    options = settings.transcoder

    @huey.task(
        name="transcode_video",
        retries=options.max_attempts - 1,
        retry_delay=options.retry_delay_seconds,
        retry_backoff=2,
        context=True,
    )
    def transcode_video(
        video_id: str,
        request_id: str | None = None,
        traceparent: str | None = None,
        task: Any = None,
    ) -> None:
        final_attempt = task is None or not task.retries
        with runtime.transcode_slot(video_id):
            runtime.run(
                transcoding.run_transcode(runtime.context(), video_id, final_attempt=final_attempt)
            )

    @huey.task(
        name="transcode_chunk",
        retries=options.max_attempts - 1,
        retry_delay=options.retry_delay_seconds,
        retry_backoff=2,
        context=True,
    )
    def transcode_chunk(
        video_id: str,
        plan: str,
        index: int,
        request_id: str | None = None,
        traceparent: str | None = None,
        task: Any = None,
    ) -> None:
        final_attempt = task is None or not task.retries
        with runtime.transcode_slot(chunk_jobs.chunk_key(video_id, plan, index)):
            runtime.run(
                chunk_jobs.run_chunk(
                    runtime.context(), video_id, plan, index, final_attempt=final_attempt
                )
            )

    notify = settings.notifications

    @huey.task(
        name="deliver_notification",
        retries=notify.delivery_attempts - 1,
        retry_delay=notify.retry_delay_seconds,
        retry_backoff=2,
        context=True,
    )
    def deliver_notification(
        delivery_id: int,
        request_id: str | None = None,
        traceparent: str | None = None,
        task: Any = None,
    ) -> None:
        final_attempt = task is None or not task.retries
        ctx = runtime.context()
        runtime.run(
            notifications.send_delivery(ctx.plugins, delivery_id, final_attempt=final_attempt)
        )

    # Every consumer's scheduler queues it each minute; the claim in `refresh_if_due`
    # lets one run of the whole install work once per `refresh_minutes`.
    @huey.periodic_task(crontab(), name="refresh_up_next")
    def refresh_up_next() -> None:
        ctx = runtime.context()
        runtime.run(up_next.refresh_if_due(ctx.settings, ctx.backends.analytics))

    def queued() -> set[str]:
        """Videos with a transcode job waiting in the queue, for a retry or for a slot,
        and chunks with one (`chunk_jobs.chunk_key`)."""
        waiting = [*huey.pending(), *huey.scheduled()]
        queued = {str(t.args[0]) for t in waiting if t.name == "transcode_video" and t.args}
        queued |= {
            chunk_jobs.chunk_key(*t.args[:3])
            for t in waiting
            if t.name == "transcode_chunk" and len(t.args) >= 3
        }
        return queued | runtime.waiting()

    tasks = Tasks(
        huey=huey,
        runtime=runtime,
        liveness=liveness,
        transcode_video=transcode_video,
        deliver_notification=deliver_notification,
        queued=queued,
        refresh_up_next=refresh_up_next,
        transcode_chunk=transcode_chunk,
    )
    tasks.runtime.enqueue_delivery = tasks.enqueue_delivery
    tasks.runtime.enqueue_transcode = tasks.enqueue_transcode
    tasks.runtime.enqueue_chunk = tasks.enqueue_chunk
    return tasks
