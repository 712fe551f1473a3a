"""Comments on videos: threaded one level, edited and deleted by their author, moderated.

A comment follows its video's visibility rule (`videos.get_visible`): whoever may not
see the video gets 404 for its comments too, exactly as for a video that does not
exist. A hidden comment is kept for the audit trail but shown only to those who may
moderate the video, and to everyone else it does not exist either.

A reply to a reply is attached to the top-level comment it answers: the thread stays
one level deep, and the person replying is not refused for clicking "reply" on the
wrong line.

Bodies are a small markdown subset, stored as written and rendered on the way out
(`rich_text.comment_html`), so a fix to the sanitiser applies to every old comment.

A video's JSON carries how many comments everyone sees, kept in the cache
(services/likes.py): each write that changes it (a comment posted, deleted, hidden or
shown again) invalidates `comments:<video>`; an edit or comments turned off leave it
as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from clipsync import cache, events
from clipsync.errors import Forbidden, NotFound, TooManyRequests, ValidationFailed
from clipsync.models import Comment, User, Video
from clipsync.rich_text import comment_html
from clipsync.services.likes import comments_tag
from clipsync.services.moderation import record
from clipsync.services.videos import can_moderate, get_visible, page_numbers
from clipsync.text_rules import clean_field

if TYPE_CHECKING:
    from clipsync.plugins import PluginHost

MAX_BODY = 5000
# At most this many comments per person per `RATE_WINDOW`: enough for a conversation,
# too few for a flood. Counted from the comments table, so it holds across processes.
RATE_LIMIT = 10
RATE_WINDOW = timedelta(minutes=1)
ORDERS = {"newest": ("-created_at", "-id"), "oldest": ("created_at", "id")}


@dataclass(frozen=True)
class Thread:
    """One page of a video's top-level comments, each with all its replies."""

    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int
    order: str


def clean_body(body: Any) -> str:
    """The body as stored: text, not blank, within `MAX_BODY`, nothing invisible."""
    if not isinstance(body, str) or not body.strip():
        raise ValidationFailed("Write something first: body must be non-empty text.", field="body")
    body = clean_field(body.strip(), field="body", what="Comments", multiline=True)
    if len(body) > MAX_BODY:
        raise ValidationFailed(
            f"Comments are limited to {MAX_BODY} characters; this one has {len(body)}.",
            field="body",
        )
    return body


def author_name(author: User | None) -> str:
    if author is None:
        return "Deleted account"
    return author.display_name or author.email.split("@", 1)[0]


def comment_json(
    comment: Comment, authors: dict[int, User], viewer: User, moderator: bool
) -> dict[str, Any]:
    """What the API shows of a comment; `hidden` only to moderators, who alone see it."""
    mine = comment.author_id is not None and comment.author_id == viewer.id
    data: dict[str, Any] = {
        "id": comment.id,
        "parentId": comment.parent_id,
        "authorId": comment.author_id,
        "authorName": author_name(authors.get(comment.author_id or 0)),
        "body": comment.body,
        "html": comment_html(comment.body),
        "createdAt": comment.created_at.isoformat(),
        "editedAt": comment.edited_at.isoformat() if comment.edited_at else None,
        "mine": mine,
        "canEdit": mine,
        "canDelete": mine or moderator,
        "canHide": moderator,
    }
    if moderator:
        data["hidden"] = comment.hidden_at is not None
    return data


async def authors_of(comments: list[Comment]) -> dict[int, User]:
    ids = {c.author_id for c in comments if c.author_id is not None}
    return {u.id: u for u in await User.filter(id__in=ids)} if ids else {}


async def thread(user: User, video: Video, order: Any, page: Any, page_size: Any) -> Thread:
    """A page of top-level comments with their replies: three queries whatever the page."""
    order = order or "newest"
    if order not in ORDERS:
        raise ValidationFailed("order is newest or oldest.", field="order")
    number, size = page_numbers(page, page_size)
    moderator = can_moderate(user, video)
    shown = Comment.filter(video_id=video.id)
    if not moderator:
        shown = shown.filter(hidden_at__isnull=True)
    top = shown.filter(parent_id__isnull=True)
    total = await top.count()
    parents = await top.order_by(*ORDERS[order]).offset((number - 1) * size).limit(size)
    replies = (
        await shown.filter(parent_id__in=[p.id for p in parents]).order_by("created_at", "id")
        if parents
        else []
    )
    authors = await authors_of([*parents, *replies])
    items = []
    for parent in parents:
        item = comment_json(parent, authors, user, moderator)
        item["replies"] = [
            comment_json(r, authors, user, moderator) for r in replies if r.parent_id == parent.id
        ]
        items.append(item)
    return Thread(items, total, number, size, order)


async def one(user: User, comment: Comment, video: Video) -> dict[str, Any]:
    """One comment as `user` sees it (a live page's news, an answer to a write)."""
    return comment_json(comment, await authors_of([comment]), user, can_moderate(user, video))


