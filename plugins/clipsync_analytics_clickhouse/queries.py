"""The sums of `clipsync.analytics.figures.FigureSource`, read from the aggregates.

Event figures sum `daily_videos` and count distinct users in `daily_users` (with
`sum()`/`uniqExact()`: rows of a SummingMergeTree may not be merged yet). View
figures merge `sessions` per session (`-Merge`), keep the sessions whose first day
is in the period and that played long enough, and count those; `view_sums_by`
merges them once and groups the views every way asked (`ARRAY JOIN`: one copy of
each view per grouping), since merging the sessions is most of a view query's work.

The merge reads every `sessions` row of the scope, not only the period's: a session
that began before the period must be seen whole to be left out, and one that began
in it counts its events after the period too. Filtering on the period instead (by
`day`, or with `(video_id, session_id, user_id) IN` the sessions of the period) gave
wrong first days or cost more than the merge. The rows are per session and day, a
fiftieth of the events or less.

A scope's video ids travel as an external table (`scope_videos`), so an uploader
with many videos never makes a query too long to send.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import date
from typing import Any

from clickhouse_driver import Client

from clipsync.analytics.events import Period, Scope
from clipsync.analytics.figures import RETENTION_POINTS, EventSums, GroupBy, ViewSums

EVENT_KEYS = {None: "0", "day": "day", "video": "video_id", "category": "category"}
# View groupings as text, so that several fit in one ARRAY JOIN.
VIEW_KEYS = {None: "''", "day": "toString(first_day)", "video": "video_id", "category": "category"}

# One row per view whose session's first day is in the period. `{category}` is the
# session's category when a grouping or the scope needs it (anyMerge costs).
VIEWS = """
SELECT video_id, user_id, {category}
       minMerge(first_day) AS first_day,
       sumMerge(played_ms) AS session_played_ms,
       maxMerge(max_position_ms) AS furthest_ms,
       maxMerge(duration_ms) AS session_duration_ms,
       maxMerge(completed) AS has_complete
FROM {db}.sessions
WHERE 1 {videos}
GROUP BY video_id, session_id, user_id
HAVING first_day BETWEEN %(start)s AND %(end)s AND session_played_ms >= %(min_view_ms)s
    {categories}
