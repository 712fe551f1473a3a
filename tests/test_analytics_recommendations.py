"""The analytics that recommendations read: co-watching and the most viewed videos.

The same scripted sessions go into a real SQLite file and a real ClickHouse server,
and each must give the pairs and the ranking worked out by hand below.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from analytics_sessions import Player, Video, all_events, at, random_events
from clipsync_analytics_clickhouse import ClickHouseAnalytics
from clipsync_analytics_sqlite import SqliteAnalytics

from clipsync.analytics.backend import BufferedBackend
from clipsync.analytics.events import Period
from clipsync.analytics.recommendations import CoWatched

OpenBackend = Callable[[str], Awaitable[BufferedBackend]]

A = Video("aaaaaaaa-0000-4000-8000-000000000000", "general", 100.0)
B = Video("bbbbbbbb-0000-4000-8000-000000000000", "general", 100.0)
C = Video("cccccccc-0000-4000-8000-000000000000", "general", 100.0)
D = Video("dddddddd-0000-4000-8000-000000000000", "science", 100.0)
ALICE, BOB, CAROL, DAVE = 1, 2, 3, 4
SINCE = date(2024, 3, 1)


@pytest.fixture(params=["sqlite", "clickhouse"])
async def open_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[OpenBackend]:
    opened: list[BufferedBackend] = []

    async def open_(kind: str = request.param) -> BufferedBackend:
        spool = tmp_path / f"spool-{len(opened)}"
        backend: BufferedBackend
        if kind == "sqlite":
            backend = SqliteAnalytics(tmp_path / f"a{len(opened)}.sqlite3", spool_dir=spool)
        else:
            server = request.getfixturevalue("clickhouse_server")
            database = f"test_{uuid.uuid4().hex[:12]}"
            backend = ClickHouseAnalytics(
                host=server.host, port=server.port, database=database, spool_dir=spool
            )
        await backend.start()
        opened.append(backend)
        return backend

    yield open_
    for backend in opened:
        await backend.close()


def sessions() -> dict[str, Player]:
    """Who watched what, for at least 10 s unless said otherwise."""
    return {
        "alice-a": Player(ALICE, A, at("2024-03-02 10:00")).play().watch(20),
        "alice-b": Player(ALICE, B, at("2024-03-02 11:00")).play().watch(5).watch(6),
        "alice-c": Player(ALICE, C, at("2024-03-03 10:00")).play().watch(30),
        # Alice again: a second view of A adds no viewer.
        "alice-a2": Player(ALICE, A, at("2024-03-04 10:00")).play().watch(40),
        "bob-a": Player(BOB, A, at("2024-03-02 12:00")).play().watch(15),
        "bob-b": Player(BOB, B, at("2024-03-05 12:00")).play().watch(90),
        "carol-a": Player(CAROL, A, at("2024-03-06 09:00")).play().watch(12),
        # 4 s: not watched.
        "carol-c": Player(CAROL, C, at("2024-03-06 09:30")).play().watch(4),
        "carol-d": Player(CAROL, D, at("2024-03-06 10:00")).play().watch(60),
        # Before `since`: not counted.
        "dave-a": Player(DAVE, A, at("2024-02-28 10:00")).play().watch(60),
        "dave-b": Player(DAVE, B, at("2024-03-07 10:00")).play().watch(60),
        "dave-d": Player(DAVE, D, at("2024-03-07 11:00")).play().watch(60),
    }


async def holding(open_backend: OpenBackend, players: dict[str, Player]) -> BufferedBackend:
    backend = await open_backend()
    events = all_events(players)
    await backend.record(events[1::2] + events[::2])
    await backend.flush()
    return backend


def pairs_of(found: list[CoWatched]) -> list[tuple[str, str, int]]:
    names = {A.id: "A", B.id: "B", C.id: "C", D.id: "D"}
    return [(names[p.video_id], names[p.other_id], p.viewers) for p in found]


async def test_co_watched_counts_distinct_viewers_of_both_videos(
    open_backend: OpenBackend,
) -> None:
    backend = await holding(open_backend, sessions())
    found = await backend.co_watched(SINCE, 10.0, limit=10)
    assert pairs_of(found) == [
        # A: Alice and Bob watched B; Alice watched C; Carol watched D.
        ("A", "B", 2),
        ("A", "C", 1),
        ("A", "D", 1),
        # B: Alice and Bob watched A; Alice C; Dave D (his A is before `since`).
        ("B", "A", 2),
        ("B", "C", 1),
        ("B", "D", 1),
        ("C", "A", 1),
        ("C", "B", 1),
        ("D", "A", 1),
        ("D", "B", 1),
    ]


async def test_co_watched_keeps_the_most_watched_pairs_per_video(
    open_backend: OpenBackend,
) -> None:
    backend = await holding(open_backend, sessions())
    found = await backend.co_watched(SINCE, 10.0, limit=1)
    assert pairs_of(found) == [("A", "B", 2), ("B", "A", 2), ("C", "A", 1), ("D", "A", 1)]


async def test_co_watched_honours_since_and_the_seconds_played(
    open_backend: OpenBackend,
) -> None:
    backend = await holding(open_backend, sessions())
    # From 28 February, Dave's A counts: A and B now share three viewers.
    early = pairs_of(await backend.co_watched(date(2024, 2, 28), 10.0, limit=1))
    assert ("A", "B", 3) in early
    # At 13 s, Alice's 11 s of B and Carol's 12 s of A no longer count.
    strict = pairs_of(await backend.co_watched(SINCE, 13.0, limit=10))
    assert strict == [
        ("A", "B", 1),
        ("A", "C", 1),
        ("B", "A", 1),
        ("B", "D", 1),
        ("C", "A", 1),
        ("D", "B", 1),
    ]
    assert await backend.co_watched(SINCE, 10.0, limit=0) == []


async def test_popular_ranks_views_then_watch_time(open_backend: OpenBackend) -> None:
    backend = await holding(open_backend, sessions())
    week = Period(date(2024, 3, 1), date(2024, 3, 7))
    ranked = [(v.video_id, v.views) for v in await backend.popular(week, limit=10)]
    # A: 4 views in the week (Dave's is February's); B: 3; C and D: 2 each (Carol's
    # 4 s of C is a view: the analytics' own definition, 3 s), D with more watch time.
    assert ranked == [(A.id, 4), (B.id, 3), (D.id, 2), (C.id, 2)]
    assert [v.video_id for v in await backend.popular(week, limit=2)] == [A.id, B.id]
    assert await backend.popular(Period(date(2024, 4, 1), date(2024, 4, 7)), limit=5) == []


async def test_both_backends_pair_many_random_sessions_alike(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    events = random_events(3000, seed=17)
    answers: list[Any] = []
    for kind in ("sqlite", "clickhouse"):
        spool = tmp_path / f"spool-{kind}"
        if kind == "sqlite":
            backend: BufferedBackend = SqliteAnalytics(tmp_path / "r.sqlite3", spool_dir=spool)
        else:
            server = request.getfixturevalue("clickhouse_server")
            backend = ClickHouseAnalytics(
                host=server.host,
                port=server.port,
                database=f"test_{uuid.uuid4().hex[:12]}",
                spool_dir=spool,
            )
        await backend.start()
        try:
            await backend.record(events)
            await backend.flush()
            week = Period(date(2024, 3, 1), date(2024, 3, 7))
            answers.append(
                (
                    await backend.co_watched(date(2024, 3, 2), 5.0, limit=4),
                    await backend.popular(week, limit=6),
                )
            )
        finally:
            await backend.close()
    assert answers[0][0], "the random sessions should pair some videos"
    assert answers[0] == answers[1]
