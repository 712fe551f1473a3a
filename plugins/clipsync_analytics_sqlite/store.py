"""The analytics database: its schema, how a batch goes in, and the sums read out.

Raw events are kept as they came, and three roll-ups are updated in the same
transaction as each batch, so figures never scan the raw events:

- `sessions`: one row per playback session (its first day, total played, furthest
  position, completed…), for views, completion and retention;
- `daily_videos`: per day, video and category: events, played and stalled time;
- `daily_users`: per day, video, category and user: events, for active users.

The schema's version is `PRAGMA user_version`; `MIGRATIONS` upgrades it step by step.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Hashable, Iterable, Sequence
from datetime import date
from pathlib import Path

from clipsync.analytics.events import Period, Scope, WatchEvent, micros, millis
from clipsync.analytics.figures import RETENTION_POINTS, EventSums, GroupBy, ViewSums
from clipsync.sqlite_wal import enable_wal

# Each step takes the database from the version before it to its own number.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE events (
            event_id TEXT PRIMARY KEY,
            ts INTEGER NOT NULL,            -- microseconds since the Unix epoch, UTC
            day TEXT NOT NULL,              -- YYYY-MM-DD, UTC
            type TEXT NOT NULL,
            video_id TEXT NOT NULL,
            user_id INTEGER NOT NULL,
            category TEXT NOT NULL,
            session_id TEXT NOT NULL,
            position_ms INTEGER NOT NULL,
            duration_ms INTEGER NOT NULL,
            played_ms INTEGER NOT NULL,
            stalled_ms INTEGER NOT NULL,
            rendition TEXT NOT NULL,
            seek_from_ms INTEGER,
            seek_to_ms INTEGER,
            detail TEXT NOT NULL
        )""",
        """CREATE TABLE sessions (
            session_id TEXT NOT NULL,
            video_id TEXT NOT NULL,
            user_id INTEGER NOT NULL,
            category TEXT NOT NULL,
            day TEXT NOT NULL,              -- the day of the session's first event
            first_ts INTEGER NOT NULL,
            played_ms INTEGER NOT NULL,
            stalled_ms INTEGER NOT NULL,
            max_position_ms INTEGER NOT NULL,  -- SEEK events excepted
            duration_ms INTEGER NOT NULL,
            completed INTEGER NOT NULL,     -- 1 when it has a COMPLETE event
            events INTEGER NOT NULL,
            PRIMARY KEY (session_id, video_id, user_id)
        )""",
        "CREATE INDEX sessions_by_day ON sessions (day, video_id)",
        "CREATE INDEX sessions_by_video ON sessions (video_id, day)",
        """CREATE TABLE daily_videos (
            day TEXT NOT NULL,
            video_id TEXT NOT NULL,
            category TEXT NOT NULL,
            events INTEGER NOT NULL,
            played_ms INTEGER NOT NULL,
            stalled_ms INTEGER NOT NULL,
            PRIMARY KEY (day, video_id, category)
        ) WITHOUT ROWID""",
        """CREATE TABLE daily_users (
            day TEXT NOT NULL,
            video_id TEXT NOT NULL,
            category TEXT NOT NULL,
            user_id INTEGER NOT NULL,
            events INTEGER NOT NULL,
            played_ms INTEGER NOT NULL,
            PRIMARY KEY (day, video_id, category, user_id)
        ) WITHOUT ROWID""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

COLUMNS = (
    "event_id, ts, day, type, video_id, user_id, category, session_id, position_ms, "
    "duration_ms, played_ms, stalled_ms, rendition, seek_from_ms, seek_to_ms, detail"
)
PLACEHOLDERS = ", ".join("?" * len(COLUMNS.split(", ")))

# The batch being written; events the database already holds are dropped from it
# before anything is counted, so a batch delivered twice is counted once.
INCOMING = """CREATE TEMP TABLE IF NOT EXISTS incoming (
    event_id TEXT PRIMARY KEY, ts, day, type, video_id, user_id, category, session_id,
    position_ms, duration_ms, played_ms, stalled_ms, rendition, seek_from_ms, seek_to_ms, detail
)"""

WRITE_BATCH = (
    """DELETE FROM incoming
       WHERE EXISTS (SELECT 1 FROM events WHERE events.event_id = incoming.event_id)""",
    f"INSERT INTO events ({COLUMNS}) SELECT {COLUMNS} FROM incoming",
    # `WHERE true` lets SQLite tell the upsert clause from a join.
    """INSERT INTO sessions (session_id, video_id, user_id, category, day, first_ts,
           played_ms, stalled_ms, max_position_ms, duration_ms, completed, events)
       SELECT session_id, video_id, user_id, min(category),
           date(min(ts) / 1000000, 'unixepoch'), min(ts), sum(played_ms), sum(stalled_ms),
           max(CASE WHEN type = 'SEEK' THEN 0 ELSE position_ms END), max(duration_ms),
           max(type = 'COMPLETE'), count(*)
       FROM incoming WHERE true GROUP BY session_id, video_id, user_id
       ON CONFLICT (session_id, video_id, user_id) DO UPDATE SET
           day = CASE WHEN excluded.first_ts < first_ts THEN excluded.day ELSE day END,
           first_ts = min(first_ts, excluded.first_ts),
           played_ms = played_ms + excluded.played_ms,
           stalled_ms = stalled_ms + excluded.stalled_ms,
           max_position_ms = max(max_position_ms, excluded.max_position_ms),
           duration_ms = max(duration_ms, excluded.duration_ms),
           completed = max(completed, excluded.completed),
           events = events + excluded.events""",
    """INSERT INTO daily_videos (day, video_id, category, events, played_ms, stalled_ms)
       SELECT day, video_id, category, count(*), sum(played_ms), sum(stalled_ms)
       FROM incoming WHERE true GROUP BY day, video_id, category
       ON CONFLICT (day, video_id, category) DO UPDATE SET
           events = events + excluded.events,
           played_ms = played_ms + excluded.played_ms,
           stalled_ms = stalled_ms + excluded.stalled_ms""",
    """INSERT INTO daily_users (day, video_id, category, user_id, events, played_ms)
       SELECT day, video_id, category, user_id, count(*), sum(played_ms)
       FROM incoming WHERE true GROUP BY day, video_id, category, user_id
       ON CONFLICT (day, video_id, category, user_id) DO UPDATE SET
           events = events + excluded.events,
           played_ms = played_ms + excluded.played_ms""",
    "DELETE FROM incoming",
)

# The column each `by` of `FigureSource` groups on (`day` is a session's first day in
# `sessions`, an event's day in the daily tables).
KEYS = {None: "NULL", "day": "day", "video": "video_id", "category": "category"}


class NewerSchema(RuntimeError):
    """The database was upgraded by a newer ClipSync than this one."""


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    enable_wal(conn, timeout=30)
    # WAL with synchronous=NORMAL stays consistent after a crash; a power cut may lose
    # the last transactions, which the events' exactly-once ids make safe to resend.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA temp_store = MEMORY")
    # The default 2 MB page cache makes each batch re-read the indexes it updates.
    conn.execute("PRAGMA cache_size = -32768")
    return conn


def upgrade(conn: sqlite3.Connection) -> int:
    """Bring the schema to `SCHEMA_VERSION`; return the version found before."""
    conn.execute("BEGIN IMMEDIATE")  # one process upgrades, the others wait for it
    try:
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        if found > SCHEMA_VERSION:
            raise NewerSchema(
                f"the analytics database has schema version {found}, newer than this "
                f"ClipSync knows ({SCHEMA_VERSION}); upgrade ClipSync"
            )
        for version in range(found + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


def _row(e: WatchEvent) -> tuple[object, ...]:
    return (
        e.event_id,
        micros(e.ts),
        e.day.isoformat(),
        e.type,
        e.video_id,
        e.user_id,
        e.category,
        e.session_id,
        millis(e.position),
        millis(e.duration),
        millis(e.played),
        millis(e.stalled),
        e.rendition,
        None if e.seek_from is None else millis(e.seek_from),
        None if e.seek_to is None else millis(e.seek_to),
        e.detail,
    )


def write_batch(conn: sqlite3.Connection, events: Iterable[WatchEvent]) -> None:
    """Store a batch and update the roll-ups, in one transaction, skipping known events."""
    conn.execute(INCOMING)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(
            f"INSERT OR IGNORE INTO incoming ({COLUMNS}) VALUES ({PLACEHOLDERS})",
            map(_row, events),
        )
        for statement in WRITE_BATCH:
            conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        conn.execute("DELETE FROM incoming")
        raise


def _where(period: Period, scope: Scope) -> tuple[str, list[object]]:
    sql = "day BETWEEN ? AND ?"
    params: list[object] = [period.start.isoformat(), period.end.isoformat()]
    if scope.categories is not None:
        sql += " AND category IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(sorted(scope.categories)))
    if scope.owner_video_ids is not None:
        sql += " AND video_id IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(sorted(scope.owner_video_ids)))
    return sql, params


def _key(by: GroupBy, value: object) -> Hashable:
    if by == "day":
        return date.fromisoformat(str(value))
    return value  # type: ignore[return-value]


class SqliteFigures:
    """`clipsync.analytics.figures.FigureSource` over the roll-ups."""

    def __init__(self, conn: sqlite3.Connection, min_view_ms: int) -> None:
        self.conn = conn
        self.min_view_ms = min_view_ms

    def event_sums(
        self, period: Period, scope: Scope, by: GroupBy = None, users: bool = True
    ) -> dict[Hashable, EventSums]:
        where, params = _where(period, scope)
        key = KEYS[by]
        sums = self.conn.execute(
            f"SELECT {key}, sum(events), sum(played_ms), sum(stalled_ms) FROM daily_videos "
            f"WHERE {where} GROUP BY 1",
            params,
        ).fetchall()
        active: dict[object, int] = {}
        if users:
            active = dict(
                self.conn.execute(
                    f"SELECT {key}, count(DISTINCT user_id) FROM daily_users "
                    f"WHERE {where} GROUP BY 1",
                    params,
                ).fetchall()
            )
        return {
            _key(by, k): EventSums(events, played, stalled, active.get(k, 0))
            for k, events, played, stalled in sums
            if events
        }

    def _views(self, period: Period, scope: Scope) -> tuple[str, list[object]]:
        where, params = _where(period, scope)
        return f"{where} AND played_ms >= ?", [*params, self.min_view_ms]

    def view_sums(
        self, period: Period, scope: Scope, by: GroupBy = None
    ) -> dict[Hashable, ViewSums]:
        where, params = self._views(period, scope)
        rows = self.conn.execute(
            f"""SELECT {KEYS[by]}, count(*), count(DISTINCT user_id), sum(played_ms),
                   sum(completed OR max_position_ms * 100 >= duration_ms * 95)
                FROM sessions WHERE {where} GROUP BY 1""",
            params,
        ).fetchall()
        return {_key(by, k): ViewSums(*sums) for k, *sums in rows if sums[0]}

    def view_sums_by(
        self, period: Period, scope: Scope, groupings: Sequence[tuple[GroupBy, bool]]
    ) -> list[dict[Hashable, ViewSums]]:
        # Each session is one row here, so a query per grouping costs little.
        return [self.view_sums(period, scope, by) for by, _users in groupings]

    def retention_buckets(self, video_id: str, period: Period) -> list[int]:
        where, params = self._views(period, Scope(owner_video_ids=frozenset({video_id})))
        last = RETENTION_POINTS - 1
        rows = self.conn.execute(
            f"""SELECT CASE WHEN duration_ms <= 0 THEN {last}
                            ELSE min({last}, max_position_ms * {last} / duration_ms) END,
                       count(*)
                FROM sessions WHERE {where} GROUP BY 1""",
            params,
        ).fetchall()
        buckets = [0] * RETENTION_POINTS
        for bucket, count in rows:
            buckets[bucket] = count
        return buckets

    def co_watched(self, since: date, min_ms: int, limit: int) -> list[tuple[str, str, int]]:
        """`clipsync.analytics.recommendations.CoWatchSource`, from `sessions`."""
        return self.conn.execute(CO_WATCHED, [since.isoformat(), min_ms, limit]).fetchall()


# Who watched what (one row per user and video), paired on the user; the `limit` pairs
# with most viewers per video.
CO_WATCHED = """
WITH watched AS (
    SELECT DISTINCT user_id, video_id FROM sessions WHERE day >= ? AND played_ms >= ?
), pairs AS (
    SELECT a.video_id AS video, b.video_id AS other, count(*) AS viewers
    FROM watched a JOIN watched b ON a.user_id = b.user_id AND a.video_id <> b.video_id
    GROUP BY a.video_id, b.video_id
), ranked AS (
    SELECT video, other, viewers,
           row_number() OVER (PARTITION BY video ORDER BY viewers DESC, other) AS n
    FROM pairs
)
SELECT video, other, viewers FROM ranked WHERE n <= ? ORDER BY video, n
"""
