"""Playlists: a person's own ordered lists of videos, shown to whom they choose.

Who may open a playlist is its `audience`: the owner alone (`private`), the people of
the owner's category when it was set (`category`), or anyone signed in
(`signed_in`). Anyone else is answered 404, as if it did not exist. Opening a
playlist never shows a video the visibility rule hides: each item is read through
`services.videos.visible_to` for the person looking, and the ones they may not see
are simply left out (the count says how many they can watch). Only the owner changes
a playlist; adding a video needs the owner to see it at that moment.

Nothing of a playlist is cached; each change still says `cache.stale` with the tag
`playlist:<id>`, so a cache of playlists added later has its invalidation already.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from clipsync import cache
from clipsync.errors import Conflict, NotFound, ValidationFailed
from clipsync.models import Playlist, PlaylistAudience, PlaylistItem, User, Video
from clipsync.services.videos import ALL, get_visible, visible_to
from clipsync.text_rules import clean_field

MAX_TITLE = 200
MAX_DESCRIPTION = 2000
# Enough for any real list, and a bound on what one page of a playlist reads.
MAX_ITEMS = 500
MAX_PLAYLISTS = 200
AUDIENCES = [str(a) for a in PlaylistAudience]


def playlist_tag(playlist_id: Any) -> str:
    return f"playlist:{playlist_id}"


def may_open(user: User, playlist: Playlist) -> bool:
    """Whether `user` may open `playlist` (see the module docstring)."""
    if playlist.owner_id == user.id:
        return True
    if playlist.audience == PlaylistAudience.SIGNED_IN:
        return True
    return playlist.audience == PlaylistAudience.CATEGORY and playlist.category == user.category


@dataclass(frozen=True)
class Opened:
    """A playlist as one person sees it: the videos they may watch, in order."""

    playlist: Playlist
    videos: list[Video]
    # Items in the playlist, whether this person may see them or not.
    total: int


def _id(value: Any) -> int:
    text = str(value).strip() if value is not None else ""
    # Within the column's integers: a larger one cannot name a playlist.
    if text.isascii() and text.isdigit() and len(text) <= 10 and int(text) < 2**31:
        return int(text)
    raise NotFound("There is no such playlist.")


async def opened_by(user: User, playlist_id: Any) -> Playlist:
    """The playlist if `user` may open it; NotFound otherwise."""
    playlist = await Playlist.get_or_none(id=_id(playlist_id))
    if playlist is None or not may_open(user, playlist):
        raise NotFound("There is no such playlist.")
    return playlist


async def owned_by(user: User, playlist_id: Any) -> Playlist:
    """The playlist if `user` owns it; NotFound otherwise (even when they may open it)."""
    playlist = await Playlist.get_or_none(id=_id(playlist_id), owner_id=user.id)
    if playlist is None:
        raise NotFound("There is no such playlist.")
    return playlist


def _details(changes: dict[str, Any], owner: User, playlist: Playlist | None) -> dict[str, Any]:
    """The checked `title`, `description` and `audience` of `changes`, as columns."""
    unknown = sorted(set(changes) - {"title", "description", "audience"})
    if unknown:
        raise ValidationFailed(
            f"A playlist has a title, a description and an audience, not {', '.join(unknown)}.",
            field=unknown[0],
        )
    values: dict[str, Any] = {}
    if "title" in changes or playlist is None:
        title = changes.get("title")
        if not isinstance(title, str) or not title.strip():
            raise ValidationFailed("Give the playlist a title.", field="title")
        title = clean_field(title.strip(), field="title", what="Titles")
        if len(title) > MAX_TITLE:
            raise ValidationFailed(f"Titles can be at most {MAX_TITLE} characters.", field="title")
        values["title"] = title
    if "description" in changes:
        description = changes["description"] or ""
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise ValidationFailed(
                f"The description is text of at most {MAX_DESCRIPTION} characters.",
                field="description",
            )
        values["description"] = clean_field(
            description.strip(), field="description", what="Descriptions", multiline=True
        )
    if "audience" in changes:
        audience = changes["audience"]
        if audience not in AUDIENCES:
            raise ValidationFailed(f"audience is one of {', '.join(AUDIENCES)}.", field="audience")
        values["audience"] = PlaylistAudience(audience)
        # "category" means the owner's category as it is when they choose it.
        values["category"] = owner.category if audience == PlaylistAudience.CATEGORY else None
    return values


async def create(owner: User, changes: dict[str, Any]) -> Playlist:
    values = _details(changes, owner, None)
    if await Playlist.filter(owner_id=owner.id).count() >= MAX_PLAYLISTS:
        raise Conflict(f"You can have at most {MAX_PLAYLISTS} playlists: delete one first.")
    return await Playlist.create(owner_id=owner.id, **values)


async def update(owner: User, playlist_id: Any, changes: dict[str, Any]) -> Playlist:
    playlist = await owned_by(owner, playlist_id)
    if not changes:
        raise ValidationFailed("Send a new title, description or audience.", field="title")
    values = _details(changes, owner, playlist)
    playlist.update_from_dict(values)
    await playlist.save()
    await cache.stale([playlist_tag(playlist.id)])
    return playlist


async def delete(owner: User, playlist_id: Any) -> None:
    playlist = await owned_by(owner, playlist_id)
    await playlist.delete()
    await cache.stale([playlist_tag(playlist.id)])


async def own(owner: User) -> list[tuple[Playlist, int]]:
    """The person's playlists, most recently changed first, with how many items each has."""
    playlists = (
        await Playlist.filter(owner_id=owner.id)
        .order_by("-updated_at", "-id")
        .limit(MAX_PLAYLISTS)
        .annotate(items_count=Count("items"))
    )
    return [(p, int(getattr(p, "items_count", 0) or 0)) for p in playlists]


