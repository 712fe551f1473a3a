"""Running the Huey consumer: under `clipsync serve` (supervised) or `clipsync worker`."""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType
from typing import Any

from huey.consumer import Consumer

from clipsync.jobs.queue import create_queue
from clipsync.logs import setup_logging
from clipsync.settings import load_settings

log = logging.getLogger(__name__)

# Two stop signals closer together than this are one request to stop (see `JobConsumer`).
SAME_STOP_SECONDS = 2.0
# The longest an idle consumer waits between looks at the queue (Huey's default is
# 10 s), and after the queue failed to answer: a job, or a queue that came back, is
# seen within this.
MAX_POLL_DELAY = 2.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class JobConsumer(Consumer):
    """Huey's consumer, stopping gracefully on SIGTERM as on SIGINT.

    SIGINT or SIGTERM asks it to finish the running jobs and stop; another one stops
    at once, interrupting them (their leases are free as soon as this process is
    gone, see `jobs.liveness`). Huey interrupts on SIGTERM; here it finishes, since
    SIGTERM is what `kill`, container runtimes and process managers send.

    Ctrl-C on `clipsync serve` in a terminal reaches the consumer twice, though: from
    the terminal (every process of the foreground group) and from Sanic's manager,
    which passes its own SIGINT on to the processes it supervises. A second signal
    within `SAME_STOP_SECONDS` is that same request and is ignored; one sent later
    still interrupts the jobs.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Signal -> (restart, graceful), Huey's table.
        self._signal_actions[signal.SIGTERM] = (False, True)

    def _handle_signal(self, signum: int, frame: FrameType | None) -> None:
        # Huey's handler (a private method, stable across Huey 2.x and 3.x) arms its
        # "second signal: stop now" handler; ours goes in its place.
        super()._handle_signal(signum, frame)
        if signum not in STOP_SIGNALS:
            return
        first = time.monotonic()

        def again(signum: int, frame: FrameType | None) -> None:
            if time.monotonic() - first < SAME_STOP_SECONDS:
                log.info("the same request to stop arrived twice: still finishing the jobs")
                return
            raise KeyboardInterrupt

        for stop in STOP_SIGNALS:
            signal.signal(stop, again)


def run_consumer(config_path: str | None = None) -> None:
    """Run the consumer until it is stopped (SIGINT or SIGTERM: finish running jobs first)."""
    settings = load_settings(config_path)
    setup_logging(settings.logging)
    tasks = create_queue(settings)
    consumer = JobConsumer(
        tasks.huey,
        workers=settings.queue.workers,
        worker_type="thread",
        max_delay=MAX_POLL_DELAY,
    )
    # Before Huey takes a job: the runtime (database, backends) is ready, this
    # consumer is seen alive, and the reaper's first run queues again at once the
    # videos of a consumer that was killed.
    tasks.start_consumer()
    log.info(
        "job consumer started (%s queue, %d workers)",
        settings.queue.backend,
        settings.queue.workers,
    )
    try:
        consumer.run()
    finally:
        tasks.runtime.close()
