"""The home page's rows above the list: New in your category and Popular this week.

(Continue watching, the first row, is the person's history: `services.watch_history`.)

Both show only what the visibility rule lets the person see in the feed
(`services.videos.visible_to(user, FEED)`):

- **New in your category**: videos of the person's category uploaded by others in
  the last `NEW_DAYS` days that they have not started yet, newest first.
- **Popular this week**: the most viewed videos of the last 7 days (UTC, today
  included), as the analytics count views (`clipsync.analytics.recommendations`).
  The ranking is the same for everyone, so it is kept in the cache and filtered
  per person; when the analytics do not answer (quickly), the row is empty and the
  page leaves it out.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import Subquery

from clipsync import cache
from clipsync.analytics.events import Period
from clipsync.models import User, Video, WatchProgress
from clipsync.plugins import PluginHost
from clipsync.services import likes
from clipsync.services.videos import FEED, filtered_list, visible_to

log = logging.getLogger(__name__)

NEW_DAYS = 30
POPULAR_DAYS = 7
# The ranking read from the analytics: deep enough that most people still find a
# full row among what they may see.
RANKING_DEPTH = 200
# The page waits this long for the analytics; a slower store costs the row, not the page.
TIMEOUT_SECONDS = 2.0

# The ranked ids in the cache (`clipsync.cache`): kept for its `ttl_seconds`, the
# same for every viewer, and shared by every process when the cache is Redis.
RANKING_KEY = "popular:week"


async def videos_json(
    plugins: PluginHost, videos: list[Video], viewer: User
) -> list[dict[str, Any]]:
    """A row's videos as the video JSON of lists."""
    return await filtered_list(plugins, await likes.add_counts(videos, viewer), viewer)


async def new_in_category(user: User, size: int) -> list[Video]:
    """Others' recent videos of `user`'s category they have not started, newest first."""
    since = datetime.now(UTC) - timedelta(days=NEW_DAYS)
    started = WatchProgress.filter(user_id=user.id).values("video_id")
    return await (
        visible_to(user, FEED)
        .filter(category=user.category, created_at__gte=since)
        .exclude(owner_id=user.id)
        .exclude(id__in=Subquery(started))
        .order_by("-created_at", "-id")
        .limit(size)
        .prefetch_related("owner")
    )


async def popular_this_week(user: User, analytics: object, size: int) -> list[Video]:
    """The week's most viewed videos that `user` may see, most viewed first."""
    ranked = await _ranking(analytics)
    if not ranked:
        return []
    found = await visible_to(user, FEED).filter(id__in=ranked).prefetch_related("owner")
    by_id = {str(video.id): video for video in found}
    return [by_id[key] for key in ranked if key in by_id][:size]


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def _ranking(analytics: object) -> list[str]:
    """The ranked ids, from the cache (`RANKING_KEY`); [] when the analytics cannot say."""
    try:
        return await cache.current().get_or_fill(RANKING_KEY, (), lambda: _read(analytics))
    except Exception as exc:  # any failure of the store: no row, and ask again next time
        log.info("no popular videos this time: %s", exc or type(exc).__name__)
        return []


async def _read(analytics: object) -> list[str]:
    popular = getattr(analytics, "popular", None)
    if popular is None:
        return []
    today = datetime.now(UTC).date()
    week = Period(today - timedelta(days=POPULAR_DAYS - 1), today)
    top = await asyncio.wait_for(popular(week, RANKING_DEPTH), TIMEOUT_SECONDS)
    return [str(key) for key in map(_uuid, (entry.video_id for entry in top)) if key]
