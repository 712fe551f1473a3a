"""A video's cached counts and tags are never stale after the change that alters them.

Like and comment counts, tags and the chunk count of a video's last transcode are
kept in the cache per video (services/likes.py, tags.py, chunk_counts.py). Each test
primes the list and the detail through the real API, makes one kind of change, and
checks that the very next list and detail show it, on the memory cache and on Redis.
The TTL is an hour, so only the change's invalidation can make them fresh. Across two
`clipsync serve` workers: the last test.
"""

from __future__ import annotations

from typing import Any

import httpx
import test_cache_invalidation
import test_cache_live
from clients import bearer
from live_install import Install
from test_cache_invalidation import detail, listed, stored_video
from test_cache_live import Live, fresh_on_b, tokens, two_workers
from test_cache_live import stored_video as stored_live_video

from clipsync import cache
from clipsync.models import TranscodeChunk, Video, VideoStatus

# The same sites as the other cache tests: each test on memory and on Redis.
site = test_cache_invalidation.site
live = test_cache_live.live


async def shown(client: httpx.AsyncClient, token: str, video_id: Any) -> tuple[dict, dict]:
    """The video as the list and as the detail show it (both primed by reading)."""
    in_list = (await listed(client, token))[str(video_id)]
    answer = await detail(client, token, video_id)
    assert answer.status_code == 200, answer.text
    return in_list, answer.json()["video"]


async def both(client: httpx.AsyncClient, token: str, video_id: Any, key: str) -> tuple:
    in_list, in_detail = await shown(client, token, video_id)
    return in_list[key], in_detail[key]


async def test_a_like_and_an_unlike_show_at_once(site) -> None:
    app, client, people = site
    clip = await stored_video(app, people["uploader"][0])
    viewer, other = people["viewer"][1], people["editor"][1]
    assert await both(client, viewer, clip.id, "likes") == (0, 0)
    liked = await client.put(f"/api/videos/{clip.id}/like", headers=bearer(other))
    assert liked.status_code == 200, liked.text
    assert await both(client, viewer, clip.id, "likes") == (1, 1)
    assert await both(client, viewer, clip.id, "liked") == (False, False)
    assert (await client.put(f"/api/videos/{clip.id}/like", headers=bearer(viewer))).is_success
    assert await both(client, viewer, clip.id, "likes") == (2, 2)
    assert await both(client, viewer, clip.id, "liked") == (True, True)
    assert (await client.delete(f"/api/videos/{clip.id}/like", headers=bearer(other))).is_success
    assert await both(client, viewer, clip.id, "likes") == (1, 1)
    assert cache.current().counts.by_kind["counts"][0] > 0  # it was served from the cache


