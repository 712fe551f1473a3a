"""The Huey queue: SQLite in the data directory by default, Redis in production.

There is no module-level Huey instance: `create_queue(settings)` builds one for the
web workers (which enqueue) and one for the consumer (which runs tasks), from the
same settings, so both agree on where the queue lives and what the tasks are.
"""

from __future__ import annotations

from typing import Any

from huey import Huey, RedisHuey, SqliteHuey

from clipsync.jobs.tasks import Tasks, register_tasks
from clipsync.settings import Settings

QUEUE_NAME = "clipsync"


def create_huey(settings: Settings) -> Huey:
    if settings.queue.backend == "redis":
        return RedisHuey(QUEUE_NAME, url=settings.queue.redis_url.reveal())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(QUEUE_NAME, filename=str(settings.data_dir / "queue.sqlite3"))


def create_queue(settings: Settings) -> Tasks:
    """The Huey instance with ClipSync's tasks registered on it."""
    return register_tasks(create_huey(settings), settings)


def queue_health(huey: Huey) -> dict[str, Any]:
    """Ask the queue's storage a real question; raises when it cannot answer."""
    return {
        "backend": "redis" if isinstance(huey, RedisHuey) else "sqlite",
        "pending": huey.pending_count(),
    }
