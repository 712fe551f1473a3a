"""The home page's rows: `GET /api/me/continue`, `/api/me/new-in-category` and
`/api/videos/popular` (see `services/watch_history.py` and `services/home_rows.py`).

Each answers `items`, the videos as in lists; Continue watching's also carry
`position`, `watchedAt` and `finished`. An empty row is `{"items": []}`.
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from clipsync.context import ClipSyncRequest
from clipsync.services import home_rows, watch_history
from clipsync.sessions import require_user

bp = Blueprint("api_home_rows", url_prefix="/api")


@bp.get("/me/continue")
async def continue_watching(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    ctx = request.app.ctx
    entries = await watch_history.continue_watching(user, ctx.settings.recommendations.list_size)
    return json_response({"items": await watch_history.entries_json(ctx.plugins, entries, user)})


@bp.get("/me/new-in-category")
async def new_in_category(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    ctx = request.app.ctx
    found = await home_rows.new_in_category(user, ctx.settings.recommendations.list_size)
    return json_response({"items": await home_rows.videos_json(ctx.plugins, found, user)})


@bp.get("/videos/popular")
async def popular(request: ClipSyncRequest) -> HTTPResponse:
    """The week's most viewed videos the caller may see; empty while analytics are away."""
    user = require_user(request)
    ctx = request.app.ctx
    found = await home_rows.popular_this_week(
        user, ctx.analytics.backend, ctx.settings.recommendations.list_size
    )
    return json_response({"items": await home_rows.videos_json(ctx.plugins, found, user)})
