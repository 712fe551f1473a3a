"""Watch analytics: the events players report, the figures read from them, and the
contract every analytics backend keeps.

- `events`: `WatchEvent` (one thing that happened in a playback session), `Period`
  (whole UTC days) and `Scope` (which categories or videos a reader may count).
- `figures`: what `views`, `watch_time`, `completion_rate`, `retention`… mean,
  defined once for every backend, and the `Overview`, `VideoStats` and
  `CategoryStats` answers (each with `to_json()`).
- `spool`: batches kept on local disk while the store cannot take them.
- `writer`: buffering, batching, the background flusher and spool delivery.
- `recommendations`: co-watching ("who watched this also watched") and the most
  viewed videos of a period, for Up next and the home page's rows.
- `backend`: `BufferedBackend`, the base of the built-in backends, which a plugin's
  backend may reuse: it only has to open its store, insert one batch, and answer
  the sums of `figures.FigureSource` (and `recommendations.CoWatchSource`).

The built-in backends are the plugins `analytics_sqlite` (`sqlite`, the default: a
database file of its own in the data directory) and `analytics_clickhouse`
(`clickhouse`). `[analytics] backend` picks one by name.

The contract (`AnalyticsBackend`)
---------------------------------

A plugin returns backend classes from `register_analytics_backends()`. A class has
`name` (what `config.toml` names), `probe(context) -> Availability` (really tries
the store and says why it cannot work), and `create(context)`, where
`context.config` is the plugin's validated settings and `context.data_dir` the data
directory. The instance it creates provides::

    class AnalyticsBackend(Protocol):
        name: ClassVar[str]

        async def start(self) -> None:
            # Open connections, create or upgrade the schema, start the background
            # flusher, deliver events spooled by an earlier run. A store that cannot
            # be reached is not an error: events are spooled until it answers.

        async def record(self, events: Sequence[WatchEvent]) -> None:
            # Buffer events and return at once; never raises because the store is
            # unreachable. The buffer is written in batches of `batch_size` (default
            # 5000) as soon as it is full, and every `flush_interval` seconds
            # (default 1.0), one insert per batch. While the store cannot be
            # reached, whatever is buffered is spooled (written and fsync'd) every
            # `flush_interval`, so a process killed then loses at most that much.

        async def flush(self) -> None:
            # Write what is buffered now, and deliver the spool (tests, shutdown).

        async def overview(self, period: Period, scope: Scope) -> Overview: ...
        async def video_stats(self, video_id: str, period: Period) -> VideoStats: ...
        async def category_stats(
            self, period: Period, scope: Scope
        ) -> list[CategoryStats]: ...
        async def co_watched(
            self, since: date, min_seconds: float, limit: int
        ) -> list[CoWatched]: ...
        async def popular(self, period: Period, limit: int) -> list[TopVideo]: ...
        # What recommendations read (Up next, Popular this week), defined in
        # `recommendations`; a backend without them gets no co-watching and no
        # popular row, nothing worse.
        # The readers raise `clipsync.errors.AnalyticsUnavailable` (a
        # `ServiceUnavailable`: 503) when the store cannot be reached.

        async def close(self) -> None:
            # Flush (spooling what the store does not take) and stop.

Each `event_id` is counted once: a batch whose insert failed goes to the spool
(`<data_dir>/analytics-spool/<backend>/NNNNN.jsonl`) and is delivered when the
store answers again, skipping any of its events the store already holds. Every
backend must give exactly the figures `figures` defines: the same events give the
same numbers in SQLite and in ClickHouse.
"""

from clipsync.analytics.events import EVENT_TYPES, Period, Scope, WatchEvent
from clipsync.analytics.figures import (
    CategoryStats,
    DayFigures,
    Overview,
    TopVideo,
    VideoStats,
)

__all__ = [
    "EVENT_TYPES",
    "CategoryStats",
    "DayFigures",
    "Overview",
    "Period",
    "Scope",
    "TopVideo",
    "VideoStats",
    "WatchEvent",
]