"""
CATEGORY = "anyMerge(category) AS category,"


class ClickHouseFigures:
    """`FigureSource` over one ClickHouse database."""

    def __init__(self, client: Client, db: str, min_view_ms: int) -> None:
        self.client = client
        self.db = db
        self.min_view_ms = min_view_ms

    def _run(
        self, sql: str, period: Period, scope: Scope, category: bool = False
    ) -> list[tuple[Any, ...]]:
        params: dict[str, Any] = {
            "start": period.start,
            "end": period.end,
            "min_view_ms": self.min_view_ms,
        }
        external = []
        videos = categories = ""
        if scope.owner_video_ids is not None:
            videos = "AND video_id IN scope_videos"
            external.append(
                {
                    "name": "scope_videos",
                    "structure": [("video_id", "String")],
                    "data": [{"video_id": v} for v in sorted(scope.owner_video_ids)],
                }
            )
        if scope.categories is not None:
            categories = "AND category IN %(categories)s"
            params["categories"] = tuple(sorted(scope.categories))
        query = sql.format(
            db=self.db,
            videos=videos,
            categories=categories,
            category=CATEGORY if category or categories else "",
        )
        return self.client.execute(query, params, external_tables=external or None)

    def event_sums(
        self, period: Period, scope: Scope, by: GroupBy = None, users: bool = True
    ) -> dict[Hashable, EventSums]:
        key = EVENT_KEYS[by]
        where = "day BETWEEN %(start)s AND %(end)s {videos} {categories}"
        sums = self._run(
            f"SELECT {key} AS k, sum(events), sum(played_ms), sum(stalled_ms) "
            f"FROM {{db}}.daily_videos WHERE {where} GROUP BY k",
            period,
            scope,
        )
        active: dict[Any, int] = {}
        if users:
            rows = self._run(
                f"SELECT {key} AS k, uniqExact(user_id) FROM {{db}}.daily_users "
                f"WHERE {where} GROUP BY k",
                period,
                scope,
            )
            active = {k: int(n) for k, n in rows}
        return {
            _key(by, k): EventSums(int(events), int(played), int(stalled), active.get(k, 0))
            for k, events, played, stalled in sums
            if events
        }

    def view_sums(
        self, period: Period, scope: Scope, by: GroupBy = None
    ) -> dict[Hashable, ViewSums]:
        return self.view_sums_by(period, scope, [(by, True)])[0]

    def view_sums_by(
        self, period: Period, scope: Scope, groupings: Sequence[tuple[GroupBy, bool]]
    ) -> list[dict[Hashable, ViewSums]]:
        numbers = ", ".join(str(n) for n in range(len(groupings)))
        keys = ", ".join(VIEW_KEYS[by] for by, _ in groupings)
        with_users = ", ".join(str(n) for n, (_, users) in enumerate(groupings) if users)
        distinct = f"uniqExactIf(user_id, g IN ({with_users}))" if with_users else "0"
        rows = self._run(
            f"""SELECT g, k, count(), {distinct}, sum(session_played_ms),
                       sum(has_complete OR furthest_ms * 100 >= session_duration_ms * 95)
                FROM ({VIEWS}) ARRAY JOIN [{numbers}] AS g, [{keys}] AS k
                GROUP BY g, k""",
            period,
            scope,
            category=any(by == "category" for by, _ in groupings),
        )
        answers: list[dict[Hashable, ViewSums]] = [{} for _ in groupings]
        for g, k, *sums in rows:
            if sums[0]:
                by = groupings[g][0]
                answers[g][_key(by, k)] = ViewSums(*(int(n) for n in sums))
        return answers

    def retention_buckets(self, video_id: str, period: Period) -> list[int]:
        last = RETENTION_POINTS - 1
        # Both branches of if() are evaluated: greatest() keeps intDiv from dividing by 0.
        rows = self._run(
            f"""SELECT if(session_duration_ms <= 0, {last},
                          least({last}, intDiv(furthest_ms * {last},
                                               greatest(session_duration_ms, 1)))) AS bucket,
                       count()
                FROM ({VIEWS}) GROUP BY bucket""",
            period,
            Scope(owner_video_ids=frozenset({video_id})),
        )
        buckets = [0] * RETENTION_POINTS
        for bucket, count in rows:
            buckets[int(bucket)] = int(count)
        return buckets

    def co_watched(self, since: date, min_ms: int, limit: int) -> list[tuple[str, str, int]]:
        """`clipsync.analytics.recommendations.CoWatchSource`, from merged `sessions`."""
        watched = WATCHED.format(db=self.db)
        rows = self.client.execute(
            f"""SELECT video, other, count() AS viewers
                FROM (SELECT user_id, video_id AS video FROM ({watched}))
                ALL INNER JOIN (SELECT user_id, video_id AS other FROM ({watched}))
                USING user_id
                WHERE video != other
                GROUP BY video, other
                ORDER BY video, viewers DESC, other
                LIMIT %(limit)s BY video""",
            {"since": since, "min_ms": min_ms, "limit": limit},
        )
        return [(str(video), str(other), int(viewers)) for video, other, viewers in rows]


# Who watched what: one row per user and video with a session that began on `since`
# or later and played long enough. 18.16 has no WITH subqueries: it is written twice.
WATCHED = """
SELECT DISTINCT user_id, video_id FROM (
    SELECT user_id, video_id
    FROM {db}.sessions
    GROUP BY video_id, session_id, user_id
    HAVING minMerge(first_day) >= %(since)s AND sumMerge(played_ms) >= %(min_ms)s
)
"""


def _key(by: GroupBy, value: Any) -> Hashable:
    if by is None:
        return None
    if by == "day":
        return value if isinstance(value, date) else date.fromisoformat(str(value))
    return value
