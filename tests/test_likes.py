"""Likes: one per person, a toggle that replays cannot inflate, the video's visibility rule.

Issue 17, item 4, through a real app on a real (migrated) SQLite file.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from clients import PASSWORD, bearer

from clipsync.context import ClipSyncApp
from clipsync.models import Comment, Like, User, Video, VideoStatus
from clipsync.services import likes, videos


@pytest.fixture
async def world(app: ClipSyncApp) -> dict:
    tokens = {}
    people = {}
    for name, category in (("ann", "general"), ("bob", "general"), ("out", "partners")):
        user = await app.ctx.accounts.create_user(f"{name}@example.org", PASSWORD)
        await User.filter(id=user.id).update(category=category)
        people[name] = await User.get(id=user.id)
        tokens[name] = app.ctx.accounts.start_session(people[name]).token
    video = await Video.create(
        owner=people["ann"], title="Clip", category="general", status=VideoStatus.APPROVED
    )
    return {"tokens": tokens, "people": people, "video": video}


async def test_a_like_is_counted_once_however_often_it_is_sent(
    client: httpx.AsyncClient, world
) -> None:
    url = f"/api/videos/{world['video'].id}/like"
    bob, ann = bearer(world["tokens"]["bob"]), bearer(world["tokens"]["ann"])
    for _ in range(3):
        answer = await client.put(url, headers=bob)
        assert answer.status_code == 200 and answer.json() == {"likes": 1, "liked": True}
    # Replayed at once, side by side: still one.
    replies = await asyncio.gather(*(client.put(url, headers=bob) for _ in range(5)))
    assert {r.status_code for r in replies} == {200}
    assert (await client.put(url, headers=ann)).json() == {"likes": 2, "liked": True}
    assert await Like.filter(video_id=world["video"].id).count() == 2

    assert (await client.delete(url, headers=bob)).json() == {"likes": 1, "liked": False}
    assert (await client.delete(url, headers=bob)).json() == {"likes": 1, "liked": False}
    listed = await client.get(f"/api/videos/{world['video'].id}/comments", headers=ann)
    assert listed.json()["likes"] == 1 and listed.json()["liked"] is True
    # The video's JSON carries them too, in the detail and in the list.
    detail = (await client.get(f"/api/videos/{world['video'].id}", headers=ann)).json()["video"]
    assert (detail["likes"], detail["liked"], detail["commentCount"]) == (1, True, 0)
    [item] = [
        v
        for v in (await client.get("/api/videos", headers=bob)).json()["items"]
        if v["id"] == str(world["video"].id)
    ]
    assert (item["likes"], item["liked"]) == (1, False)


async def test_a_video_one_may_not_see_cannot_be_liked(client: httpx.AsyncClient, world) -> None:
    url = f"/api/videos/{world['video'].id}/like"
    out = bearer(world["tokens"]["out"])
    assert (await client.put(url, headers=out)).status_code == 404
    assert (await client.delete(url, headers=out)).status_code == 404
    assert (await client.put(url)).status_code == 401
    assert await Like.all().count() == 0


async def test_counts_for_a_page_of_videos_come_in_bulk(world) -> None:
    ann, bob = world["people"]["ann"], world["people"]["bob"]
    video = world["video"]
    other = await Video.create(owner=ann, title="Other", category="general", status="APPROVED")
    await Like.create(video=video, user=ann)
    await Like.create(video=video, user=bob)
    await Comment.create(video=video, author=bob, body="one")
    await Comment.create(video=video, author=bob, body="two")
    await Comment.create(video=video, author=bob, body="hidden", hidden_at=video.created_at)

    page = await likes.add_counts([video, other], bob)
    shown = [videos.video_json(v, bob) for v in page]
    assert [(v["likes"], v["liked"], v["commentCount"]) for v in shown] == [
        (2, True, 2),
        (0, False, 0),
    ]
    assert "likes" not in videos.video_json(await Video.get(id=video.id), bob)
