"""`/api/notifications`: the caller's inbox, marking read, and the live unread count."""

from __future__ import annotations

from sanic import Blueprint
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from clipsync.api.bodies import json_object
from clipsync.api.live_stream import Send, serve_live
from clipsync.context import ClipSyncRequest
from clipsync.errors import BadRequest
from clipsync.events import Event
from clipsync.models import User
from clipsync.services import notification_types, notifications
from clipsync.services.videos import page_numbers
from clipsync.sessions import require_user

bp = Blueprint("api_notifications", url_prefix="/api/notifications")

TRUE = ("1", "true", "yes")
FALSE = ("", "0", "false", "no")


def _unread_only(value: str | None) -> bool:
    text = (value or "").strip().lower()
    if text not in TRUE + FALSE:
        raise BadRequest("unread is true or false.")
    return text in TRUE


@bp.get("")
async def list_notifications(request: ClipSyncRequest) -> HTTPResponse:
    """`?unread=true&page=N`: a page of the caller's notifications, newest first."""
    user = require_user(request)
    unread_only = _unread_only(request.args.get("unread"))
    number, _ = page_numbers(request.args.get("page"), None, notifications.PAGE_SIZE)
    inbox = await notifications.inbox(user, unread_only=unread_only, page=number)
    return json_response(
        {
            "items": [notifications.as_json(item) for item in inbox.items],
            "total": inbox.total,
            "unread": inbox.unread,
        }
    )


@bp.post("/<notification_id:int>/read")
async def read_one(request: ClipSyncRequest, notification_id: int) -> HTTPResponse:
    """Mark one of the caller's notifications read (another person's is 404)."""
    user = require_user(request)
    item = await notifications.mark_read(user, notification_id)
    return json_response(notifications.as_json(item))


@bp.post("/read-all")
async def read_all(request: ClipSyncRequest) -> HTTPResponse:
    """Mark every unread notification of the caller read."""
    user = require_user(request)
    count = await notifications.mark_all_read(user)
    return json_response({"marked": count, "unread": 0})


@bp.get("/preferences")
async def get_preferences(request: ClipSyncRequest) -> HTTPResponse:
    """`{"<type>": {"inapp": bool, "email": bool}}` for every type the caller can get."""
    user = require_user(request)
    return json_response(await notification_types.preferences(request.app.ctx.settings, user))


@bp.put("/preferences")
async def put_preferences(request: ClipSyncRequest) -> HTTPResponse:
    """Change some of the caller's choices (only the types and channels sent); answers all."""
    user = require_user(request)
    body = json_object(request)
    settings = request.app.ctx.settings
    return json_response(await notification_types.update_preferences(settings, user, body))


@bp.get("/stream")
async def stream(request: ClipSyncRequest) -> None:
    """Server-Sent Events: `event: unread` with `{"unread": n}` on open and on each change."""

    async def send_count(user: User, send: Send) -> None:
        await send("unread", {"unread": await notifications.unread_count(user)})

    async def on_news(user: User, event: Event, send: Send) -> None:
        if event.data.get("userId") == user.id or user.id in event.data.get("userIds", ()):
            await send_count(user, send)

    await serve_live(request, ("notification.",), on_news, send_count)
