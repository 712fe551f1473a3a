"""A video's audience beyond its row: the other categories it is published to, and the
people it is granted to (with until when).

The visibility rule (services/videos.py) asks the database with subqueries on these
tables, but it also re-checks rows it already holds (`videos.matches`: a cached list
head, a cached row) and that check is synchronous: so the rows are given their
audience first (`attach`), kept in the cache per video (`audience:<id>`, tagged
`video:<id>`; a change of a video's categories or grants publishes a `video.*` event,
which drops it). A row never attached matches no branch that needs its audience: the
check then shows less, never more.

The list of the videos granted to one person (`granted_head`, the rule's grants
branch) is cached like the other branches' heads (services/video_reads.py), but per
person (`granted-head:<branch>`, tagged `user:<id>` and `lists:all`) and with each
grant's end, so that a grant drops out of the list the moment it expires.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import Q

from clipsync import cache
from clipsync.models import Video, VideoCategory, VideoGrant
from clipsync.services import video_reads


@dataclass(frozen=True)
class Audience:
    # The other categories, sorted; never the primary `Video.category`.
    extra: tuple[str, ...] = ()
    # Granted person's id → the grant's end (None: until removed).
    grants: dict[int, datetime | None] = field(default_factory=dict)


def audience_of(video: Video) -> Audience | None:
    """What `attach` loaded for `video`, or None when it never ran for this row."""
    return getattr(video, "audience", None)


def categories_of(video: Video) -> list[str]:
    """Every category `video` is published to, its primary one first."""
    found = audience_of(video)
    return list(dict.fromkeys([video.category, *(found.extra if found else ())]))


def published_to(video: Video, category: str) -> bool:
    """Whether `video` is also published to `category` (besides its primary one)."""
    found = audience_of(video)
    return found is not None and category in found.extra


def granted_to(video: Video, user_id: Any, now: datetime | None = None) -> bool:
    """Whether an unexpired grant of `video` names the person `user_id`."""
    found = audience_of(video)
    if found is None or user_id is None:
        return False
    try:
        until = found.grants[int(user_id)]
    except (KeyError, ValueError, TypeError):
        return False
    return until is None or until > (now or datetime.now(UTC))


def _key(video_id: Any) -> str:
    return f"audience:{video_id}"


async def attach(videos: Sequence[Video]) -> Sequence[Video]:
    """Load the audience of `videos` onto their rows (one cache read for all)."""
    wanted = [video for video in videos if audience_of(video) is None]
    if not wanted:
        return videos
    keys = [_key(video.id) for video in wanted]

    async def fill(missing: list[str]) -> dict[str, Any]:
        ids = [key.split(":", 1)[1] for key in missing]
        found: dict[str, dict[str, Any]] = {i: {"extra": [], "grants": {}} for i in ids}
        for video_id, category in await VideoCategory.filter(video_id__in=ids).values_list(
            "video_id", "category"
        ):
            found[str(video_id)]["extra"].append(category)
        for video_id, user_id, until in await VideoGrant.filter(video_id__in=ids).values_list(
            "video_id", "user_id", "until"
        ):
            found[str(video_id)]["grants"][str(user_id)] = until.isoformat() if until else None
        return {_key(video_id): value for video_id, value in found.items()}

    values = await cache.current().get_many_or_fill(
        keys, lambda key: [cache.video_tag(key.split(":", 1)[1])], fill
    )
    for video, value in zip(wanted, values, strict=True):
        value = value or {}
        grants = {
            int(user_id): datetime.fromisoformat(until) if until else None
            for user_id, until in (value.get("grants") or {}).items()
        }
        extra = tuple(sorted(c for c in value.get("extra", ()) if c != video.category))
        video.audience = Audience(extra=extra, grants=grants)
    return videos


async def granted_head(branch: dict[str, Any], key: str) -> list[video_reads.Position]:
    """The newest videos of a grants branch (`branch[key]` names the person; the other
    columns narrow it, e.g. to APPROVED), as `video_reads.heads` gives each branch,
    without the grants that have expired by now."""
    user_id = branch[key]
    narrowed = {column: value for column, value in branch.items() if column != key}
    cache_key = "granted-head:" + json.dumps(branch, sort_keys=True, separators=(",", ":"))

    async def fill() -> list[list[Any]]:
        # Those already expired are left out here too, so that they never take a place
        # of the head's `HEAD` from a live one.
        live = Q(until__isnull=True) | Q(until__gt=datetime.now(UTC))
        until_of = {
            str(video_id): until
            for video_id, until in await VideoGrant.filter(live, user_id=user_id).values_list(
                "video_id", "until"
            )
        }
        if not until_of:
            return []
        newest = (
            await Video.filter(id__in=list(until_of), **narrowed)
            .order_by("-created_at", "-id")
            .limit(video_reads.HEAD)
            .values_list("created_at", "id")
        )
        return [
            [video_reads.micros(at), str(video_id), _micros_or_none(until_of[str(video_id)])]
            for at, video_id in newest
        ]

    tags = [cache.user_tag(user_id), "lists:all"]
    rows = await cache.current().get_or_fill(cache_key, tags, fill)
    now = video_reads.micros(datetime.now(UTC))
    return [(at, video_id) for at, video_id, until in rows if until is None or until > now]


def _micros_or_none(instant: datetime | None) -> int | None:
    return video_reads.micros(instant) if instant is not None else None
