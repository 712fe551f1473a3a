"""`/history`: the videos a person watched, newest first, with removing one entry and
clearing them all (after a confirmation page). Plain forms: it works without
JavaScript. See `services/watch_history.py`: history is the resume points.
"""

from __future__ import annotations

import uuid

from sanic import Blueprint
from sanic.response import HTTPResponse, redirect

from clipsync.context import ClipSyncRequest
from clipsync.services import watch_history
from clipsync.services.videos import page_numbers
from clipsync.sessions import require_user
from clipsync.web.video_pages import category_labels

bp = Blueprint("history_pages")

HISTORY_PAGE_SIZE = 30
# What the page says after an action (`?done=`): fixed words, never text from a link.
NOTICES = {
    "removed": "The video was removed from your history.",
    "cleared": "Your history was cleared.",
}


@bp.get("/history")
async def history(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    number, size = page_numbers(request.args.get("page"), None, HISTORY_PAGE_SIZE)
    entries, page = await watch_history.history(user, number, size)
    return request.app.ctx.templates.render(
        request,
        "history.html",
        entries=await watch_history.entries_json(request.app.ctx.plugins, entries, user),
        page=page,
        pages=max(1, -(-page.total // page.page_size)),
        category_names=category_labels(request),
        notice=NOTICES.get(request.args.get("done", "")),
    )


@bp.post("/history/<video_id:uuid>/remove")
async def remove(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = require_user(request)
    await watch_history.remove(user, video_id)
    return redirect("/history?done=removed", status=303)


@bp.get("/history/clear")
async def confirm_clear(request: ClipSyncRequest) -> HTTPResponse:
    """The confirmation step: nothing is forgotten until this page's form is sent."""
    require_user(request)
    return request.app.ctx.templates.render(request, "history.html", confirm_clear=True)


@bp.post("/history/clear")
async def clear(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    await watch_history.clear(user)
    return redirect("/history?done=cleared", status=303)
