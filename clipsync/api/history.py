"""A person's watch history: `GET`/`DELETE /api/me/history`, `DELETE /api/me/history/<id>`.

History is the person's resume points (`services/watch_history.py`): removing an
entry, or clearing them all, also forgets where to resume.
"""

from __future__ import annotations

import uuid

from sanic import Blueprint
from sanic.response import HTTPResponse, empty
from sanic.response import json as json_response

from clipsync.context import ClipSyncRequest
from clipsync.services import watch_history
from clipsync.services.videos import page_numbers
from clipsync.sessions import require_user

bp = Blueprint("api_history", url_prefix="/api/me/history")


@bp.get("/")
async def history(request: ClipSyncRequest) -> HTTPResponse:
    """Newest first, numbered pages (`page`, `pageSize`); videos as in lists, with
    `position`, `watchedAt` and `finished`."""
    user = require_user(request)
    number, size = page_numbers(request.args.get("page"), request.args.get("pageSize"))
    entries, page = await watch_history.history(user, number, size)
    return json_response(
        {
            "items": await watch_history.entries_json(request.app.ctx.plugins, entries, user),
            "total": page.total,
            "page": page.page,
            "pageSize": page.page_size,
        }
    )


@bp.delete("/")
async def clear(request: ClipSyncRequest) -> HTTPResponse:
    """Forget the whole history and every resume point."""
    user = require_user(request)
    return json_response({"removed": await watch_history.clear(user)})


@bp.delete("/<video_id:uuid>")
async def remove(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """Forget one video's entry and resume point (204 whether or not there was one)."""
    user = require_user(request)
    await watch_history.remove(user, video_id)
    return empty()
