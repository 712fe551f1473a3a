"""The figures analytics reports, defined once for every backend.

A backend only answers a few sums in whole numbers (`FigureSource`); this module
turns them into figures. Time is summed in whole milliseconds and every division
happens here, so two backends holding the same events give the same figures to the
last digit.

Definitions, for a period (whole UTC days) and a scope (see `events.Scope`):

- An event belongs to the UTC day of its `ts`. A **session** (one `session_id`)
  belongs to the day of its first event; its totals (played, furthest position,
  completed) cover all its events, also those after the period ends.
- A **view** is a session whose total `played` is at least `min_view_seconds` (a
  backend setting, default 3).
- `total_events`: events in the period.
- `watch_time`: the sum of `played` over the events in the period, in seconds.
- `active_users`: distinct users with any event in the period.
- `views`: views whose session belongs to the period; `unique_viewers`: distinct
  users among them.
- `average_view_duration`: the total `played` of those views / `views`, in seconds.
- A view is **completed** when the session has a COMPLETE event, or when its furthest
  position reached 95 % of the duration (`max_position * 100 >= duration * 95`).
  `completion_rate`: completed views / views.
- The **furthest position** of a session is the largest `position` of its events,
  SEEK events excepted (a seek only moves the playhead; what is watched after it
  shows in the next event's position).
- `retention` (per video): 21 points, 0 %, 5 % … 100 % of the duration; point `k`
  is the share of views whose furthest position reached `k * 5 %` of the duration
  (`max_position * 20 >= duration * k`). Point 0 is 1.0 whenever there are views.
- `rebuffering_ratio` (per video): sum(`stalled`) / (sum(`played`) + sum(`stalled`))
  over the events in the period.
- `timeseries`: for each day of the period (days without data too, as zeros): views
  (sessions of that day), watch_time and active_users (events of that day).
- `top_videos`: the 10 videos with the most views, then the most watch time (then
  by id, so the order is stable), each with its views and watch time.
- `category_stats`: per category with events or views in the period: views,
  unique_viewers, watch_time, completion_rate; most views first, then by name.

A video's `duration` is the largest `duration` its session's events give. Seconds
are rounded to milliseconds, ratios to 4 decimals; a ratio with nothing to divide
by is 0.0.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, Protocol

from clipsync.analytics.events import Period, Scope

RETENTION_POINTS = 21  # 0 %, 5 %, … 100 %
COMPLETED_PERCENT = 95
TOP_VIDEOS = 10

GroupBy = Literal["day", "video", "category"] | None


# --- what a backend answers -------------------------------------------------------------


@dataclass(frozen=True)
class EventSums:
    """Sums over the events of the period (each dated by its own `ts`)."""

    events: int = 0
    played_ms: int = 0
    stalled_ms: int = 0
    active_users: int = 0


@dataclass(frozen=True)
class ViewSums:
    """Sums over the views whose session belongs to the period."""

    views: int = 0
    unique_viewers: int = 0
    played_ms: int = 0
    completed: int = 0


class FigureSource(Protocol):
    """The few sums a backend computes; called from a worker thread.

    `by` groups the answer: None gives one entry under the key None; "day" keys
    are `datetime.date`, "video" keys video ids, "category" keys category names.
    Groups with nothing in them may be left out.
    """

    def event_sums(
        self, period: Period, scope: Scope, by: GroupBy = None, users: bool = True
    ) -> Mapping[Hashable, EventSums]:
        """`users=False` may leave `active_users` at 0 (it costs a distinct count)."""

    def view_sums(
        self, period: Period, scope: Scope, by: GroupBy = None
    ) -> Mapping[Hashable, ViewSums]: ...

    def view_sums_by(
        self, period: Period, scope: Scope, groupings: Sequence[tuple[GroupBy, bool]]
    ) -> list[Mapping[Hashable, ViewSums]]:
        """`view_sums` for each `(by, users)` of `groupings`, in order.

        Views are per session, so they cost the most to count: a backend should find
        the views once and group them every way asked. `users=False` may leave
        `unique_viewers` at 0 (it costs a distinct count per group).
        """

    def retention_buckets(self, video_id: str, period: Period) -> list[int]:
        """For the video's views in the period, how many reached exactly point `k`.

        Entry `k` (0…20) counts views with `min(20, max_position * 20 // duration)
        == k` (20 when the duration is 0).
        """


# --- the figures ----------------------------------------------------------------------------


def seconds(ms: int) -> float:
    return ms / 1000


def ratio(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


def average_view_duration(views: ViewSums) -> float:
    return round(views.played_ms / views.views / 1000, 3) if views.views else 0.0


@dataclass(frozen=True)
class DayFigures:
    day: date
    views: int
    watch_time: float
    active_users: int

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "views": self.views,
            "watch_time": self.watch_time,
            "active_users": self.active_users,
        }


@dataclass(frozen=True)
class TopVideo:
    video_id: str
    views: int
    watch_time: float

    def to_json(self) -> dict[str, Any]:
        return {"video_id": self.video_id, "views": self.views, "watch_time": self.watch_time}


@dataclass(frozen=True)
class Overview:
    """Figures over every video in a scope."""

    period: Period
    total_events: int
    views: int
    unique_viewers: int
    active_users: int
    watch_time: float
    average_view_duration: float
    completion_rate: float
    timeseries: tuple[DayFigures, ...]
    top_videos: tuple[TopVideo, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "total_events": self.total_events,
            "views": self.views,
            "unique_viewers": self.unique_viewers,
            "active_users": self.active_users,
            "watch_time": self.watch_time,
            "average_view_duration": self.average_view_duration,
            "completion_rate": self.completion_rate,
            "timeseries": [d.to_json() for d in self.timeseries],
            "top_videos": [v.to_json() for v in self.top_videos],
        }


@dataclass(frozen=True)
class VideoStats:
    """Figures of one video, with its audience retention and rebuffering."""

    video_id: str
    period: Period
    total_events: int
    views: int
    unique_viewers: int
    active_users: int
    watch_time: float
    average_view_duration: float
    completion_rate: float
    rebuffering_ratio: float
    # RETENTION_POINTS shares: entry k is for k * 5 % of the duration.
    retention: tuple[float, ...]
    timeseries: tuple[DayFigures, ...]

    def retention_at(self, percent: int) -> float:
        """The retention point at `percent` (a multiple of 5) of the duration."""
        if percent % 5 or not 0 <= percent <= 100:
            raise ValueError(f"retention is kept at multiples of 5 %, not {percent}")
        return self.retention[percent // 5]

    def to_json(self) -> dict[str, Any]:
        return {
            "video_id": self.video_id,
            "total_events": self.total_events,
            "views": self.views,
            "unique_viewers": self.unique_viewers,
            "active_users": self.active_users,
            "watch_time": self.watch_time,
            "average_view_duration": self.average_view_duration,
            "completion_rate": self.completion_rate,
            "rebuffering_ratio": self.rebuffering_ratio,
            "retention": [
                {"percent": k * 5, "share": share} for k, share in enumerate(self.retention)
            ],
            "timeseries": [d.to_json() for d in self.timeseries],
        }


@dataclass(frozen=True)
class CategoryStats:
    category: str
    views: int
    unique_viewers: int
    watch_time: float
    completion_rate: float

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "views": self.views,
            "unique_viewers": self.unique_viewers,
            "watch_time": self.watch_time,
            "completion_rate": self.completion_rate,
        }


# --- from sums to figures ---------------------------------------------------------------------


def _timeseries(
    source: FigureSource, period: Period, scope: Scope, views: Mapping[Hashable, ViewSums]
) -> tuple[DayFigures, ...]:
    """Each day of the period; `views` are the view sums by day."""
    events = source.event_sums(period, scope, by="day")
    return tuple(
        DayFigures(
            day=day,
            views=views.get(day, ViewSums()).views,
            watch_time=seconds(events.get(day, EventSums()).played_ms),
            active_users=events.get(day, EventSums()).active_users,
        )
        for day in period.days()
    )


def _zero_days(period: Period) -> tuple[DayFigures, ...]:
    return tuple(DayFigures(day, 0, 0.0, 0) for day in period.days())


def overview(source: FigureSource, period: Period, scope: Scope) -> Overview:
    """The `Overview` of `scope` over `period`, from a backend's sums."""
    if scope.empty:
        return Overview(period, 0, 0, 0, 0, 0.0, 0.0, 0.0, _zero_days(period), ())
    events = source.event_sums(period, scope).get(None, EventSums())
    video_events = source.event_sums(period, scope, by="video", users=False)
    # Only the totals need distinct viewers; the groups only count views.
    all_views, video_views, day_views = source.view_sums_by(
        period, scope, [(None, True), ("video", False), ("day", False)]
    )
    views = all_views.get(None, ViewSums())
    ranked = sorted(
        set(video_events) | set(video_views),
        key=lambda v: (
            -video_views.get(v, ViewSums()).views,
            -video_events.get(v, EventSums()).played_ms,
            v,
        ),
    )
    top = tuple(
        TopVideo(
            video_id=str(v),
            views=video_views.get(v, ViewSums()).views,
            watch_time=seconds(video_events.get(v, EventSums()).played_ms),
        )
        for v in ranked[:TOP_VIDEOS]
    )
    return Overview(
        period=period,
        total_events=events.events,
        views=views.views,
        unique_viewers=views.unique_viewers,
        active_users=events.active_users,
        watch_time=seconds(events.played_ms),
        average_view_duration=average_view_duration(views),
        completion_rate=ratio(views.completed, views.views),
        timeseries=_timeseries(source, period, scope, day_views),
        top_videos=top,
    )


