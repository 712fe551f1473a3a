"""Running the Huey consumer: under `clipsync serve` (supervised) or `clipsync worker`."""

from __future__ import annotations

import logging

from clipsync.jobs.queue import create_queue
from clipsync.settings import load_settings

log = logging.getLogger(__name__)


def run_consumer(config_path: str | None = None) -> None:
    """Run the consumer until it is stopped (SIGINT: finish running jobs first)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("tortoise").setLevel(logging.WARNING)
    settings = load_settings(config_path)
    huey = create_queue(settings).huey
    consumer = huey.create_consumer(workers=settings.queue.workers, worker_type="thread")
    log.info(
        "job consumer started (%s queue, %d workers)",
        settings.queue.backend,
        settings.queue.workers,
    )
    consumer.run()
