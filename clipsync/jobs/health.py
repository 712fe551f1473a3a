"""The `jobs` check of `/healthz`: can this install transcode right now?

It fails while no job consumer is alive where one is expected (under
`clipsync serve`), or when one was seen and died and none has started since. It also
reports how long the oldest video has waited for its job and when the reaper last
ran, for an operator to see a queue that does not move.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from clipsync.models import Video, VideoStatus

if TYPE_CHECKING:
    from clipsync.jobs.liveness import Liveness

log = logging.getLogger(__name__)


def _consumers(liveness: Liveness) -> tuple[int, int, dict[str, Any] | None]:
    """(consumers seen, consumers alive, the reaper's last run): blocking, for a thread."""
    seen = liveness.consumers()
    alive = [c for c in seen if liveness.is_alive(c)]
    return len(seen), len(alive), liveness.last_reaper_run()


async def oldest_waiting_seconds() -> int | None:
    """Seconds the longest-waiting video has been PROCESSING with no job working on it."""
    since = (
        await Video.filter(status=VideoStatus.PROCESSING, worker_lease__isnull=True)
        .order_by("updated_at")
        .first()
        .values_list("updated_at", flat=True)
    )
    if not isinstance(since, datetime):
        return None
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return max(0, int((datetime.now(UTC) - since).total_seconds()))


async def jobs_health(liveness: Liveness, wait_seconds: float) -> dict[str, object]:
    """The `jobs` check: `ok`, live consumers, oldest wait, seconds since the reaper ran."""
    try:
        seen, alive, last_run = await asyncio.wait_for(
            asyncio.to_thread(_consumers, liveness), wait_seconds
        )
    except Exception as exc:
        log.warning("health check: cannot tell whether a job consumer is alive: %s", exc)
        return {"ok": False, "error": "cannot tell whether a job consumer is alive"}
    try:
        oldest = await asyncio.wait_for(oldest_waiting_seconds(), wait_seconds)
    except Exception as exc:  # the database check says why
        log.debug("health check: oldest waiting job unknown: %s", exc)
        oldest = None
    check: dict[str, object] = {
        # Without a consumer where none was expected (an app under test, a command)
        # and none seen, nothing is wrong.
        "ok": alive > 0 or not (liveness.expected or seen),
        "consumers": alive,
        "oldestWaitingSeconds": oldest,
        "lastReaperRunSecondsAgo": (
            max(0, int(time.time() - float(last_run["at"]))) if last_run else None
        ),
    }
    if not check["ok"]:
        check["error"] = "no job consumer is running: videos wait until one starts"
    return check