async def post_comment(client: httpx.AsyncClient, token: str, video_id: Any, **body: Any) -> int:
    answer = await client.post(
        f"/api/videos/{video_id}/comments", json={"body": "Nice", **body}, headers=bearer(token)
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["comment"]["id"]


async def test_a_posted_and_a_deleted_comment_show_at_once(site) -> None:
    app, client, people = site
    clip = await stored_video(app, people["uploader"][0])
    viewer = people["viewer"][1]
    assert await both(client, viewer, clip.id, "commentCount") == (0, 0)
    first = await post_comment(client, viewer, clip.id)
    assert await both(client, viewer, clip.id, "commentCount") == (1, 1)
    await post_comment(client, people["editor"][1], clip.id, parentId=first)
    assert await both(client, viewer, clip.id, "commentCount") == (2, 2)
    # Deleting a comment deletes its replies too.
    gone = await client.delete(f"/api/comments/{first}", headers=bearer(viewer))
    assert gone.status_code == 204, gone.text
    assert await both(client, viewer, clip.id, "commentCount") == (0, 0)


async def test_a_comment_hidden_and_shown_again_by_a_moderator_shows_at_once(site) -> None:
    app, client, people = site
    clip = await stored_video(app, people["uploader"][0])
    viewer, editor = people["viewer"][1], people["editor"][1]
    comment = await post_comment(client, viewer, clip.id)
    assert await both(client, viewer, clip.id, "commentCount") == (1, 1)
    for hidden, count in ((True, 0), (False, 1)):
        answer = await client.post(
            f"/api/comments/{comment}/hide", json={"hidden": hidden}, headers=bearer(editor)
        )
        assert answer.status_code == 200, answer.text
        assert await both(client, viewer, clip.id, "commentCount") == (count, count)


async def test_comments_turned_off_keep_their_count(site) -> None:
    """Turning comments off hides no comment: the count stays what the database says."""
    app, client, people = site
    clip = await stored_video(app, people["uploader"][0])
    viewer = people["viewer"][1]
    await post_comment(client, viewer, clip.id)
    assert await both(client, viewer, clip.id, "commentCount") == (1, 1)
    off = await client.put(
        f"/api/videos/{clip.id}/comments-enabled",
        json={"enabled": False},
        headers=bearer(people["uploader"][1]),
    )
    assert off.status_code == 200, off.text
    assert await both(client, viewer, clip.id, "commentCount") == (1, 1)


async def test_a_tag_added_and_removed_shows_at_once(site) -> None:
    app, client, people = site
    clip = await stored_video(app, people["uploader"][0])
    viewer, owner = people["viewer"][1], people["uploader"][1]
    assert await both(client, viewer, clip.id, "tags") == ([], [])
    for labels in (["Demo", "howto"], ["howto"], []):
        edited = await client.patch(
            f"/api/videos/{clip.id}", json={"tags": labels}, headers=bearer(owner)
        )
        assert edited.status_code == 200, edited.text
        assert await both(client, viewer, clip.id, "tags") == (labels, labels)


async def planned(video_id: Any, count: int) -> None:
    """What a chunked transcode's plan writes (services/chunked_transcoding.py `_plan`):
    the old rows replaced, with no news of it."""
    await TranscodeChunk.filter(video_id=video_id).delete()
    await TranscodeChunk.bulk_create(
        [
            TranscodeChunk(
                video_id=video_id, plan="p2", index=i, start=i * 4, transcoder="cpu", source_key="s"
            )
            for i in range(count)
        ]
    )


async def test_a_transcode_again_shows_its_chunk_count_at_once(site) -> None:
    app, client, people = site
    clip = await stored_video(app, people["uploader"][0], VideoStatus.READY)
    await planned(clip.id, 3)
    owner = people["uploader"][1]
    assert await both(client, owner, clip.id, "chunks") == (3, 3)
    again = await client.post(
        f"/api/admin/videos/{clip.id}/retranscode", headers=bearer(people["editor"][1])
    )
    assert again.status_code == 200, again.text
    assert await both(client, owner, clip.id, "chunks") == (3, 3)
    await planned(clip.id, 5)  # the job plans its chunks while the video is PROCESSING
    assert await both(client, owner, clip.id, "chunks") == (5, 5)
    row = await Video.get(id=clip.id)
    row.status = VideoStatus.READY  # its renditions stored (`record_renditions` saves it)
    await row.save()
    assert await both(client, owner, clip.id, "chunks") == (5, 5)


# --- across two workers ------------------------------------------------------------------


def test_likes_comments_and_tags_through_one_worker_are_fresh_through_the_other(
    live: Live,
) -> None:
    install: Install = live.install
    people = tokens(install)
    owner, viewer = bearer(people["uploader"]), bearer(people["viewer"])
    clip = stored_live_video(install, "uploader@example.org", "APPROVED")
    with two_workers(install.server) as (a, b):

        def seen(key: str, value: Any) -> bool:
            listed = b.get("/api/videos?pageSize=100", headers=viewer).json()["items"]
            in_list = next(item for item in listed if item["id"] == clip)
            in_detail = b.get(f"/api/videos/{clip}", headers=viewer).json()["video"]
            return in_list[key] == value and in_detail[key] == value

        assert seen("likes", 0) and seen("commentCount", 0) and seen("tags", [])
        assert a.put(f"/api/videos/{clip}/like", headers=owner).status_code == 200
        fresh_on_b(live, lambda: seen("likes", 1))
        posted = a.post(f"/api/videos/{clip}/comments", json={"body": "Hi"}, headers=viewer)
        assert posted.status_code == 201, posted.text
        fresh_on_b(live, lambda: seen("commentCount", 1))
        comment = posted.json()["comment"]["id"]
        assert a.delete(f"/api/comments/{comment}", headers=viewer).status_code == 204
        fresh_on_b(live, lambda: seen("commentCount", 0))
        tagged = a.patch(f"/api/videos/{clip}", json={"tags": ["Demo"]}, headers=owner)
        assert tagged.status_code == 200, tagged.text
        fresh_on_b(live, lambda: seen("tags", ["Demo"]))
        assert a.delete(f"/api/videos/{clip}/like", headers=owner).status_code == 200
        fresh_on_b(live, lambda: seen("likes", 0))
