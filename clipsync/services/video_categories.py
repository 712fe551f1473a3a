"""Publishing a video to several categories.

A video starts in its uploader's (primary) category, `Video.category`; moving it is
moderation's (services/moderation.py `move`). Besides it, a video may be published to
other categories (`VideoCategory`), where it is seen once approved, like a video of
that category (the rule in services/videos.py, `PUBLISHED_TO`):

- its uploader may add the categories they belong to themselves, and take away any;
- a moderator of the video (`videos.can_moderate`) may add and take away the
  categories they manage: an editor their own categories, an admin any.

Anyone else gets 404 (services/grants.py `manageable`). Each change is audited and
publishes `video.categories_changed`, which drops the video's cached audience and the
lists (clipsync/cache).
"""

from __future__ import annotations

from typing import Any

from clipsync import events
from clipsync.errors import Forbidden
from clipsync.models import Role, User, Video, VideoCategory
from clipsync.services import video_audience
from clipsync.services.grants import manageable
from clipsync.services.memberships import categories_of, parse_categories
from clipsync.services.moderation import record
from clipsync.settings import Settings


def may_add(actor: User, category: str) -> bool:
    """Whether `actor` may publish a video they manage to `category`."""
    return actor.role == Role.ADMIN or category in categories_of(actor)


def may_remove(actor: User, video: Video, category: str) -> bool:
    """Whether `actor` may take `video` out of `category` (its uploader: any)."""
    return video.owner_id == actor.id or may_add(actor, category)


def choices_json(settings: Settings, actor: User, video: Video) -> dict[str, Any]:
    """The video's categories, and each configured one with what `actor` may do to it."""
    current = video_audience.categories_of(video)
    return {
        "categories": current,
        "primary": video.category,
        "choices": [
            {
                "name": c.name,
                "label": c.label,
                "selected": c.name in current,
                "primary": c.name == video.category,
                "editable": c.name != video.category
                and (
                    may_remove(actor, video, c.name)
                    if c.name in current
                    else may_add(actor, c.name)
                ),
            }
            for c in settings.categories
        ],
    }


async def categories_for(actor: User, video_id: Any) -> Video:
    """The video (its audience loaded), if `actor` uploaded or moderates it."""
    video = await manageable(actor, video_id)
    await video_audience.attach([video])
    return video


async def publish_to(settings: Settings, actor: User, video_id: Any, value: Any) -> Video:
    """Publish the video to exactly the categories `value` lists (its primary category
    always stays, listed or not)."""
    video = await categories_for(actor, video_id)
    wanted = set(parse_categories(settings, value)) - {video.category}
    old = set(video_audience.categories_of(video)) - {video.category}
    added, removed = sorted(wanted - old), sorted(old - wanted)
    refused = [c for c in added if not may_add(actor, c)]
    refused += [c for c in removed if not may_remove(actor, video, c)]
    if refused:
        mine = ", ".join(categories_of(actor))
        raise Forbidden(
            f"You cannot change whether this video is in {refused[0]}: you may publish "
            f"only to the categories you belong to ({mine})."
        )
    if not added and not removed:
        return video
    if removed:
        await VideoCategory.filter(video_id=video.id, category__in=removed).delete()
    for name in added:
        await VideoCategory.get_or_create(
            video_id=video.id, category=name, defaults={"added_by": actor}
        )
    new = sorted(wanted)
    await record(actor, "video_categories", video=video, old=sorted(old), new=new)
    await events.publish_video("video.categories_changed", video, categories=[video.category, *new])
    video.audience = video_audience.Audience(
        extra=tuple(new), grants=getattr(video_audience.audience_of(video), "grants", {})
    )
    return video