def video_stats(source: FigureSource, video_id: str, period: Period) -> VideoStats:
    """The `VideoStats` of one video over `period`, from a backend's sums."""
    scope = Scope(owner_video_ids=frozenset({video_id}))
    events = source.event_sums(period, scope).get(None, EventSums())
    all_views, day_views = source.view_sums_by(period, scope, [(None, True), ("day", False)])
    views = all_views.get(None, ViewSums())
    buckets = source.retention_buckets(video_id, period)
    reached = [sum(buckets[k:]) for k in range(RETENTION_POINTS)]
    return VideoStats(
        video_id=video_id,
        period=period,
        total_events=events.events,
        views=views.views,
        unique_viewers=views.unique_viewers,
        active_users=events.active_users,
        watch_time=seconds(events.played_ms),
        average_view_duration=average_view_duration(views),
        completion_rate=ratio(views.completed, views.views),
        rebuffering_ratio=ratio(events.stalled_ms, events.played_ms + events.stalled_ms),
        retention=tuple(ratio(count, views.views) for count in reached),
        timeseries=_timeseries(source, period, scope, day_views),
    )


def category_stats(source: FigureSource, period: Period, scope: Scope) -> list[CategoryStats]:
    """One `CategoryStats` per category with events or views in `period`."""
    if scope.empty:
        return []
    events = source.event_sums(period, scope, by="category", users=False)
    views = source.view_sums(period, scope, by="category")
    stats = [
        CategoryStats(
            category=str(name),
            views=views.get(name, ViewSums()).views,
            unique_viewers=views.get(name, ViewSums()).unique_viewers,
            watch_time=seconds(events.get(name, EventSums()).played_ms),
            completion_rate=ratio(
                views.get(name, ViewSums()).completed, views.get(name, ViewSums()).views
            ),
        )
        for name in set(events) | set(views)
    ]
    return sorted(stats, key=lambda c: (-c.views, c.category))
