"""Videos as people see them: who may see which, listing, detail and resume points.

The visibility rule lives here and only here, so the list, the detail, search, the
HLS files and the progress endpoints can never disagree:

- everyone sees their own uploads, whatever their status;
- everyone sees the APPROVED videos of their own category;
- editors also see every video of their category, whatever its status;
- admins see everything.

A video someone may not see is answered exactly like one that does not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from clipsync.errors import BadRequest, NotFound, ValidationFailed
from clipsync.media.chapters import chapters_json
from clipsync.models import Role, User, Video, VideoStatus, WatchProgress

MAX_PAGE_SIZE = 100
# Far beyond any list ClipSync shows, and small enough that the row offset it means
# fits the database's integers (a larger one was a 500).
MAX_PAGE = 1_000_000


def visible_to(user: User) -> QuerySet[Video]:
    """Every video `user` may see."""
    if user.role == Role.ADMIN:
        return Video.all()
    if user.role == Role.EDITOR:
        return Video.filter(Q(owner_id=user.id) | Q(category=user.category))
    return Video.filter(
        Q(owner_id=user.id) | Q(category=user.category, status=VideoStatus.APPROVED)
    )


def can_moderate(user: User, video: Video) -> bool:
    """Admins moderate every video; editors the videos of their own category."""
    return user.role == Role.ADMIN or (user.role == Role.EDITOR and video.category == user.category)


def managed_by(user: User) -> QuerySet[Video]:
    """Every video `user` uploaded or may moderate (`can_moderate`), as it is now.

    Whose processing details and watch figures they may read.
    """
    if user.role == Role.ADMIN:
        return Video.all()
    if user.role == Role.EDITOR:
        return Video.filter(Q(owner_id=user.id) | Q(category=user.category))
    return Video.filter(owner_id=user.id)


async def get_visible(user: User, video_id: str | uuid.UUID) -> Video:
    """The video, if `user` may see it; `NotFound` otherwise (no existence leak)."""
    try:
        key = uuid.UUID(str(video_id))
    except ValueError:
        raise NotFound("There is no such video.") from None
    video = await visible_to(user).get_or_none(id=key)
    if video is None:
        raise NotFound("There is no such video.")
    return video


@dataclass(frozen=True)
class Page:
    items: list[Video]
    total: int
    page: int
    page_size: int


def page_numbers(page: Any, page_size: Any, default_size: int = 20) -> tuple[int, int]:
    """The `page` and `pageSize` query values; 400 unless whole numbers in range."""
    number = _whole_number(page, 1)
    size = _whole_number(page_size, default_size)
    if number is None or size is None:
        raise BadRequest("page and pageSize must be whole numbers.")
    if not 1 <= number <= MAX_PAGE or not 1 <= size <= MAX_PAGE_SIZE:
        raise BadRequest(
            f"page is between 1 and {MAX_PAGE}; pageSize is between 1 and {MAX_PAGE_SIZE}."
        )
    return number, size


def _whole_number(value: Any, default: int) -> int | None:
    text = str(value).strip() if value is not None else ""
    if not text:
        return default
    # ASCII digits only: int() also takes "1_000", " +5" and other scripts' digits, and
    # fails with ValueError on more than 4300 of them. Twelve are plenty here.
    if text.isascii() and text.isdigit() and len(text) <= 12:
        return int(text)
    return None


async def list_visible(user: User, page: int, page_size: int, mine: bool = False) -> Page:
    query = Video.filter(owner_id=user.id) if mine else visible_to(user)
    total = await query.count()
    items = (
        await query.order_by("-created_at")
        .offset((page - 1) * page_size)
        .limit(page_size)
        .prefetch_related("owner")
    )
    return Page(items=list(items), total=total, page=page, page_size=page_size)


def video_json(video: Video, viewer: User) -> dict[str, Any]:
    """What the API shows of a video; processing details only to its uploader and admins."""
    data: dict[str, Any] = {
        "id": str(video.id),
        "title": video.title,
        "description": video.description,
        "category": video.category,
        "status": str(video.status),
        "duration": video.duration,
        "width": video.width,
        "height": video.height,
        "createdAt": video.created_at.isoformat() if video.created_at else None,
        "ownerId": video.owner_id,
        "playable": video.status in (VideoStatus.READY, VideoStatus.APPROVED),
        "chapters": chapters_json(video.description, video.duration),
    }
    if data["playable"]:
        base = f"/hls/{video.id}"
        data["hls"] = f"{base}/master.m3u8"
        data["poster"] = f"{base}/poster.jpg" if video.poster_key else None
        data["thumbnails"] = f"{base}/thumbnails.vtt" if video.thumbnails_key else None
    if viewer.id == video.owner_id or can_moderate(viewer, video):
        data |= {
            "moderationReason": video.moderation_reason,
            "moderatedAt": video.moderated_at.isoformat() if video.moderated_at else None,
            "progress": video.progress,
            "error": video.error,
            "encoder": video.encoder,
            "originalFilename": video.original_filename,
            "size": video.size,
            "checksum": video.checksum,
            "videoCodec": video.video_codec,
            "audioCodec": video.audio_codec,
            "bitrate": video.bitrate,
        }
    return data


async def progress_of(user: User, video: Video) -> float | None:
    row = await WatchProgress.get_or_none(user_id=user.id, video_id=video.id)
    return row.position if row else None


async def save_progress(user: User, video: Video, position: Any) -> float:
    """Keep where `user` stopped watching `video`, to resume from there."""
    if isinstance(position, bool) or not isinstance(position, int | float):
        raise ValidationFailed("position must be a number of seconds.", field="position")
    limit = video.duration or 0
    if position < 0 or (limit and position > limit + 1):
        raise ValidationFailed(
            f"position must be between 0 and {limit:.0f} seconds.", field="position"
        )
    position = float(min(position, limit) if limit else position)
    await WatchProgress.update_or_create(
        user_id=user.id, video_id=video.id, defaults={"position": position}
    )
    return position
