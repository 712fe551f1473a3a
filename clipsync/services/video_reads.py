"""Videos read through the cache: rows, their owners, and the heads of the list.

`services.videos` decides who sees what; this module only keeps what it reads.

- A video's row (`video:<id>`) and an owner's row (`user:<id>`) are the same for
  everyone: what a viewer may see of them is decided per request by the rule
  (`videos.may_see`, `video_json`) from the viewer's own row.
- A *head* is the newest `HEAD` (id, time) pairs of one branch of the visibility
  rule: `{"category": "x", "status": "APPROVED"}`, `{"owner_id": 7}`, `{}`. Its key
  is the branch itself, so two viewers share a head exactly when the rule gives them
  the same branch: every user of category x shares the APPROVED-in-x head, every
  editor of x the all-of-x head, admins the head of everything; one's own uploads
  are a head of one's own. A list page and its count are merged from the viewer's
  heads, and each row is checked against the viewer's rule once more before it is
  shown, so even a head made stale by a missed change could not show a video to
  someone who may not see it.

A head is tagged by the columns of its branch: `lists:owner:<id>` when it names an
owner, else `lists:category:<c>` when it names a category, else `lists:all`; every
change that can add a video to a branch or take one out carries all three of the
video's tags (see clipsync/cache). A branch on anything but these columns would
need its own tag here.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from clipsync import cache
from clipsync.cache import rows
from clipsync.models import User, Video

# One more than the list counts to (`videos.COUNT_LIMIT`), so a head also says "more".
HEAD = 1_001
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Branch = dict[str, Any]
# (microseconds since 1970, id): newest first, ties broken by id as the databases do.
Position = tuple[int, str]


def micros(instant: datetime) -> int:
    return (instant - EPOCH) // timedelta(microseconds=1)


def _video_key(video_id: str) -> str:
    return f"video:{rows.shape(Video)}:{video_id}"


def _user_key(user_id: Any) -> str:
    return f"user:{rows.shape(User)}:{user_id}"


async def video_rows(ids: list[str]) -> dict[str, Video]:
    """The rows of `ids` that exist (by id), from the cache or one query for the rest."""
    keys = [_video_key(video_id) for video_id in ids]

    async def fill(missing: list[str]) -> dict[str, Any]:
        wanted = {key.rsplit(":", 1)[1]: key for key in missing}
        found = await Video.filter(id__in=list(wanted))
        return {wanted[str(video.id)]: rows.dump(video) for video in found}

    values = await cache.current().get_many_or_fill(
        keys, lambda key: [cache.video_tag(key.rsplit(":", 1)[1])], fill
    )
    return {
        video_id: rows.load(Video, value)
        for video_id, value in zip(ids, values, strict=True)
        if value is not None
    }


async def video_row(video_id: uuid.UUID) -> Video | None:
    """One video's row, or None when there is no such video."""
    return (await video_rows([str(video_id)])).get(str(video_id))


async def with_owners(videos: list[Video]) -> list[Video]:
    """`videos`, each with its `owner` row attached (as a prefetch would)."""
    owner_ids = list(dict.fromkeys(video.owner_id for video in videos))
    keys = [_user_key(owner_id) for owner_id in owner_ids]

    async def fill(missing: list[str]) -> dict[str, Any]:
        wanted = {int(key.rsplit(":", 1)[1]): key for key in missing}
        found = await User.filter(id__in=list(wanted))
        return {wanted[user.id]: rows.dump(user) for user in found}

    values = await cache.current().get_many_or_fill(
        keys, lambda key: [cache.user_tag(key.rsplit(":", 1)[1])], fill
    )
    owners = {
        owner_id: rows.load(User, value)
        for owner_id, value in zip(owner_ids, values, strict=True)
        if value is not None
    }
    for video in videos:
        if video.owner_id in owners:
            video.owner = owners[video.owner_id]
    return videos


def _head_key(branch: Branch) -> str:
    return "head:" + json.dumps(branch, sort_keys=True, separators=(",", ":"))


def _head_tags(branch: Branch) -> list[str]:
    if "owner_id" in branch:
        return [f"lists:owner:{branch['owner_id']}"]
    if "category" in branch:
        return [f"lists:category:{branch['category']}"]
    return ["lists:all"]


async def heads(branches: list[Branch]) -> list[Sequence[Position]]:
    """The head of each branch: its `HEAD` newest videos, newest first (the cache's
    read-only tuples themselves, shared with every other request that reads them)."""
    by_key = {_head_key(branch): branch for branch in branches}

    async def fill(missing: list[str]) -> dict[str, Any]:
        filled = {}
        for key in missing:
            newest = (
                await Video.filter(**by_key[key])
                .order_by("-created_at", "-id")
                .limit(HEAD)
                .values_list("created_at", "id")
            )
            filled[key] = [[micros(at), str(video_id)] for at, video_id in newest]
        return filled

    keys = list(by_key)
    values = await cache.current().get_many_or_fill(keys, lambda key: _head_tags(by_key[key]), fill)
    return list(values)


def merged(branch_heads: Sequence[Sequence[Position]]) -> list[str]:
    """The ids of the heads, newest first, each once."""
    if len(branch_heads) == 1:
        return [video_id for _, video_id in branch_heads[0]]
    # Each head is one sorted run, so the sort merges them (in C); a video in two
    # heads has one position, and the first of its ids is kept.
    newest = sorted(itertools.chain.from_iterable(branch_heads), reverse=True)
    return list(dict.fromkeys([video_id for _, video_id in newest]))
