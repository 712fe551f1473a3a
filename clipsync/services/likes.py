"""Likes: one per person and video, and the counts a video's JSON carries.

Liking is idempotent: the unique (video, user) pair in the database, not a counter,
is the like, so a replayed or concurrent PUT cannot inflate the count.

Counts for a list of videos are read in bulk (`add_counts`) and carried on the video
objects for `videos.video_json`, never read one video at a time. A video's like and
comment counts are the same for everyone, so they are kept in the cache (`counts:<id>`,
tagged `likes:<id>` and `comments:<id>`: a like or unlike here, a comment posted,
deleted, hidden or shown again in services/comments.py say so), and the misses of a
page are read in two queries. Whether the viewer likes each is theirs alone: one query
per page, never cached (an entry per person and video would crowd out the shared ones
for the price of one indexed query).
"""

from __future__ import annotations

import contextlib
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.functions import Count

from clipsync import cache
from clipsync.models import Comment, Like, User, Video
from clipsync.services.videos import get_visible

# The attribute `add_counts` sets and `videos.video_json` reads.
COUNTS = "social_counts"


async def state(user: User, video: Video) -> dict[str, Any]:
    """`{likes, liked}` for `user` and `video`."""
    return {
        "likes": await Like.filter(video_id=video.id).count(),
        "liked": await Like.exists(video_id=video.id, user_id=user.id),
    }


async def like(user: User, video_id: Any) -> dict[str, Any]:
    """`user` likes the video (again: nothing changes); 404 when they may not see it."""
    video = await get_visible(user, video_id)
    # A concurrent PUT of the same person may win the race: then the like exists.
    with contextlib.suppress(IntegrityError):
        _, made = await Like.get_or_create(video_id=video.id, user_id=user.id)
        if made:
            await cache.stale([likes_tag(video.id)])
    return await state(user, video)


async def unlike(user: User, video_id: Any) -> dict[str, Any]:
    """`user` no longer likes the video (whether or not they did)."""
    video = await get_visible(user, video_id)
    if await Like.filter(video_id=video.id, user_id=user.id).delete():
        await cache.stale([likes_tag(video.id)])
    return await state(user, video)


def likes_tag(video_id: Any) -> str:
    """The cache tag of a video's like count."""
    return f"likes:{video_id}"


def comments_tag(video_id: Any) -> str:
    """The cache tag of a video's comment count (services/comments.py invalidates it)."""
    return f"comments:{video_id}"


async def _grouped(model: Any, ids: list[Any], **filters: Any) -> dict[str, int]:
    rows = (
        await model.filter(video_id__in=ids, **filters)
        .annotate(n=Count("id"))
        .group_by("video_id")
        .values("video_id", "n")
    )
    return {str(row["video_id"]): row["n"] for row in rows}


async def shared_counts(ids: list[str]) -> dict[str, Any]:
    """`{"likes", "comments"}` of each of `ids`: from the cache, the misses in two queries.

    `comments` counts the comments everyone sees (not hidden ones)."""
    keys = [f"counts:{video_id}" for video_id in ids]

    async def fill(missing: list[str]) -> dict[str, Any]:
        wanted = [key.split(":", 1)[1] for key in missing]
        likes = await _grouped(Like, wanted)
        comments = await _grouped(Comment, wanted, hidden_at__isnull=True)
        return {
            f"counts:{video_id}": {
                "likes": likes.get(video_id, 0),
                "comments": comments.get(video_id, 0),
            }
            for video_id in wanted
        }

    def tags_of(key: str) -> list[str]:
        video_id = key.split(":", 1)[1]
        return [likes_tag(video_id), comments_tag(video_id)]

    values = await cache.current().get_many_or_fill(keys, tags_of, fill)
    return dict(zip(ids, values, strict=True))


async def add_counts(videos: list[Video], viewer: User) -> list[Video]:
    """Set `likes`, `liked` and `commentCount` on each video: the counts from the cache
    (`shared_counts`), whether `viewer` likes each in one query."""
    ids = [str(v.id) for v in videos]
    if not ids:
        return videos
    counts = await shared_counts(ids)
    liked = {
        str(v)
        for v in await Like.filter(video_id__in=ids, user_id=viewer.id).values_list(
            "video_id", flat=True
        )
    }
    for video, key in zip(videos, ids, strict=True):
        shared = counts[key]
        setattr(
            video,
            COUNTS,
            {
                "likes": shared["likes"],
                "liked": key in liked,
                "commentCount": shared["comments"],
            },
        )
    return videos
