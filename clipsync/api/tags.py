"""`GET /api/tags?q=`: tags to suggest as someone types one (see `services/tags.py`)."""

from __future__ import annotations

from sanic import Blueprint
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from clipsync.context import ClipSyncRequest
from clipsync.services import tags
from clipsync.sessions import require_user

bp = Blueprint("api_tags", url_prefix="/api/tags")


@bp.get("/")
async def suggest(request: ClipSyncRequest) -> HTTPResponse:
    """The tags starting with `q` on videos the caller may see, most used first."""
    user = require_user(request)
    return json_response({"items": await tags.suggest(user, request.args.get("q", ""))})
