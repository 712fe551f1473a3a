"""The figures recommendations read, defined once for every backend.

- **Co-watching** (`co_watched`): for each pair of different videos (`video`,
  `other`), `viewers` is the number of distinct users who watched both, where a user
  watched a video when one of their sessions of it began on `since` or later (its
  first day, UTC) and played at least `min_seconds` in all. Per `video`, the `limit`
  pairs with the most viewers are kept, ties broken by `other`'s id, so every backend
  answers the same list in the same order.
- **Popular** (`popular`): the `limit` videos with the most views (as
  `clipsync.analytics.figures` defines a view) in a period, then the most watch time,
  then by id; videos without a view are left out.

A backend's `FigureSource` answers co-watching itself (`CoWatchSource`: it needs the
raw sessions, which no sum gives); popularity is made here from the sums every source
already has.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from clipsync.analytics.events import Period, Scope, millis
from clipsync.analytics.figures import EventSums, FigureSource, TopVideo, ViewSums, seconds


@dataclass(frozen=True)
class CoWatched:
    """`viewers` distinct users watched both `video_id` and `other_id`."""

    video_id: str
    other_id: str
    viewers: int


class CoWatchSource(Protocol):
    def co_watched(self, since: date, min_ms: int, limit: int) -> list[tuple[str, str, int]]:
        """(video, other, viewers) triples as `co_watched` defines them, `limit` per
        video, ordered by video, then most viewers, then other."""


def co_watched(
    source: CoWatchSource, since: date, min_seconds: float, limit: int
) -> list[CoWatched]:
    """The co-watched pairs (see the module docstring), from a backend's source."""
    if limit <= 0:
        return []
    rows = source.co_watched(since, millis(min_seconds), limit)
    return [CoWatched(str(video), str(other), int(viewers)) for video, other, viewers in rows]


def popular(source: FigureSource, period: Period, limit: int) -> list[TopVideo]:
    """The `limit` most viewed videos of `period` (see the module docstring)."""
    if limit <= 0:
        return []
    views = source.view_sums(period, Scope(), by="video")
    played = source.event_sums(period, Scope(), by="video", users=False)
    ranked = sorted(
        (v for v, sums in views.items() if sums.views),
        key=lambda v: (-views[v].views, -played.get(v, EventSums()).played_ms, str(v)),
    )
    return [
        TopVideo(
            video_id=str(v),
            views=views.get(v, ViewSums()).views,
            watch_time=seconds(played.get(v, EventSums()).played_ms),
        )
        for v in ranked[:limit]
    ]
