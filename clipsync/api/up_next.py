"""`GET /api/videos/<id>/next`: what to watch after a video (see `services/up_next.py`)."""

from __future__ import annotations

import uuid

from sanic import Blueprint
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from clipsync.context import ClipSyncRequest
from clipsync.services import up_next
from clipsync.services.videos import get_visible
from clipsync.sessions import require_user

bp = Blueprint("api_up_next", url_prefix="/api/videos")


@bp.get("/<video_id:uuid>/next")
async def next_videos(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """`items`: videos as in lists, each with its `reason`; 404 for a video the caller
    may not see."""
    user = require_user(request)
    video = await get_visible(user, video_id)
    ctx = request.app.ctx
    items = await up_next.up_next(ctx.plugins, user, video, ctx.settings.recommendations.list_size)
    return json_response({"items": await up_next.items_json(ctx.plugins, items, user)})
