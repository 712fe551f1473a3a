"""The Huey tasks: thin shims that run a service on the worker's runtime.

A task's name is its identity in the queue: renaming one orphans messages already
queued under the old name, so names are given explicitly.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from huey import Huey, crontab

from clipsync.jobs.runtime import WorkerRuntime
from clipsync.services import reaper, transcoding
from clipsync.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tasks:
    huey: Huey
    runtime: WorkerRuntime
    transcode_video: Any
    reap: Any

    def enqueue_transcode(self, video_id: uuid.UUID | str) -> None:
        self.transcode_video(str(video_id))


def register_tasks(huey: Huey, settings: Settings) -> Tasks:
    runtime = WorkerRuntime(settings)
    options = settings.transcoder

    @huey.task(
        name="transcode_video",
        retries=options.max_attempts - 1,
        retry_delay=options.retry_delay_seconds,
        retry_backoff=2,
        context=True,
    )
    def transcode_video(video_id: str, task: Any = None) -> None:
        final_attempt = task is None or not task.retries
        with runtime.transcode_slot(video_id):
            runtime.run(
                transcoding.run_transcode(runtime.context(), video_id, final_attempt=final_attempt)
            )

    def queued() -> set[str]:
        """Videos with a transcode job waiting in the queue, for a retry or for a slot."""
        waiting = [*huey.pending(), *huey.scheduled()]
        queued = {str(t.args[0]) for t in waiting if t.name == "transcode_video" and t.args}
        return queued | runtime.waiting()

    @huey.periodic_task(crontab(minute="*"), name="reap")
    def reap() -> None:
        runtime.run(reaper.reap(runtime.context(), lambda vid: transcode_video(str(vid)), queued))

    @huey.on_shutdown()
    def close_runtime() -> None:
        runtime.close()

    return Tasks(huey=huey, runtime=runtime, transcode_video=transcode_video, reap=reap)
