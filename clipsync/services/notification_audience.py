"""Who hears what from a domain event: the messages an event makes, one per person.

- The uploader: their video is ready, failed (with the reason), approved, rejected
  (with the reason), moved.
- Editors of the video's category and all admins: a video awaits a decision (when it
  becomes READY); email for it is batched into a digest (see `notification_types`).
- Members of the category: a new video was approved in it (not its uploader).
- The person themselves, always: their password changed, a sign-in from a new
  device, their role or category changed, their email address changed.
- Admins: a transcode failed for good; storage or disk space is nearly full; a
  scheduled backup failed.
- The author of a comment that was answered, and the people an `@name` in a new
  comment names, if they may see the video.
- The person a video was shared with by name (`video.shared`, services/grants.py).

Whether each person gets each message on each channel is their preference
(`notification_types.wants`), decided when it is delivered.
"""

from __future__ import annotations

import re
from typing import Any

from tortoise.expressions import Q

from clipsync.events import Event
from clipsync.models import Comment, Role, User, Video
from clipsync.services.memberships import attach as attach_memberships
from clipsync.services.notification_types import Message
from clipsync.services.videos import visible_to


def _name(video: Video) -> str:
    return f"“{video.title or video.original_filename or 'Untitled'}”"


def _message(user_id: int, kind: str, title: str, body: str, url: str, **extra: Any) -> Message:
    return Message(user_id, kind, title[:200], body, url, **extra)


async def _active(query: Q) -> list[int]:
    return list(await User.filter(query, is_active=True).values_list("id", flat=True))


async def moderators_of(category: str) -> list[int]:
    """Active admins, and the active editors of `category`."""
    return await _active(Q(role=Role.ADMIN) | Q(role=Role.EDITOR, category=category))


async def admins() -> list[int]:
    return await _active(Q(role=Role.ADMIN))


def uploader_message(event: Event, video: Video) -> Message | None:
    """The uploader's message for a video event, or None when it tells them nothing."""
    name = _name(video)
    watch = f"/watch/{video.id}"
    if event.name == "video.ready":
        title, body, url = f"{name} is ready", "It has been processed and can be watched.", watch
    elif event.name == "video.failed":
        # FAILED is set only when the last attempt failed: this failure is for good.
        reason = (video.error or "the file could not be processed").strip()
        title, body, url = f"{name} could not be processed", f"Reason: {reason}", "/videos"
    elif event.name == "video.approved":
        title, body, url = f"{name} was approved", "It is now visible to its category.", watch
    elif event.name == "video.rejected":
        reason = (video.moderation_reason or "no reason was given").strip()
        title, body, url = f"{name} was rejected", f"Reason: {reason}", "/videos"
    elif event.name == "video.moved":
        old = event.data.get("oldCategory") or "its category"
        title = f"{name} was moved"
        body, url = f"It moved from {old} to {video.category}.", watch
    else:
        return None
    return _message(video.owner_id, event.name, title, body, url, video_id=video.id)


async def video_messages(event: Event, video: Video) -> list[Message]:
    """Every message a `video.*` event makes."""
    messages = []
    mine = uploader_message(event, video)
    if mine is not None:
        messages.append(mine)
    name = _name(video)
    if event.name == "video.ready":
        for user_id in await moderators_of(video.category):
            if user_id != video.owner_id:
                messages.append(
                    _message(
                        user_id, "video.awaiting", f"{name} awaits a decision",
                        f"Uploaded to {video.category}; approve or reject it in the queue.",
                        "/admin", video_id=video.id,
                    )
                )  # fmt: skip
    elif event.name == "video.approved":
        members = await _active(Q(category=video.category) & ~Q(id=video.owner_id))
        for user_id in members:
            messages.append(
                _message(
                    user_id, "video.published", f"New in {video.category}: {name}",
                    (video.description or "").strip()[:300], f"/watch/{video.id}",
                    video_id=video.id,
                )
            )  # fmt: skip
    elif event.name == "video.shared" and isinstance(event.data.get("userId"), int):
        sharer = await User.get_or_none(id=event.data.get("grantedBy"))
        who = (sharer.display_name or sharer.email) if sharer else "Someone"
        messages.append(
            _message(
                event.data["userId"], "video.shared", f"{who} shared {name} with you",
                (video.description or "").strip()[:300] if str(video.status) == "APPROVED"
                else "You can watch it once it is approved.", f"/watch/{video.id}",
                video_id=video.id,
            )
        )  # fmt: skip
    elif event.name == "video.failed":
        # FAILED is set only when the last attempt failed: this failure is for good.
        reason = (video.error or "the file could not be processed").strip()
        for user_id in await admins():
            messages.append(
                _message(
                    user_id, "admin.transcode_failed", f"Transcoding {name} failed",
                    f"Every attempt failed. Reason: {reason}", "/admin",
                    video_id=video.id,
                )
            )  # fmt: skip
    return messages


