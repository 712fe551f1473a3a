"""A person's watch history: the videos they watched, from their resume points.

History is the `WatchProgress` rows (one per person and video: where they stopped,
and when), so it needs no table of its own, and forgetting an entry forgets where to
resume that video too; the history page says so. Only videos the person may still
see are shown (`services.videos.visible_to`); the rows of the others stay, and come
back should the video become visible again.

Continue watching (the home page's first row) is the same rows, newest first, less
the videos they finished (`finished`) and those not playable now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.expressions import Subquery

from clipsync.models import User, Video, VideoStatus, WatchProgress
from clipsync.plugins import PluginHost
from clipsync.services import likes
from clipsync.services.videos import Page, filtered_list, visible_to

# A video is finished once the resume point is in its last 5 % or its last 30 s.
FINISHED_SHARE = 0.05
FINISHED_SECONDS = 30.0
# Resume points Continue watching looks through for unfinished ones.
CONTINUE_LOOKS_AT = 100
PLAYABLE = (VideoStatus.READY, VideoStatus.APPROVED)


def finished(position: float, duration: float | None) -> bool:
    """Whether a resume point at `position` means the video was watched to the end."""
    if not duration:
        return False
    return duration - position <= max(duration * FINISHED_SHARE, FINISHED_SECONDS)


@dataclass(frozen=True)
class Watched:
    """One entry of the history: the video, where they stopped, and when."""

    video: Video
    position: float
    watched_at: datetime

    @property
    def finished(self) -> bool:
        return finished(self.position, self.video.duration)


def _rows(user: User) -> Any:
    """`user`'s resume points of videos they may see, newest first."""
    return WatchProgress.filter(
        user_id=user.id, video_id__in=Subquery(visible_to(user).values("id"))
    ).order_by("-updated_at", "-id")


async def history(user: User, page: int, page_size: int) -> tuple[list[Watched], Page]:
    """One numbered page of `user`'s history, newest first."""
    query = _rows(user)
    total = await query.count()
    rows = (
        await query.offset((page - 1) * page_size).limit(page_size).prefetch_related("video__owner")
    )
    entries = [Watched(row.video, row.position, row.updated_at) for row in rows]
    return entries, Page(
        items=[e.video for e in entries], total=total, page=page, page_size=page_size
    )


async def continue_watching(user: User, size: int) -> list[Watched]:
    """The videos `user` started and did not finish, newest first, at most `size`."""
    rows = await _rows(user).limit(CONTINUE_LOOKS_AT).prefetch_related("video__owner")
    entries = [
        Watched(row.video, row.position, row.updated_at)
        for row in rows
        if row.video.status in PLAYABLE and row.position > 0
    ]
    return [entry for entry in entries if not entry.finished][:size]


async def remove(user: User, video_id: Any) -> bool:
    """Forget `user`'s entry (and resume point) of one video; whether there was one.

    The same answer whether or not they may still see the video: it is their own row.
    """
    return bool(await WatchProgress.filter(user_id=user.id, video_id=video_id).delete())


async def clear(user: User) -> int:
    """Forget `user`'s whole history and every resume point; how many entries went."""
    return await WatchProgress.filter(user_id=user.id).delete()


async def entries_json(
    plugins: PluginHost, entries: list[Watched], viewer: User
) -> list[dict[str, Any]]:
    """Each entry as the video's JSON in lists, with `position`, `watchedAt`, `finished`."""
    listed = await likes.add_counts([e.video for e in entries], viewer)
    shown = await filtered_list(plugins, listed, viewer)
    return [
        data
        | {
            "position": entry.position,
            "watchedAt": entry.watched_at.isoformat(),
            "finished": entry.finished,
        }
        for data, entry in zip(shown, entries, strict=True)
    ]