async def _rate_limit(user: User) -> None:
    since = datetime.now(UTC) - RATE_WINDOW
    recent = (
        await Comment.filter(author_id=user.id, created_at__gte=since)
        .order_by("-created_at")
        .limit(RATE_LIMIT)
        .values_list("created_at", flat=True)
    )
    if len(recent) >= RATE_LIMIT:
        oldest: datetime = min(recent)  # type: ignore[type-var]
        wait = max(1, math.ceil((oldest + RATE_WINDOW - datetime.now(UTC)).total_seconds()))
        raise TooManyRequests(
            f"You can post at most {RATE_LIMIT} comments a minute. Try again in {wait} s.",
            retry_after=wait,
        )


async def post(
    user: User,
    video_id: Any,
    body: Any,
    parent_id: Any = None,
    *,
    plugins: PluginHost | None = None,
) -> tuple[Comment, Video]:
    """A new comment (or reply) by `user`; once it is stored, the plugins'
    `comment_posted` hook runs here (once, in this process) and `comment.posted` goes
    out on the bus."""
    video = await get_visible(user, video_id)
    if not video.comments_enabled:
        raise Forbidden("Comments are turned off for this video.")
    text = clean_body(body)
    parent = None
    if parent_id is not None:
        if isinstance(parent_id, bool) or not isinstance(parent_id, int):
            raise ValidationFailed("parentId must be a comment's id.", field="parentId")
        parent = await Comment.get_or_none(id=parent_id, video_id=video.id)
        if parent is None or (parent.hidden_at is not None and not can_moderate(user, video)):
            raise ValidationFailed("The comment to reply to is not there.", field="parentId")
    await _rate_limit(user)
    comment = await Comment.create(
        video_id=video.id,
        author_id=user.id,
        # One level only: a reply to a reply answers the same top-level comment.
        parent_id=(parent.parent_id or parent.id) if parent else None,
        body=text,
    )
    await cache.stale([comments_tag(video.id)])
    if plugins is not None:
        await plugins.notify("comment_posted", comment=comment, video=video, author=user)
    await events.publish(
        "comment.posted", videoId=str(video.id), commentId=comment.id, authorId=user.id
    )
    return comment, video


async def get_shown(user: User, comment_id: int) -> tuple[Comment, Video]:
    """The comment and its video, if `user` may see both; `NotFound` otherwise."""
    comment = await Comment.get_or_none(id=comment_id)
    if comment is None:
        raise NotFound("There is no such comment.")
    try:
        video = await get_visible(user, comment.video_id)
    except NotFound:
        raise NotFound("There is no such comment.") from None
    if comment.hidden_at is not None and not can_moderate(user, video):
        raise NotFound("There is no such comment.")
    return comment, video


async def edit(user: User, comment_id: int, body: Any) -> tuple[Comment, Video]:
    """The author rewrites their comment; it says it was edited."""
    comment, video = await get_shown(user, comment_id)
    if comment.author_id != user.id:
        raise Forbidden("Only its author can edit a comment.")
    comment.body = clean_body(body)
    comment.edited_at = datetime.now(UTC)
    await comment.save(update_fields=["body", "edited_at"])
    return comment, video


async def delete(user: User, comment_id: int) -> None:
    """The author, or a moderator of the video (audited), deletes a comment and its replies."""
    comment, video = await get_shown(user, comment_id)
    own = comment.author_id == user.id
    if not own and not can_moderate(user, video):
        raise Forbidden("Only its author or a moderator can delete a comment.")
    if not own:
        await record(
            user,
            "comment.deleted",
            video=video,
            commentId=comment.id,
            authorId=comment.author_id,
            body=comment.body[:500],
        )
    await Comment.filter(parent_id=comment.id).delete()
    await comment.delete()
    await cache.stale([comments_tag(video.id)])


async def set_hidden(user: User, comment_id: int, hidden: bool) -> tuple[Comment, Video]:
    """A moderator hides a comment from everyone else, or shows it again (audited)."""
    comment, video = await get_shown(user, comment_id)
    if not can_moderate(user, video):
        raise Forbidden("Only a moderator of this video can hide comments.")
    if (comment.hidden_at is not None) != hidden:
        comment.hidden_at = datetime.now(UTC) if hidden else None
        comment.hidden_by_id = user.id if hidden else None  # type: ignore[attr-defined]
        await comment.save(update_fields=["hidden_at", "hidden_by_id"])
        await cache.stale([comments_tag(video.id)])
        await record(
            user,
            "comment.hidden" if hidden else "comment.unhidden",
            video=video,
            commentId=comment.id,
            authorId=comment.author_id,
        )
    return comment, video


async def set_enabled(user: User, video_id: Any, enabled: Any) -> Video:
    """The uploader or a moderator turns comments on or off for a video (audited)."""
    if not isinstance(enabled, bool):
        raise ValidationFailed("enabled is true or false.", field="enabled")
    video = await get_visible(user, video_id)
    if video.owner_id != user.id and not can_moderate(user, video):
        raise Forbidden("Only the uploader or a moderator can turn comments on or off.")
    if video.comments_enabled != enabled:
        video.comments_enabled = enabled
        await video.save(update_fields=["comments_enabled"])
        await record(user, "comments.enabled" if enabled else "comments.disabled", video=video)
    return video
