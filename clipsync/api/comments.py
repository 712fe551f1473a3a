"""Comments and likes: `/api/videos/<id>/comments`, `/api/comments/<id>`, `/api/videos/<id>/like`.

Every route follows the video's visibility rule: a video (or a comment on one) that
the caller may not see answers 404. The services do the work (`services/comments.py`,
`services/likes.py`).
"""

from __future__ import annotations

import uuid

from sanic import Blueprint
from sanic.response import HTTPResponse, empty
from sanic.response import json as json_response

from clipsync.api.bodies import json_object
from clipsync.api.live_stream import Send, serve_live
from clipsync.context import ClipSyncRequest
from clipsync.errors import ValidationFailed
from clipsync.events import Event
from clipsync.models import Comment, User
from clipsync.services import comments, likes
from clipsync.services.videos import can_moderate, get_visible
from clipsync.sessions import require_user

bp = Blueprint("api_comments", url_prefix="/api")


@bp.get("/videos/<video_id:uuid>/comments")
async def list_comments(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """Top-level comments (`order` newest or oldest, `page`, `pageSize`) with their replies,
    and what the watch page needs around them: whether comments are on, the likes."""
    user = require_user(request)
    video = await get_visible(user, video_id)
    found = await comments.thread(
        user,
        video,
        request.args.get("order"),
        request.args.get("page"),
        request.args.get("pageSize"),
    )
    return json_response(
        {
            "items": found.items,
            "total": found.total,
            "page": found.page,
            "pageSize": found.page_size,
            "order": found.order,
            "commentsEnabled": video.comments_enabled,
            "canModerate": can_moderate(user, video),
            "canTurnOff": video.owner_id == user.id or can_moderate(user, video),
            "maxLength": comments.MAX_BODY,
            **await likes.state(user, video),
        }
    )


@bp.post("/videos/<video_id:uuid>/comments")
async def post_comment(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """`{body, parentId?}`: a reply to a reply answers the same top-level comment."""
    user = require_user(request)
    body = json_object(request)
    comment, video = await comments.post(
        user, video_id, body.get("body"), body.get("parentId"), plugins=request.app.ctx.plugins
    )
    return json_response({"comment": await comments.one(user, comment, video)}, status=201)


@bp.put("/videos/<video_id:uuid>/comments-enabled")
async def comments_enabled(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """`{enabled}`: the uploader or a moderator turns comments on or off (audited)."""
    user = require_user(request)
    video = await comments.set_enabled(user, video_id, json_object(request).get("enabled"))
    return json_response({"commentsEnabled": video.comments_enabled})


@bp.patch("/comments/<comment_id:int>")
async def edit_comment(request: ClipSyncRequest, comment_id: int) -> HTTPResponse:
    user = require_user(request)
    comment, video = await comments.edit(user, comment_id, json_object(request).get("body"))
    return json_response({"comment": await comments.one(user, comment, video)})


@bp.delete("/comments/<comment_id:int>")
async def delete_comment(request: ClipSyncRequest, comment_id: int) -> HTTPResponse:
    user = require_user(request)
    await comments.delete(user, comment_id)
    return empty()


@bp.post("/comments/<comment_id:int>/hide")
async def hide_comment(request: ClipSyncRequest, comment_id: int) -> HTTPResponse:
    """`{hidden}` (true when absent): a moderator hides a comment or shows it again."""
    user = require_user(request)
    hidden = json_object(request).get("hidden", True) if request.body else True
    if not isinstance(hidden, bool):
        raise ValidationFailed("hidden is true or false.", field="hidden")
    comment, video = await comments.set_hidden(user, comment_id, hidden)
    return json_response({"comment": await comments.one(user, comment, video)})


@bp.get("/videos/<video_id:uuid>/comments/stream")
async def comment_stream(request: ClipSyncRequest, video_id: uuid.UUID) -> None:
    """Server-Sent Events: `event: comment` for each comment posted on the video.

    Visibility is checked once, when the stream opens; each new comment is read once
    per process, however many pages are open on the video.
    """
    user = require_user(request)
    video = await get_visible(user, video_id)
    moderator = can_moderate(user, video)

    async def on_news(user: User, event: Event, send: Send) -> None:
        if event.name != "comment.posted" or event.data.get("videoId") != str(video.id):
            return
        comment = await event.shared(
            "comment", lambda: Comment.get_or_none(id=event.data.get("commentId"))
        )
        if comment is None or (comment.hidden_at is not None and not moderator):
            return
        # The author too is read once per process, not once per open page.
        authors = await event.shared("comment.authors", lambda: comments.authors_of([comment]))
        await send("comment", comments.comment_json(comment, authors, user, moderator))

    await serve_live(request, ("comment.",), on_news)


@bp.put("/videos/<video_id:uuid>/like")
async def like(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """Idempotent: liking again changes nothing. Answers `{likes, liked}`."""
    return json_response(await likes.like(require_user(request), video_id))


@bp.delete("/videos/<video_id:uuid>/like")
async def unlike(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    return json_response(await likes.unlike(require_user(request), video_id))
