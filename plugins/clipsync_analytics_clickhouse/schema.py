"""The ClickHouse schema, and how it is created and upgraded.

Raw events go to `events_raw`; materialized views keep three aggregates up to date
as each block is inserted:

- `daily_videos` (SummingMergeTree): per day, video and category: events, played
  and stalled milliseconds;
- `daily_users` (SummingMergeTree): per day, user, video and category: events and
  played milliseconds, for distinct active users;
- `sessions` (AggregatingMergeTree): per session and event day, -State columns of
  its first day, played time, furthest position, duration and COMPLETE, merged
  with -Merge at query time for views, completion and retention.

Everything here runs on ClickHouse 18.16 (Debian's) as well as current releases: no
LowCardinality, no window functions, no SimpleAggregateFunction, no `IF NOT EXISTS`
on `ALTER … ADD COLUMN` (check `system.columns` instead, see `add_column`).
`schema_version` records each step applied; each step is written so that running it
again is harmless (`IF NOT EXISTS`), because two servers may start at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from clipsync.analytics.events import EVENT_TYPES

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

EVENT_TYPE = "Enum8({})".format(
    ", ".join(f"'{name}' = {number}" for number, name in enumerate(EVENT_TYPES, start=1))
)

# `client.execute`, or anything that runs a query the same way.
Execute = Callable[..., Any]
# A statement, with `{db}` for the database, or a function of (execute, db) for what
# plain SQL cannot say on 18.16 (e.g. `add_column`).
Step = str | Callable[[Execute, str], None]

# Each step takes the schema from the version before it to its own number.
MIGRATIONS: tuple[tuple[Step, ...], ...] = (
    (
        f"""CREATE TABLE IF NOT EXISTS {{db}}.events_raw (
            event_id String,
            ts DateTime('UTC'),
            day Date,
            type {EVENT_TYPE},
            video_id String,
            user_id UInt64,
            category String,
            session_id String,
            position_ms Int64,
            duration_ms Int64,
            played_ms Int64,
            stalled_ms Int64,
            rendition String,
            seek_from_ms Nullable(Int64),
            seek_to_ms Nullable(Int64),
            detail String
        ) ENGINE = MergeTree
        PARTITION BY toYYYYMM(ts)
        ORDER BY (video_id, ts, event_id)""",
        """CREATE TABLE IF NOT EXISTS {db}.daily_videos (
            day Date,
            video_id String,
            category String,
            events UInt64,
            played_ms Int64,
            stalled_ms Int64
        ) ENGINE = SummingMergeTree
        PARTITION BY toYYYYMM(day)
        ORDER BY (day, video_id, category)""",
        """CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.daily_videos_mv TO {db}.daily_videos AS
        SELECT day, video_id, category, count() AS events,
               sum(played_ms) AS played_ms, sum(stalled_ms) AS stalled_ms
        FROM {db}.events_raw
        GROUP BY day, video_id, category""",
        """CREATE TABLE IF NOT EXISTS {db}.daily_users (
            day Date,
            user_id UInt64,
            video_id String,
            category String,
            events UInt64,
            played_ms Int64
        ) ENGINE = SummingMergeTree
        PARTITION BY toYYYYMM(day)
        ORDER BY (day, user_id, video_id, category)""",
        """CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.daily_users_mv TO {db}.daily_users AS
        SELECT day, user_id, video_id, category, count() AS events,
               sum(played_ms) AS played_ms
        FROM {db}.events_raw
        GROUP BY day, user_id, video_id, category""",
        # `day` is the day of the events in the row, so a session that runs past
        # midnight has a row per day; `first_day` merges to the session's own day.
        """CREATE TABLE IF NOT EXISTS {db}.sessions (
            video_id String,
            session_id String,
            user_id UInt64,
            day Date,
            category AggregateFunction(any, String),
            first_day AggregateFunction(min, Date),
            first_ts AggregateFunction(min, DateTime('UTC')),
            played_ms AggregateFunction(sum, Int64),
            stalled_ms AggregateFunction(sum, Int64),
            max_position_ms AggregateFunction(max, Int64),
            duration_ms AggregateFunction(max, Int64),
            completed AggregateFunction(max, UInt8),
            events AggregateFunction(count)
        ) ENGINE = AggregatingMergeTree
        PARTITION BY toYYYYMM(day)
        ORDER BY (video_id, session_id, user_id, day)""",
        """CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sessions_mv TO {db}.sessions AS
        SELECT video_id, session_id, user_id, day,
               anyState(category) AS category,
               minState(day) AS first_day,
               minState(ts) AS first_ts,
               sumState(played_ms) AS played_ms,
               sumState(stalled_ms) AS stalled_ms,
               maxState(if(type = 'SEEK', toInt64(0), position_ms)) AS max_position_ms,
               maxState(duration_ms) AS duration_ms,
               maxState(type = 'COMPLETE') AS completed,
               countState() AS events
        FROM {db}.events_raw
        GROUP BY video_id, session_id, user_id, day""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


class NewerSchema(RuntimeError):
    """The database was upgraded by a newer ClipSync than this one."""


def add_column(execute: Execute, db: str, table: str, column: str, definition: str) -> None:
    """`ALTER TABLE … ADD COLUMN` unless the column exists (18.16 has no IF NOT EXISTS)."""
    found = execute(
        "SELECT count() FROM system.columns WHERE database = %(db)s AND table = %(table)s "
        "AND name = %(column)s",
        {"db": db, "table": table, "column": column},
    )[0][0]
    if not found:
        execute(f"ALTER TABLE {db}.{table} ADD COLUMN {column} {definition}")


def version(execute: Execute, db: str) -> int:
    return int(execute(f"SELECT max(version) FROM {db}.schema_version")[0][0])


def upgrade(execute: Execute, db: str) -> int:
    """Create the database and bring its schema to `SCHEMA_VERSION`; return the version
    found before. An up-to-date schema is only read, so a user without the right to
    create tables can write to a database an administrator set up."""
    if not IDENTIFIER.match(db):
        raise ValueError(f"database name {db!r} must be letters, digits and _")
    known = execute(
        "SELECT count() FROM system.tables WHERE database = %(db)s AND name = 'schema_version'",
        {"db": db},
    )[0][0]
    found = version(execute, db) if known else 0
    if found > SCHEMA_VERSION:
        raise NewerSchema(
            f"ClickHouse database {db} has schema version {found}, newer than this "
            f"ClipSync knows ({SCHEMA_VERSION}); upgrade ClipSync"
        )
    if found == SCHEMA_VERSION:
        return found
    execute(f"CREATE DATABASE IF NOT EXISTS {db}")
    execute(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_version "
        "(version UInt32, applied_at DateTime('UTC') DEFAULT now()) "
        "ENGINE = MergeTree ORDER BY version"
    )
    for number in range(found + 1, SCHEMA_VERSION + 1):
        for step in MIGRATIONS[number - 1]:
            if callable(step):
                step(execute, db)
            else:
                execute(step.format(db=db))
        execute(f"INSERT INTO {db}.schema_version (version) VALUES", [(number,)])
    return found
