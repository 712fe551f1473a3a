"""The home page's rows: Continue watching, New in your category, Popular this week.

Each shows only what the person may see; runs on SQLite and on PostgreSQL (see
`watch_world`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import watch_world
from clients import bearer
from watch_world import watched

from clipsync import cache
from clipsync.errors import AnalyticsUnavailable
from clipsync.models import Video, VideoStatus, WatchProgress
from clipsync.services import home_rows

world = watch_world.world  # the fixture


async def row(world: dict[str, Any], viewer: str, path: str) -> list[str]:
    """The title letters of a row as `viewer` gets it."""
    response = await world["client"].get(path, headers=bearer(world["tokens"][viewer]))
    assert response.status_code == 200, response.text
    return [item["title"][-1] for item in response.json()["items"]]


async def stopped_at(
    world: dict[str, Any], viewer: str, video: str, position: float, minutes_ago: int
) -> None:
    response = await world["client"].put(
        f"/api/videos/{world['videos'][video].id}/progress",
        json={"position": position},
        headers=bearer(world["tokens"][viewer]),
    )
    assert response.status_code == 200, response.text
    await WatchProgress.filter(
        user_id=world["users"][viewer].id, video_id=world["videos"][video].id
    ).update(updated_at=datetime.now(UTC) - timedelta(minutes=minutes_ago))


async def test_continue_watching_shows_unfinished_visible_videos_newest_first(world) -> None:
    await stopped_at(world, "sam", "A", 10, minutes_ago=30)
    await stopped_at(world, "sam", "B", 95, minutes_ago=5)  # finished: 5 s of 100 left
    await stopped_at(world, "sam", "C", 50, minutes_ago=10)
    assert await row(world, "sam", "/api/me/continue") == ["C", "A"]
    response = await world["client"].get("/api/me/continue", headers=bearer(world["tokens"]["sam"]))
    first = response.json()["items"][0]
    assert first["position"] == 50.0 and first["finished"] is False and first["hls"]
    # C is rejected: Sam may no longer see it, so it is not offered.
    await Video.filter(id=world["videos"]["C"].id).update(status=VideoStatus.REJECTED)
    assert await row(world, "sam", "/api/me/continue") == ["A"]
    # Nobody else's resume points.
    assert await row(world, "ed", "/api/me/continue") == []


async def test_new_in_category_is_others_recent_videos_not_started_yet(world) -> None:
    assert await row(world, "sam", "/api/me/new-in-category") == ["C", "B", "A"]
    await stopped_at(world, "sam", "B", 10, minutes_ago=1)
    assert await row(world, "sam", "/api/me/new-in-category") == ["C", "A"]
    # Ann uploaded them: not new to her. Dee gets the dealers' D; Dan uploaded it.
    assert await row(world, "ann", "/api/me/new-in-category") == []
    assert await row(world, "dee", "/api/me/new-in-category") == ["D"]
    assert await row(world, "dan", "/api/me/new-in-category") == []
    # Older than the row's window: no longer new.
    await Video.filter(id=world["videos"]["C"].id).update(
        created_at=datetime.now(UTC) - timedelta(days=home_rows.NEW_DAYS + 1)
    )
    assert await row(world, "sam", "/api/me/new-in-category") == ["A"]


async def test_popular_this_week_ranks_views_among_visible_videos(world) -> None:
    app, users, v = world["app"], world["users"], world["videos"]
    await watched(app, users["sam"], v["A"], v["C"])
    await watched(app, users["ed"], v["A"])
    await watched(app, users["ann"], v["A"], v["C"], v["B"])
    await watched(app, users["boss"], v["D"], v["B"], v["C"])
    await watched(app, users["dee"], v["D"])
    await cache.current().delete(home_rows.RANKING_KEY)
    # A and C: 3 views each (the same watch time: their order is by id), B and D: 2.
    # Sam never gets D (dealers'); Dee gets only D.
    sam = await row(world, "sam", "/api/videos/popular")
    assert sorted(sam[:2]) == ["A", "C"] and sam[2:] == ["B"]
    assert await row(world, "dee", "/api/videos/popular") == ["D"]
    assert "D" in await row(world, "boss", "/api/videos/popular")


async def test_popular_is_empty_not_an_error_while_analytics_are_away(world, monkeypatch) -> None:
    backend = world["app"].ctx.analytics.backend

    async def away(period: Any, limit: int) -> list[Any]:
        raise AnalyticsUnavailable("Analytics are unavailable right now.")

    monkeypatch.setattr(backend, "popular", away)
    await cache.current().delete(home_rows.RANKING_KEY)
    assert await row(world, "sam", "/api/videos/popular") == []


async def test_rows_need_a_signed_in_person(world) -> None:
    for path in ("/api/me/continue", "/api/me/new-in-category", "/api/videos/popular"):
        assert (await world["client"].get(path)).status_code == 401
