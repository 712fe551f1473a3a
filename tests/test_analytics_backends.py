"""The analytics backends, against a real SQLite file and a real ClickHouse server.

The same scripted viewing sessions (`analytics_sessions.script`) go into each
backend, and each must give the figures worked out by hand below, digit for digit.
The write path is checked too: batching, the flush interval, the spool while
ClickHouse is down, and delivery of each event exactly once when it is back.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

import clipsync_analytics_clickhouse
import clipsync_analytics_sqlite
import pluggy
import pytest
from analytics_sessions import ALICE, V1, V2, V3, all_events, at, random_events, script
from clipsync_analytics_clickhouse import AnalyticsClickHouseSettings, ClickHouseAnalytics
from clipsync_analytics_clickhouse import schema as clickhouse_schema
from clipsync_analytics_sqlite import AnalyticsSqliteSettings, SqliteAnalytics
from clipsync_analytics_sqlite import store as sqlite_store
from services import ClickHouseServer

from clipsync import PROJECT, hookspecs
from clipsync.analytics.backend import BufferedBackend
from clipsync.analytics.events import Period, Scope, WatchEvent
from clipsync.analytics.writer import MAX_REFUSALS
from clipsync.backends import BackendContext
from clipsync.errors import ConfigError, ServiceUnavailable
from clipsync.settings import Secret, build, parse_settings

MARCH_1_TO_3 = Period(date(2024, 3, 1), date(2024, 3, 3))
BACKENDS = ["sqlite", "clickhouse"]

OpenBackend = Callable[..., Awaitable[BufferedBackend]]


@pytest.fixture(params=BACKENDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def open_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[OpenBackend]:
    """Make and start backends; every one is closed when the test ends.

    ClickHouse backends get a database of their own, so tests never see each other's
    events; pass `database=` to open a second backend on the same one.
    """
    opened: list[BufferedBackend] = []

    async def open_(kind: str, *, start: bool = True, **options: Any) -> BufferedBackend:
        options.setdefault("spool_dir", tmp_path / f"spool-{kind}-{len(opened)}")
        backend: BufferedBackend
        if kind == "sqlite":
            backend = SqliteAnalytics(
                options.pop("path", tmp_path / "analytics.sqlite3"), **options
            )
        else:
            server: ClickHouseServer = request.getfixturevalue("clickhouse_server")
            options.setdefault("database", f"test_{uuid.uuid4().hex[:12]}")
            backend = ClickHouseAnalytics(host=server.host, port=server.port, **options)
        if start:
            await backend.start()
        opened.append(backend)
        return backend

    yield open_
    for backend in reversed(opened):
        await backend.close()


async def scripted(open_backend: OpenBackend, kind: str) -> BufferedBackend:
    """A backend holding the scripted sessions, written in several small batches."""
    backend = await open_backend(kind, batch_size=7)
    events = all_events(script())
    # Out of order, so roll-ups must merge sessions across batches and in any order.
    events = events[1::2] + events[::2]
    for start in range(0, len(events), 5):
        await backend.record(events[start : start + 5])
    await backend.flush()
    return backend


# --- the scripted sessions, figured by hand --------------------------------------------
#
# Sessions in 1-3 March (see analytics_sessions.script; S0 is on 29 February):
#   S1 Alice V1 (general, 100 s) 1 Mar: 13 events, played 50, stalled 2.5, furthest 90
#      (a last SEEK lands on 99, but SEEKs do not count towards the furthest position)
#   S2 Alice V1                  2 Mar:  4 events, played 100, COMPLETE, furthest 100
#   S3 Carol V1                  2 Mar:  4 events, played 2 (< 3 s: not a view)
#   S4 Bob   V3 (science, 200 s) 3 Mar:  8 events, played 121, stalled 4, furthest 196
#   S5 Alice V2 (general, 60 s)  3 Mar:  2 events, played 8 on 3 Mar (+3 events, 10 s on
#      4 Mar, outside the period); the session (played 8 + 10 = 18) is 3 March's.


async def test_overview_of_scripted_sessions_matches_hand_figures(
    open_backend: OpenBackend, kind: str
) -> None:
    backend = await scripted(open_backend, kind)
    figures = await backend.overview(MARCH_1_TO_3, Scope())

    assert figures.total_events == 31  # 13 + 4 + 4 + 8 + 2
    assert figures.views == 4  # S1, S2, S4, S5 (S3 played 2 s)
    assert figures.unique_viewers == 2  # Alice, Bob
    assert figures.active_users == 3  # Alice, Bob, Carol
    assert figures.watch_time == 281.0  # 50 + 100 + 2 + 121 + 8
    assert figures.average_view_duration == 72.25  # (50 + 100 + 121 + 18) / 4
    assert figures.completion_rate == 0.5  # S2 (COMPLETE) and S4 (196 >= 190) of 4
    assert figures.to_json()["timeseries"] == [
        {"day": "2024-03-01", "views": 1, "watch_time": 50.0, "active_users": 1},  # S1
        # S2 is a view, S3 is not; 100 + 2 s; Alice and Carol
        {"day": "2024-03-02", "views": 1, "watch_time": 102.0, "active_users": 2},
        # S4 and S5; 121 + 8 s; Bob and Alice
        {"day": "2024-03-03", "views": 2, "watch_time": 129.0, "active_users": 2},
    ]
    assert figures.to_json()["top_videos"] == [
        {"video_id": V1.id, "views": 2, "watch_time": 152.0},  # S1 + S2 (+ S3's 2 s)
        {"video_id": V3.id, "views": 1, "watch_time": 121.0},  # ties V2 on views,
        {"video_id": V2.id, "views": 1, "watch_time": 8.0},  # wins on watch time
    ]


async def test_video_stats_give_retention_and_rebuffering(
    open_backend: OpenBackend, kind: str
) -> None:
    backend = await scripted(open_backend, kind)

    v1 = await backend.video_stats(V1.id, MARCH_1_TO_3)
    assert (v1.total_events, v1.views, v1.unique_viewers, v1.active_users) == (21, 2, 1, 2)
    assert v1.watch_time == 152.0  # 50 + 100 + 2
    assert v1.average_view_duration == 75.0  # (50 + 100) / 2
    assert v1.completion_rate == 0.5  # S2 of S1, S2
    assert v1.rebuffering_ratio == 0.0162  # 2.5 / (152 + 2.5) = 0.01618
    # Furthest positions: S1 90 (of 100; its SEEK to 99 watched nothing), S2 100. Both
    # reach 90 %; only S2 reaches 95 %.
    assert v1.retention_at(0) == 1.0
    assert v1.retention_at(50) == 1.0
    assert v1.retention_at(90) == 1.0
    assert v1.retention_at(95) == 0.5
    assert v1.retention_at(100) == 0.5
    assert len(v1.retention) == 21
    assert [(d.views, d.watch_time, d.active_users) for d in v1.timeseries] == [
        (1, 50.0, 1),
        (1, 102.0, 2),
        (0, 0.0, 0),
    ]

    v3 = await backend.video_stats(V3.id, MARCH_1_TO_3)
    assert (v3.views, v3.watch_time, v3.completion_rate) == (1, 121.0, 1.0)
    assert v3.rebuffering_ratio == 0.032  # 4 / (121 + 4)
    # Furthest 196 of 200 = 98 %: every point up to 95 %, not 100 %.
    assert v3.retention_at(95) == 1.0
    assert v3.retention_at(100) == 0.0

    # The 4 March part of S5 counts as events of that day, its view does not.
    v2 = await backend.video_stats(V2.id, Period(date(2024, 3, 4), date(2024, 3, 4)))
    assert (v2.total_events, v2.views, v2.watch_time, v2.active_users) == (3, 0, 10.0, 1)
    assert v2.retention == (0.0,) * 21

    nothing = await backend.video_stats(str(uuid.uuid4()), MARCH_1_TO_3)
    assert (nothing.views, nothing.total_events, nothing.rebuffering_ratio) == (0, 0, 0.0)


async def test_category_stats_of_scripted_sessions(open_backend: OpenBackend, kind: str) -> None:
    backend = await scripted(open_backend, kind)
    rows = await backend.category_stats(MARCH_1_TO_3, Scope())
    assert [row.to_json() for row in rows] == [
        # Views S1, S2, S5, all Alice's; 50 + 100 + 2 + 8 s; S2 completed: 1/3
        {
            "category": "general",
            "views": 3,
            "unique_viewers": 1,
            "watch_time": 160.0,
            "completion_rate": 0.3333,
        },
        # S4, Bob, completed
        {
            "category": "science",
            "views": 1,
            "unique_viewers": 1,
            "watch_time": 121.0,
            "completion_rate": 1.0,
        },
    ]
    science = await backend.category_stats(MARCH_1_TO_3, Scope(categories=frozenset({"science"})))
    assert [row.category for row in science] == ["science"]


async def test_scope_limits_figures_to_categories_and_own_videos(
    open_backend: OpenBackend, kind: str
) -> None:
    backend = await scripted(open_backend, kind)

    science = await backend.overview(MARCH_1_TO_3, Scope(categories=frozenset({"science"})))
    # Only S4 (S0 is before the period).
    assert (science.total_events, science.views, science.unique_viewers) == (8, 1, 1)
    assert (science.active_users, science.watch_time, science.completion_rate) == (1, 121.0, 1.0)
    assert [v.video_id for v in science.top_videos] == [V3.id]

    own = await backend.overview(MARCH_1_TO_3, Scope(owner_video_ids=frozenset({V1.id, V2.id})))
    assert own.total_events == 23  # 13 + 4 + 4 + 2
    assert own.views == 3  # S1, S2, S5
    assert own.unique_viewers == 1  # Alice
    assert own.active_users == 2  # Alice, Carol
    assert own.watch_time == 160.0  # 50 + 100 + 2 + 8
    assert own.average_view_duration == 56.0  # (50 + 100 + 18) / 3
    assert own.completion_rate == 0.3333  # S2 of 3
    assert [v.video_id for v in own.top_videos] == [V1.id, V2.id]

    both = Scope(categories=frozenset({"general"}), owner_video_ids=frozenset({V1.id, V3.id}))
    general_v1 = await backend.overview(MARCH_1_TO_3, both)
    assert (general_v1.total_events, general_v1.views, general_v1.watch_time) == (21, 2, 152.0)

    for empty in (Scope(owner_video_ids=frozenset()), Scope(categories=frozenset())):
        none = await backend.overview(MARCH_1_TO_3, empty)
        assert (none.total_events, none.views, none.top_videos) == (0, 0, ())
        assert [d.views for d in none.timeseries] == [0, 0, 0]
        assert await backend.category_stats(MARCH_1_TO_3, empty) == []


async def test_period_counts_events_by_their_day_and_sessions_by_their_first(
    open_backend: OpenBackend, kind: str
) -> None:
    backend = await scripted(open_backend, kind)

    march_4 = await backend.overview(Period(date(2024, 3, 4), date(2024, 3, 4)), Scope())
    # S5's last 3 events and 10 s; its view belongs to 3 March.
    assert (march_4.total_events, march_4.watch_time, march_4.active_users) == (3, 10.0, 1)
    assert (march_4.views, march_4.average_view_duration) == (0, 0.0)

    leap_day = await backend.overview(Period(date(2024, 2, 29), date(2024, 2, 29)), Scope())
    # S0: Alice plays 30 s of V3.
    assert (leap_day.total_events, leap_day.views, leap_day.watch_time) == (2, 1, 30.0)

    quiet = await backend.overview(Period(date(2023, 1, 1), date(2023, 1, 2)), Scope())
    assert quiet.to_json()["timeseries"] == [
        {"day": "2023-01-01", "views": 0, "watch_time": 0.0, "active_users": 0},
        {"day": "2023-01-02", "views": 0, "watch_time": 0.0, "active_users": 0},
    ]


async def test_both_backends_give_identical_figures_for_many_random_sessions(
    open_backend: OpenBackend,
) -> None:
    events = random_events(3000, seed=20240301)
    answers = []
    for kind in BACKENDS:
        backend = await open_backend(kind, batch_size=700)
        await backend.record(events)
        await backend.flush()
        period = Period(date(2024, 3, 2), date(2024, 3, 5))
        scopes = [
            Scope(),
            Scope(categories=frozenset({"science", "art"})),
            Scope(owner_video_ids=frozenset({events[0].video_id, events[-1].video_id})),
        ]
        answers.append(
            [
                *[(await backend.overview(period, scope)).to_json() for scope in scopes],
                *[
                    [c.to_json() for c in await backend.category_stats(period, scope)]
                    for scope in scopes
                ],
                *[
                    (await backend.video_stats(video, period)).to_json()
                    for video in sorted({e.video_id for e in events})
                ],
            ]
        )
    sqlite, clickhouse = answers
    assert sqlite[0]["views"] > 100 and sqlite[0]["completion_rate"] > 0
    assert sqlite == clickhouse


# --- the write path ------------------------------------------------------------------


def burst(count: int) -> list[WatchEvent]:
    """`count` distinct PROGRESS events of one second each, 1 March."""
    return [
        WatchEvent(
            event_id=uuid.uuid4().hex,
            ts=at("2024-03-01 12:00"),
            type="PROGRESS",
            video_id=V1.id,
            user_id=ALICE + n % 3,
            category=V1.category,
            session_id=f"burst-{n // 10}",
            position=float(n % 10),
            duration=V1.duration,
            played=1.0,
        )
        for n in range(count)
    ]


async def total_events(backend: BufferedBackend) -> int:
    return (await backend.overview(MARCH_1_TO_3, Scope())).total_events


async def test_record_buffers_and_writes_in_few_inserts(
    open_backend: OpenBackend, kind: str
) -> None:
    backend = await open_backend(kind, flush_interval=3600)
    events = burst(10_000)

    for start in range(0, 4000, 10):
        await backend.record(events[start : start + 10])
    assert await total_events(backend) == 0  # buffered, not written
    assert backend.inserts == 0

    for start in range(4000, 10_000, 10):
        await backend.record(events[start : start + 10])
    await backend.flush()
    assert await total_events(backend) == 10_000
    assert backend.inserts == 2  # 5 000 events per insert


async def test_full_buffer_and_flush_interval_write_without_flush(
    open_backend: OpenBackend, kind: str
) -> None:
    backend = await open_backend(kind, batch_size=500, flush_interval=0.2)
    await backend.record(burst(100))
    for _ in range(100):  # the flusher writes within one interval
        await asyncio.sleep(0.05)
        if backend.inserts:
            break
    assert await total_events(backend) == 100

    patient = await open_backend(kind, batch_size=500, flush_interval=3600)
    await patient.record(burst(499))
    await asyncio.sleep(0.1)
    assert patient.inserts == 0
    await patient.record(burst(1))  # the buffer is full: written at once
    for _ in range(100):
        await asyncio.sleep(0.05)
        if patient.inserts:
            break
    assert patient.inserts == 1


async def test_redelivered_batch_is_counted_once(open_backend: OpenBackend, kind: str) -> None:
    """A batch stored whose acknowledgement was lost is spooled and sent again."""
    backend = await open_backend(kind)
    events = burst(300)
    await backend.record(events[:200])
    await backend.flush()
    backend.spool.put(events)  # 200 already stored, 100 not, 10 twice in the batch
    backend.spool.put(events[:10])
    await backend.flush()
    assert backend.spool.files() == []
    assert await total_events(backend) == 300


async def test_unreadable_spool_file_is_set_aside(open_backend: OpenBackend, kind: str) -> None:
    backend = await open_backend(kind, start=False)
    backend.spool.folder.mkdir(parents=True)
    (backend.spool.folder / "00001.jsonl").write_text("{not json\n")
    backend.spool.put(burst(5))
    await backend.start()
    assert backend.spool.files() == []
    assert [p.name for p in backend.spool.rejected()] == ["00001.jsonl.rejected"]
    assert await total_events(backend) == 5


async def test_refused_spool_file_is_set_aside_after_retries(
    open_backend: OpenBackend, kind: str
) -> None:
    backend = await open_backend(kind)
    refused = burst(5)
    backend.spool.put(refused)
    backend.spool.put(burst(3))
    refused_ids = {event.event_id for event in refused}

    real_insert = backend.insert

    def refuse_five(events: list[WatchEvent], redelivery: bool) -> None:
        # Spooled files go in one insert when they fit: refuse any holding the five.
        if refused_ids & {event.event_id for event in events}:
            raise ValueError("no such column")  # not a connection problem
        real_insert(events, redelivery)

    backend.insert = refuse_five  # type: ignore[method-assign]
    for _ in range(MAX_REFUSALS):
        await backend.flush()
    assert [p.name for p in backend.spool.rejected()] == ["00001.jsonl.rejected"]
    assert backend.spool.files() == []
    assert await total_events(backend) == 3  # the other batch was not held up


async def test_clickhouse_outage_spools_and_delivers_each_event_once(
    open_backend: OpenBackend, clickhouse_server: ClickHouseServer
) -> None:
    live = await open_backend("clickhouse", flush_interval=3600)
    database = live.database  # type: ignore[attr-defined]
    # A second process writing to the same database, which will be stopped while
    # ClickHouse is down and started again after it is back.
    dying = await open_backend("clickhouse", database=database, flush_interval=3600)
    before = burst(1000)
    await live.record(before)
    await live.flush()

    during, at_exit = burst(7000), burst(600)
    for backend in (live, dying):  # ClickHouse waits for open connections to stop
        await backend.disconnect()
    clickhouse_server.stop(keep_data=True)
    try:
        await live.record(during)
        await live.flush()  # neither raises
        assert len(live.spool) == 2  # 5 000 + 2 000
        with pytest.raises(ServiceUnavailable, match=r"ClickHouse at 127\.0\.0\.1"):
            await live.overview(MARCH_1_TO_3, Scope())
        await dying.record(at_exit)
        await dying.close()
        assert len(dying.spool) == 1
    finally:
        clickhouse_server.start()

    await live.flush()
    assert live.spool.files() == []
    reborn = await open_backend("clickhouse", database=database, spool_dir=dying.spool.folder)
    assert reborn.spool.files() == []  # start() delivered the leftovers

    client = live.connect()  # type: ignore[attr-defined]
    query = f"SELECT count(), uniqExact(event_id) FROM {database}.events_raw"
    [(count, unique)] = client.execute(query)
    client.disconnect()
    assert count == unique == 1000 + 7000 + 600
    assert await total_events(live) == 8600


# --- schema, probes, settings ----------------------------------------------------------


async def test_start_twice_keeps_one_schema_version(open_backend: OpenBackend, kind: str) -> None:
    first = await open_backend(kind)
    await first.record(burst(10))
    await first.flush()
    same = {"database": getattr(first, "database", None)} if kind == "clickhouse" else {}
    second = await open_backend(kind, **same)
    await second.start()  # a second time on the same instance, too
    assert await total_events(second) == 10
    if kind == "sqlite":
        assert isinstance(second, SqliteAnalytics)
        assert second.schema_version == sqlite_store.SCHEMA_VERSION == 1
    else:
        assert isinstance(second, ClickHouseAnalytics)
        client = second.connect()
        rows = client.execute(f"SELECT version FROM {second.database}.schema_version")
        client.disconnect()
        assert rows == [(clickhouse_schema.SCHEMA_VERSION,)] == [(1,)]


async def test_newer_schema_is_refused(open_backend: OpenBackend, kind: str) -> None:
    first = await open_backend(kind)
    if isinstance(first, SqliteAnalytics):
        conn = sqlite_store.connect(first.path)
        conn.execute("PRAGMA user_version = 99")
        conn.close()
        newer: type[Exception] = sqlite_store.NewerSchema
        same = {}
    else:
        assert isinstance(first, ClickHouseAnalytics)
        client = first.connect()
        client.execute(f"INSERT INTO {first.database}.schema_version (version) VALUES", [(99,)])
        client.disconnect()
        newer, same = clickhouse_schema.NewerSchema, {"database": first.database}
    later = await open_backend(kind, start=False, **same)
    with pytest.raises(newer, match="schema version 99"):
        await later.start()


async def test_clickhouse_columns_can_be_added_on_18_16(open_backend: OpenBackend) -> None:
    backend = await open_backend("clickhouse")
    assert isinstance(backend, ClickHouseAnalytics)
    client = backend.connect()
    for _ in range(2):  # the second time finds the column and does nothing
        clickhouse_schema.add_column(
            client.execute, backend.database, "events_raw", "player", "String DEFAULT ''"
        )
    columns = client.execute(f"DESCRIBE TABLE {backend.database}.events_raw")
    client.disconnect()
    assert [c[0] for c in columns].count("player") == 1


def context(tmp_path: Path, config: Any) -> BackendContext:
    settings = parse_settings({"paths": {"data_dir": str(tmp_path)}}, where="test")
    return BackendContext(settings=settings, config=config)


def test_clickhouse_probe_connects_and_says_why_not(
    tmp_path: Path, clickhouse_server: ClickHouseServer
) -> None:
    server = {"host": clickhouse_server.host, "port": clickhouse_server.port}
    ok = ClickHouseAnalytics.probe(context(tmp_path, AnalyticsClickHouseSettings(**server)))
    assert ok.ok and "ClickHouse 18.16" in ok.reason

    wrong = AnalyticsClickHouseSettings(**server, password=Secret("not-the-password"))
    refused = ClickHouseAnalytics.probe(context(tmp_path, wrong))
    assert not refused.ok
    assert "refused user 'default'" in refused.reason
    assert "not-the-password" not in refused.reason

    closed = AnalyticsClickHouseSettings(host="127.0.0.1", port=1)
    away = ClickHouseAnalytics.probe(context(tmp_path, closed))
    assert not away.ok and "cannot reach ClickHouse at 127.0.0.1:1" in away.reason


def test_hook_register_analytics_backends_gives_both_backends() -> None:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(clipsync_analytics_sqlite, name="analytics_sqlite")
    pm.register(clipsync_analytics_clickhouse, name="analytics_clickhouse")
    registered = {
        cls.name: cls for classes in pm.hook.register_analytics_backends() for cls in classes
    }
    assert registered == {"sqlite": SqliteAnalytics, "clickhouse": ClickHouseAnalytics}
    schemas = set(pm.hook.settings_schema())
    assert schemas == {AnalyticsSqliteSettings, AnalyticsClickHouseSettings}


def test_sqlite_probe_and_create_use_the_data_dir(tmp_path: Path) -> None:
    ctx = context(tmp_path, AnalyticsSqliteSettings())
    assert SqliteAnalytics.probe(ctx).ok
    backend = SqliteAnalytics.create(ctx)
    assert backend.path == tmp_path / "analytics.sqlite3"
    assert backend.spool.folder == tmp_path / "analytics-spool" / "sqlite"


def test_plugin_settings_are_checked() -> None:
    table = {"port": 9440, "secure": True, "password": "s3cret", "batch_size": 1000}
    config = build(
        AnalyticsClickHouseSettings, table, "config.toml", "plugins.analytics_clickhouse"
    )
    assert (config.port, config.secure, config.batch_size) == (9440, True, 1000)
    assert "s3cret" not in repr(config)
    with pytest.raises(ConfigError, match="batch_size must be greater than 0"):
        build(AnalyticsSqliteSettings, {"batch_size": 0}, "config.toml", "plugins.analytics_sqlite")
    with pytest.raises(ConfigError, match="database"):
        build(AnalyticsClickHouseSettings, {"database": "a-b"}, "config.toml", "plugins.x")


def test_events_check_their_type_and_time() -> None:
    event = script()["S2"].events[0]
    assert WatchEvent.from_json(event.to_json()) == event
    with pytest.raises(ValueError, match="unknown watch event type"):
        WatchEvent(**{**event.to_json(), "ts": event.ts, "type": "REWIND"})
