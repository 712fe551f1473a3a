"""Running the Huey consumer: under `clipsync serve` (supervised) or `clipsync worker`."""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType

from huey.consumer import Consumer

from clipsync.jobs.queue import create_queue
from clipsync.settings import load_settings

log = logging.getLogger(__name__)

# Two SIGINTs closer together than this are one request to stop (see `JobConsumer`).
SAME_STOP_SECONDS = 2.0


class JobConsumer(Consumer):
    """Huey's consumer, reading a doubled SIGINT as one graceful stop.

    SIGINT asks Huey to finish the running jobs and stop; a second SIGINT stops at
    once, interrupting them. Ctrl-C on `clipsync serve` in a terminal reaches the
    consumer twice, though: from the terminal (every process of the foreground
    group) and from Sanic's manager, which passes its own SIGINT on to the processes
    it supervises. A second SIGINT within `SAME_STOP_SECONDS` is that same request
    and is ignored; one sent later still interrupts the jobs.
    """

    def _handle_signal(self, signum: int, frame: FrameType | None) -> None:
        # Huey's handler (a private method, stable across Huey 2.x) arms its
        # "second SIGINT: stop now" handler; ours goes in its place.
        super()._handle_signal(signum, frame)
        if signum != signal.SIGINT:
            return
        first = time.monotonic()

        def again(signum: int, frame: FrameType | None) -> None:
            if time.monotonic() - first < SAME_STOP_SECONDS:
                log.info("the same request to stop arrived twice: still finishing the jobs")
                return
            raise KeyboardInterrupt

        signal.signal(signal.SIGINT, again)


def run_consumer(config_path: str | None = None) -> None:
    """Run the consumer until it is stopped (SIGINT: finish running jobs first)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("tortoise").setLevel(logging.WARNING)
    settings = load_settings(config_path)
    huey = create_queue(settings).huey
    consumer = JobConsumer(huey, workers=settings.queue.workers, worker_type="thread")
    log.info(
        "job consumer started (%s queue, %d workers)",
        settings.queue.backend,
        settings.queue.workers,
    )
    consumer.run()
