"""Watch history: the person's resume points, newest first, only what they may still see;
removing one or all of them, by the API and by the page's plain forms.

Runs on SQLite and on PostgreSQL (see `watch_world`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import watch_world
from clients import PASSWORD, bearer

from clipsync.models import Video, VideoStatus, WatchProgress
from clipsync.services.watch_history import finished
from clipsync.sessions import CSRF_COOKIE

world = watch_world.world  # the fixture


async def progress(world: dict[str, Any], viewer: str, video: str, position: float) -> None:
    response = await world["client"].put(
        f"/api/videos/{world['videos'][video].id}/progress",
        json={"position": position},
        headers=bearer(world["tokens"][viewer]),
    )
    assert response.status_code == 200, response.text


async def age(world: dict[str, Any], viewer: str, video: str, minutes: int) -> None:
    """Make `viewer`'s resume point of `video` `minutes` old (the clock moves too fast
    for the order to be left to chance)."""
    await WatchProgress.filter(
        user_id=world["users"][viewer].id, video_id=world["videos"][video].id
    ).update(updated_at=datetime.now(UTC) - timedelta(minutes=minutes))


async def history_of(world: dict[str, Any], viewer: str) -> list[tuple[str, float]]:
    response = await world["client"].get("/api/me/history", headers=bearer(world["tokens"][viewer]))
    assert response.status_code == 200, response.text
    return [(item["title"][-1], item["position"]) for item in response.json()["items"]]


def test_a_video_is_finished_in_its_last_5_percent_or_30_seconds() -> None:
    assert not finished(60, 100)
    assert finished(70, 100)  # 30 s left
    assert not finished(3000, 3600)
    assert finished(3420, 3600)  # 5 % left
    assert not finished(0, None)


async def test_history_lists_what_was_watched_newest_first_with_positions(world) -> None:
    await progress(world, "sam", "A", 12)
    await progress(world, "sam", "B", 99)
    await progress(world, "sam", "C", 40)
    await age(world, "sam", "A", 30)
    await age(world, "sam", "B", 20)
    await age(world, "sam", "C", 10)
    assert await history_of(world, "sam") == [("C", 40.0), ("B", 99.0), ("A", 12.0)]
    response = await world["client"].get(
        "/api/me/history?pageSize=2&page=2", headers=bearer(world["tokens"]["sam"])
    )
    body = response.json()
    assert (body["total"], body["page"], body["pageSize"]) == (3, 2, 2)
    [item] = body["items"]
    assert item["id"] == str(world["videos"]["A"].id)
    assert item["finished"] is False and item["watchedAt"]
    # The shape of lists: the video's JSON, with its counts.
    assert {"hls", "poster", "likes", "commentCount"} <= set(item)
    # Someone else's history is their own.
    assert await history_of(world, "ed") == []


async def test_history_leaves_out_videos_no_longer_visible(world) -> None:
    await progress(world, "sam", "A", 10)
    await progress(world, "sam", "C", 10)
    await progress(world, "ann", "C", 10)
    await Video.filter(id=world["videos"]["C"].id).update(status=VideoStatus.REJECTED)
    assert [title for title, _ in await history_of(world, "sam")] == ["A"]
    # Ann uploaded C: she still sees it, and her history shows it.
    assert [title for title, _ in await history_of(world, "ann")] == ["C"]
    # Sam's row is kept: approved again, C is back in his history.
    await Video.filter(id=world["videos"]["C"].id).update(status=VideoStatus.APPROVED)
    assert sorted(title for title, _ in await history_of(world, "sam")) == ["A", "C"]


async def test_removing_an_entry_also_forgets_where_to_resume(world) -> None:
    client, headers = world["client"], bearer(world["tokens"]["sam"])
    await progress(world, "sam", "A", 10)
    await progress(world, "sam", "B", 20)
    video_a = world["videos"]["A"].id
    removed = await client.delete(f"/api/me/history/{video_a}", headers=headers)
    assert removed.status_code == 204
    assert await history_of(world, "sam") == [("B", 20.0)]
    detail = await client.get(f"/api/videos/{video_a}", headers=headers)
    assert detail.json()["userProgress"] is None
    # Again, or for a video Sam may not see: the same answer, nothing else changes.
    again = await client.delete(f"/api/me/history/{video_a}", headers=headers)
    hidden = await client.delete(f"/api/me/history/{world['videos']['D'].id}", headers=headers)
    assert again.status_code == hidden.status_code == 204
    assert await history_of(world, "sam") == [("B", 20.0)]


async def test_clearing_forgets_every_entry_of_that_person_only(world) -> None:
    await progress(world, "sam", "A", 10)
    await progress(world, "sam", "B", 20)
    await progress(world, "ed", "A", 30)
    cleared = await world["client"].delete(
        "/api/me/history", headers=bearer(world["tokens"]["sam"])
    )
    assert cleared.status_code == 200 and cleared.json() == {"removed": 2}
    assert await history_of(world, "sam") == []
    assert await history_of(world, "ed") == [("A", 30.0)]


async def test_history_needs_a_signed_in_person(world) -> None:
    client = world["client"]
    assert (await client.get("/api/me/history")).status_code == 401
    assert (await client.delete("/api/me/history")).status_code == 401


async def sign_in(client: httpx.AsyncClient, email: str) -> str:
    """Sign in with the form, as a browser does; returns the CSRF token for forms."""
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    done = await client.post(
        "/login", data={"csrf_token": token, "email": email, "password": PASSWORD}
    )
    assert done.status_code == 303, done.text
    return client.cookies[CSRF_COOKIE]


async def test_the_history_page_removes_one_and_clears_after_confirming(world) -> None:
    client = world["client"]
    await progress(world, "sam", "A", 10)
    await progress(world, "sam", "B", 95)
    csrf = await sign_in(client, "sam@example.org")
    page = await client.get("/history")
    assert page.status_code == 200
    assert "Clip A" in page.text and "Clip B" in page.text
    assert "Watched to the end" in page.text  # B: 5 s of 100 left
    assert "forgets where you stopped" in page.text

    video_a = world["videos"]["A"].id
    removed = await client.post(f"/history/{video_a}/remove", data={"csrf_token": csrf})
    assert removed.status_code == 303 and removed.headers["location"] == "/history?done=removed"
    page = await client.get("/history?done=removed")
    assert "Clip A" not in page.text and "removed from your history" in page.text

    # Clearing asks first, and says what it forgets.
    confirm = await client.get("/history/clear")
    assert confirm.status_code == 200 and "start from the beginning" in confirm.text
    assert await history_of(world, "sam") == [("B", 95.0)]
    refused = await client.post("/history/clear", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    cleared = await client.post("/history/clear", data={"csrf_token": csrf})
    assert cleared.status_code == 303
    page = await client.get(cleared.headers["location"])
    assert "Your history is empty." in page.text and "Your history was cleared." in page.text
    assert await history_of(world, "sam") == []
