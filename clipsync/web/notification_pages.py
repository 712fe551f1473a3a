"""`/notifications`: the person's inbox, newest first (marking read by `js/notifications.js`)."""

from __future__ import annotations

from sanic import Blueprint
from sanic.response import HTTPResponse

from clipsync.context import ClipSyncRequest
from clipsync.services import notifications
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