def account_message(event: Event) -> Message | None:
    """The security message of an `account.*` event, for the person it concerns."""
    user_id = event.data.get("userId")
    if not isinstance(user_id, int):
        return None
    if event.name == "account.password_changed":
        title = "Your password was changed"
        body = "If this was not you, ask an administrator to lock the account at once."
    elif event.name == "account.two_factor_changed":
        if event.data.get("enabled"):
            title = "Two-factor sign-in was turned on"
            body = "Signing in now also asks for a code from your authenticator app."
        else:
            title = "Two-factor sign-in was turned off"
            body = "Signing in now asks only for your password."
        body += " If this was not you, change your password and tell an administrator."
    elif event.name == "account.new_sign_in":
        device = event.data.get("device") or "an unknown browser"
        address = event.data.get("address") or "an unknown address"
        title = "New sign-in to your account"
        body = (
            f"Someone signed in with {device} from {address}. If this was not you, "
            "change your password and tell an administrator."
        )
    elif event.name == "account.access_changed":
        parts = []
        if "role" in event.data:
            parts.append(f"your role is now {event.data['role']}")
        if "category" in event.data:
            parts.append(f"your category is now {event.data['category']}")
        if isinstance(event.data.get("categories"), list):
            parts.append(f"your categories are now {', '.join(event.data['categories'])}")
        if "active" in event.data and not event.data["active"]:
            parts.append("your account was deactivated")
        title = "Your access was changed"
        body = (("An administrator changed your account: " + "; ".join(parts) + ".") if parts
                else "An administrator changed your account.")  # fmt: skip
        body += " You were signed out everywhere."
    elif event.name == "account.email_changed":
        # The old address hears it by mail from services/profiles.py: it is no longer
        # the account's, so no message to the person reaches it.
        title = "Your email address was changed"
        body = "If this was not you, tell an administrator at once."
    else:
        return None
    return _message(user_id, event.name, title, body, "/")


# The admins' alerts: each event's title; its `detail` says what was found.
ALERT_TITLES = {
    "admin.storage_low": ("Storage is nearly full", "/admin"),
    "admin.backup_failed": ("The scheduled backup failed", "/admin"),
}


async def admin_alert_messages(event: Event) -> list[Message]:
    """An `admin.*` alert (storage nearly full, a failed backup): every admin hears it."""
    if event.name not in ALERT_TITLES:
        return []
    title, url = ALERT_TITLES[event.name]
    detail = str(event.data.get("detail") or title)
    return [_message(user_id, event.name, title, detail, url) for user_id in await admins()]


# `@name`: an email's local part or a display name written without spaces.
MENTION = re.compile(r"(?<![\w@])@([\w.+-]{1,80})")
# More names than a comment needs to address: the rest are not notified (no mass pings).
MAX_MENTIONS = 10


async def _may_see(user_ids: set[int], video: Video) -> list[int]:
    """Those of `user_ids` who are active and may see `video` (the visibility rule)."""
    allowed = []
    people = await User.filter(id__in=user_ids, is_active=True)
    await attach_memberships(people)  # their other categories and grants count too
    for user in people:
        if await visible_to(user).filter(id=video.id).exists():
            allowed.append(user.id)
    return allowed


async def mentioned(text: str) -> set[int]:
    """The people `@name`s in `text` name, by email local part or display name."""
    names = list(dict.fromkeys(m.group(1).rstrip(".").lower() for m in MENTION.finditer(text)))
    names = [n for n in names if n][:MAX_MENTIONS]
    if not names:
        return set()
    query = Q(
        *(Q(email__istartswith=f"{n}@") | Q(display_name__iexact=n) for n in names),
        join_type=Q.OR,
    )
    return set(await User.filter(query).values_list("id", flat=True))


async def comment_messages(event: Event) -> list[Message]:
    """`comment.posted`: the author of the comment answered, and the people mentioned.

    Only those who may see the video hear of it, never the writer themselves; someone
    both answered and mentioned gets the reply only.
    """
    comment = await Comment.get_or_none(id=event.data.get("commentId"))
    if event.name != "comment.posted" or comment is None:
        return []
    video = await Video.get_or_none(id=comment.video_id)
    author = await User.get_or_none(id=comment.author_id) if comment.author_id else None
    if video is None or author is None:
        return []
    who = author.display_name or author.email.split("@", 1)[0]
    url = f"/watch/{video.id}#comment-{comment.id}"
    excerpt = comment.body.strip()[:300]
    parent = await Comment.get_or_none(id=comment.parent_id) if comment.parent_id else None
    answered = {parent.author_id} - {None, author.id} if parent else set()
    named = await mentioned(comment.body) - answered - {author.id}
    allowed = set(await _may_see({*answered, *named}, video))  # type: ignore[arg-type]
    messages = [
        _message(user_id, "comment.reply", f"{who} replied to your comment on {_name(video)}",
                 excerpt, url, video_id=video.id)
        for user_id in answered & allowed
    ]  # fmt: skip
    messages += [
        _message(user_id, "comment.mention", f"{who} mentioned you on {_name(video)}",
                 excerpt, url, video_id=video.id)
        for user_id in sorted(named & allowed)
    ]  # fmt: skip
    return messages


async def messages_for(event: Event) -> list[Message]:
    """Every message an event makes, for whoever should hear it."""
    if event.name.startswith("video."):
        video_id = event.data.get("videoId")
        video = await Video.get_or_none(id=video_id) if video_id else None
        return await video_messages(event, video) if video is not None else []
    if event.name.startswith("account."):
        message = account_message(event)
        return [message] if message is not None else []
    if event.name.startswith("admin."):
        return await admin_alert_messages(event)
    if event.name.startswith("comment."):
        return await comment_messages(event)
    return []