async def open_playlist(user: User, playlist_id: Any) -> Opened:
    """The playlist and the videos of it `user` may watch, in order (404 if they may
    not open it)."""
    playlist = await opened_by(user, playlist_id)
    ids = (
        await PlaylistItem.filter(playlist_id=playlist.id)
        .order_by("position", "id")
        .limit(MAX_ITEMS)
        .values_list("video_id", flat=True)
    )
    seen = {
        str(video.id): video
        for video in await visible_to(user, ALL).filter(id__in=list(ids)).prefetch_related("owner")
    }
    videos = [seen[str(video_id)] for video_id in ids if str(video_id) in seen]
    return Opened(playlist=playlist, videos=videos, total=len(ids))


async def add(owner: User, playlist_id: Any, video_id: Any) -> PlaylistItem:
    """Put a video the owner may see at the end of their playlist."""
    playlist = await owned_by(owner, playlist_id)
    video = await get_visible(owner, video_id)
    async with in_transaction():
        count = await PlaylistItem.filter(playlist_id=playlist.id).count()
        if count >= MAX_ITEMS:
            raise Conflict(f"A playlist holds at most {MAX_ITEMS} videos.")
        last = await PlaylistItem.filter(playlist_id=playlist.id).order_by("-position").first()
        try:
            item = await PlaylistItem.create(
                playlist_id=playlist.id,
                video_id=video.id,
                position=(last.position if last else 0) + 1,
            )
        except IntegrityError:
            raise Conflict("This video is already in the playlist.") from None
    await _touched(playlist)
    return item


async def remove(owner: User, playlist_id: Any, video_id: Any) -> None:
    playlist = await owned_by(owner, playlist_id)
    try:
        key = uuid.UUID(str(video_id))
    except ValueError:
        raise NotFound("This video is not in the playlist.") from None
    removed = await PlaylistItem.filter(playlist_id=playlist.id, video_id=key).delete()
    if not removed:
        raise NotFound("This video is not in the playlist.")
    await _touched(playlist)


async def reorder(owner: User, playlist_id: Any, video_ids: Any) -> Playlist:
    """Put the named items first, in that order; the others follow as they were.

    The owner names the videos they see; an item they can no longer see keeps its place
    after those rather than being lost.
    """
    playlist = await owned_by(owner, playlist_id)
    if not isinstance(video_ids, list) or not all(isinstance(v, str) for v in video_ids):
        raise ValidationFailed(
            "videoIds is the list of the playlist's video ids.", field="videoIds"
        )
    items = await PlaylistItem.filter(playlist_id=playlist.id).order_by("position", "id")
    by_video = {str(item.video_id): item for item in items}
    named = [v.strip().lower() for v in video_ids]
    if len(set(named)) != len(named) or not set(named) <= set(by_video):
        raise ValidationFailed(
            "videoIds names each video of the playlist at most once, and no other.",
            field="videoIds",
        )
    order = [by_video[v] for v in named] + [i for v, i in by_video.items() if v not in named]
    async with in_transaction():
        for position, item in enumerate(order, start=1):
            if item.position != position:
                await PlaylistItem.filter(id=item.id).update(position=position)
    await _touched(playlist)
    return playlist


async def _touched(playlist: Playlist) -> None:
    await playlist.save(update_fields=["updated_at"])
    await cache.stale([playlist_tag(playlist.id)])


async def next_in(user: User, playlist_id: Any, video_id: Any) -> dict[str, Any] | None:
    """Where `video_id` is in the playlist for `user`, and what plays after it: None when
    they may not open the playlist or the video is not one they see in it."""
    try:
        opened = await open_playlist(user, playlist_id)
    except NotFound:
        return None
    ids = [str(video.id) for video in opened.videos]
    if str(video_id) not in ids:
        return None
    at = ids.index(str(video_id))
    following = opened.videos[at + 1] if at + 1 < len(ids) else None
    return {
        "id": opened.playlist.id,
        "title": opened.playlist.title,
        "position": at + 1,
        "count": len(ids),
        "next": {"id": str(following.id), "title": following.title} if following else None,
    }


def playlist_json(playlist: Playlist, count: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": playlist.id,
        "title": playlist.title,
        "description": playlist.description,
        "audience": str(playlist.audience),
        "category": playlist.category,
        "ownerId": playlist.owner_id,
        "createdAt": playlist.created_at.isoformat() if playlist.created_at else None,
        "updatedAt": playlist.updated_at.isoformat() if playlist.updated_at else None,
    }
    if count is not None:
        data["videoCount"] = count
    return data
