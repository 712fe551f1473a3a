"""`/notifications`: the person's inbox, newest first (marking read by `js/notifications.js`),
and `/notifications/preferences`: which types reach them on which channel (a plain form).
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.response import HTTPResponse, redirect

from clipsync.context import ClipSyncRequest
from clipsync.errors import ClipSyncError
from clipsync.services import notification_types, notifications
from clipsync.services.notification_types import CHANNELS
from clipsync.services.videos import page_numbers
from clipsync.sessions import require_user

bp = Blueprint("notification_pages")


@bp.get("/notifications")
async def inbox_page(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    number, _ = page_numbers(request.args.get("page"), None, notifications.PAGE_SIZE)
    inbox = await notifications.inbox(user, page=number)
    pages = max(1, -(-inbox.total // notifications.PAGE_SIZE))
    return request.app.ctx.templates.render(
        request,
        "notifications.html",
        notifications=[notifications.as_json(item) for item in inbox.items],
        unread=inbox.unread,
        page={"page": number, "page_size": notifications.PAGE_SIZE, "total": inbox.total},
        pages=pages,
    )


async def _preferences_page(
    request: ClipSyncRequest, *, status: int = 200, error: str = "", saved: bool = False
) -> HTTPResponse:
    user = require_user(request)
    settings = request.app.ctx.settings
    chosen = await notification_types.preferences(settings, user)
    return request.app.ctx.templates.render(
        request,
        "notification_preferences.html",
        status=status,
        kinds=notification_types.types_for(user),
        chosen=chosen,
        channels=CHANNELS,
        email_on=notifications.email_enabled(),
        error=error,
        saved=saved,
    )


@bp.get("/notifications/preferences")
async def preferences_page(request: ClipSyncRequest) -> HTTPResponse:
    return await _preferences_page(request, saved=request.args.get("saved") == "1")


@bp.post("/notifications/preferences")
async def save_preferences(request: ClipSyncRequest) -> HTTPResponse:
    """Every switch on the page is sent: a ticked box is on, a missing one off."""
    user = require_user(request)
    form = request.form or {}
    changes = {
        kind.name: {channel: f"{kind.name}:{channel}" in form for channel in CHANNELS}
        for kind in notification_types.types_for(user)
        if not kind.mandatory
    }
    try:
        await notification_types.update_preferences(request.app.ctx.settings, user, changes)
    except ClipSyncError as error:
        return await _preferences_page(request, status=error.status, error=error.message)
    return redirect("/notifications/preferences?saved=1", status=303)
