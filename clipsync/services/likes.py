"""Likes: one per person and video, and the counts a video's JSON carries.

Liking is idempotent: the unique (video, user) pair in the database, not a counter,
is the like, so a replayed or concurrent PUT cannot inflate the count.

Counts for a list of videos are read in bulk (`add_counts`: one query for likes, one
for comments, one for the viewer's own likes, whatever the page size) and carried on
the video objects for `videos.video_json`, never read one video at a time.
"""

from __future__ import annotations

import contextlib
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.functions import Count

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
        await Like.get_or_create(video_id=video.id, user_id=user.id)
    return await state(user, video)


async def unlike(user: User, video_id: Any) -> dict[str, Any]:
    """`user` no longer likes the video (whether or not they did)."""
    video = await get_visible(user, video_id)
    await Like.filter(video_id=video.id, user_id=user.id).delete()
    return await state(user, video)


async def _grouped(model: Any, ids: list[Any], **filters: Any) -> dict[str, int]:
    rows = (
        await model.filter(video_id__in=ids, **filters)
        .annotate(n=Count("id"))
        .group_by("video_id")
        .values("video_id", "n")
    )
    return {str(row["video_id"]): row["n"] for row in rows}


async def add_counts(videos: list[Video], viewer: User) -> list[Video]:
    """Set `likes`, `liked` and `commentCount` on each video, in three queries in all.

    `commentCount` counts the comments everyone sees (not hidden ones).
    """
    ids = [v.id for v in videos]
    if not ids:
        return videos
    likes = await _grouped(Like, ids)
    comments = await _grouped(Comment, ids, hidden_at__isnull=True)
    liked = {
        str(v)
        for v in await Like.filter(video_id__in=ids, user_id=viewer.id).values_list(
            "video_id", flat=True
        )
    }
    for video in videos:
        key = str(video.id)
        setattr(
            video,
            COUNTS,
            {
                "likes": likes.get(key, 0),
                "liked": key in liked,
                "commentCount": comments.get(key, 0),
            },
        )
    return videos
