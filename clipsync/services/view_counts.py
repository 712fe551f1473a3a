"""How many times a video was viewed, for its watch page: a view as the analytics define it.

`clipsync.analytics.figures` defines a view once for every backend; the count shown
under a video is that figure over the video's whole life (its upload day to today,
UTC). When the analytics store cannot answer, or not quickly, the page shows no count
rather than a wrong one (0, or a stale guess): None.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from clipsync.analytics.events import Period
from clipsync.models import Video

log = logging.getLogger(__name__)

# The page waits this long for the figure; a slower store costs the count, not the page.
TIMEOUT_SECONDS = 2.0


async def view_count(backend: object, video: Video) -> int | None:
    """`video`'s views since its upload, or None when the analytics cannot say now."""
    today = datetime.now(UTC).date()
    first = min(video.created_at.astimezone(UTC).date(), today) if video.created_at else today
    try:
        stats = await asyncio.wait_for(
            backend.video_stats(str(video.id), Period(first, today)),  # type: ignore[attr-defined]
            TIMEOUT_SECONDS,
        )
    except Exception as exc:  # any failure of the store: show no count, never a wrong one
        log.info("no view count for video %s: %s", video.id, exc or type(exc).__name__)
        return None
    views = getattr(stats, "views", None)
    return views if isinstance(views, int) and views >= 0 else None
