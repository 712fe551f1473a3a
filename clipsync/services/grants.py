"""Per-video grants: a video shared with named people, whatever their category.

The uploader of a video or one of its moderators (`videos.can_moderate`) grants it to a
person (by id or email), until a time or until the grant is removed; anyone else gets
404, as for a video they may not see. The person then sees the video, once approved,
as if it were in their category (the rule in services/videos.py, `GRANTED_TO`), and is
told so (a `video.shared` event: the notification of that type). A grant gives nothing
once it has expired, nor to a deactivated account; a grant for an account that is
deactivated already is refused.

Every grant and removal is audited, publishes a `video.*` event (the video's cached
audience and the lists drop, see clipsync/cache) and makes the grantee's cached
memberships stale (`user:<id>`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from clipsync import cache, events
from clipsync.errors import NotFound, ValidationFailed
from clipsync.models import User, Video, VideoGrant, VideoStatus
from clipsync.services.accounts import normalize_email
from clipsync.services.moderation import record
from clipsync.services.video_audience import granted_head
from clipsync.services.videos import (
    GRANTED_TO,
    Page,
    can_moderate,
    get_visible,
    in_order,
)

# The largest id of a row with an integer key (PostgreSQL `integer`).
MAX_ROW_ID = 2**31 - 1
NO_GRANT = "There is no such grant."


async def manageable(user: User, video_id: Any) -> Video:
    """The video if `user` uploaded it or may moderate it; NotFound otherwise, even when
    they may see it (who it is shared with is theirs to decide, and to know)."""
    video = await get_visible(user, video_id)
    if video.owner_id != user.id and not can_moderate(user, video):
        raise NotFound("There is no such video.")
    return video


def grant_json(grant: VideoGrant, person: User | None) -> dict[str, Any]:
    """What the API shows of a grant, with the person it names."""
    now = datetime.now(UTC)
    return {
        "id": grant.id,
        "videoId": str(grant.video_id),
        "userId": grant.user_id,
        "email": person.email if person else None,
        "displayName": (person.display_name or person.email) if person else None,
        "until": grant.until.isoformat() if grant.until else None,
        "createdAt": grant.created_at.isoformat() if grant.created_at else None,
        "grantedBy": grant.granted_by_id,
        # Whether it gives anything now: not expired, and the account is active.
        "active": bool(person and person.is_active and (grant.until is None or grant.until > now)),
        "state": grant_state(grant, person, now),
    }


def grant_state(grant: VideoGrant, person: User | None, now: datetime | None = None) -> str:
    """ "active", "expired" (its `until` has passed) or "inactive" (the account is
    deactivated or gone). An expired grant stays listed, saying so, until it is removed
    or granted again with a new end: the video's uploader sees who it was shared with
    and can renew it, where a grant that vanished would look like one never made."""
    if grant.until is not None and grant.until <= (now or datetime.now(UTC)):
        return "expired"
    return "active" if person is not None and person.is_active else "inactive"


async def _grantee(body: dict[str, Any]) -> User:
    named = [key for key in ("userId", "email") if body.get(key) not in (None, "")]
    if len(named) != 1:
        raise ValidationFailed("Name the person: send either userId or email.", field="userId")
    if named == ["userId"]:
        value = body["userId"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationFailed("userId is the person's id, a whole number.", field="userId")
        person = await User.get_or_none(id=value) if 1 <= value <= MAX_ROW_ID else None
        if person is None:
            raise ValidationFailed("There is no account with that id.", field="userId")
    else:
        address = normalize_email(body["email"])
        person = await User.get_or_none(email=address)
        if person is None:
            raise ValidationFailed(f"There is no account for {address}.", field="email")
    if not person.is_active:
        raise ValidationFailed(
            "That account is deactivated: a grant would give it nothing.",
            field=named[0],
        )
    return person


def parse_until(value: Any, now: datetime | None = None) -> datetime | None:
    """`until`: null, or an ISO 8601 time in the future (UTC when it names no offset)."""
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        until = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed(
            "until is a date and time such as 2026-12-31T18:00:00Z, or null for no end.",
            field="until",
        ) from None
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    # Kept in UTC: SQLite compares the stored text, and a row saved with another offset
    # ("…+05:00") would sort after the present hours after it had passed.
    until = until.astimezone(UTC)
    if until <= (now or datetime.now(UTC)):
        raise ValidationFailed("until must be in the future.", field="until")
    return until


async def grant(actor: User, video_id: Any, body: dict[str, Any]) -> tuple[VideoGrant, bool]:
    """Share the video with one person; (the grant, whether it is new). Granting the
    same person again changes the grant's end."""
    video = await manageable(actor, video_id)
    unknown = sorted(set(body) - {"userId", "email", "until"})
    if unknown:
        raise ValidationFailed(
            f"Unknown field {unknown[0]!r}: send userId or email, and until.", field=unknown[0]
        )
    person = await _grantee(body)
    until = parse_until(body.get("until"))
    if person.id == video.owner_id:
        raise ValidationFailed("This person uploaded the video: they see it already.")
    found, created = await VideoGrant.get_or_create(
        video_id=video.id, user_id=person.id, defaults={"until": until, "granted_by": actor}
    )
    if not created:
        found.until = until
        found.granted_by = actor
        await found.save(update_fields=["until", "granted_by_id"])
    await record(
        actor, "video_grant", video=video, userId=person.id, email=person.email,
        until=until.isoformat() if until else None,
    )  # fmt: skip
    await _announce("video.shared", video, person.id, grantedBy=actor.id)
    return found, created


async def grants_of(actor: User, video_id: Any) -> list[tuple[VideoGrant, User | None]]:
    """The video's grants, newest first, each with the person it names."""
    video = await manageable(actor, video_id)
    found = await VideoGrant.filter(video_id=video.id).order_by("-created_at", "-id")
    people = {p.id: p for p in await User.filter(id__in=[g.user_id for g in found])}
    return [(g, people.get(g.user_id)) for g in found]


async def remove(actor: User, video_id: Any, grant_id: Any) -> None:
    """End a grant at once."""
    video = await manageable(actor, video_id)
    if not str(grant_id).isdigit() or not 1 <= int(grant_id) <= MAX_ROW_ID:
        raise NotFound(NO_GRANT)
    found = await VideoGrant.get_or_none(id=int(grant_id), video_id=video.id)
    if found is None:
        raise NotFound(NO_GRANT)
    await found.delete()
    await record(actor, "video_grant_remove", video=video, userId=found.user_id)
    await _announce("video.unshared", video, found.user_id, removedBy=actor.id)


async def _announce(name: str, video: Video, user_id: int, **extra: Any) -> None:
    # The video's event drops its cached audience and the lists; the person's tag
    # drops their memberships (whether they have grants) and their grants' head.
    await cache.stale([cache.user_tag(user_id)])
    await events.publish_video(name, video, userId=user_id, **extra)


async def shared_with(user: User, page: int, page_size: int) -> Page:
    """The approved videos granted to `user` that have not expired, newest granted
    video first: the "Shared with me" list."""
    if not user.is_active:
        return Page(items=[], total=0, page=page, page_size=page_size)
    branch = {GRANTED_TO: user.id, "status": str(VideoStatus.APPROVED)}
    ids = [video_id for _, video_id in await granted_head(branch, GRANTED_TO)]
    shown = await in_order(ids[(page - 1) * page_size : page * page_size])
    # Checked once more: a cached head is never trusted to decide.
    shown = [video for video in shown if video.status == VideoStatus.APPROVED]
    return Page(items=shown, total=len(ids), page=page, page_size=page_size)
