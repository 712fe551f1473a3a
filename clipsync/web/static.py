"""`/static/…`: the active theme's files, then the default theme's, then bundled assets."""

from __future__ import annotations

import mimetypes

from sanic import Blueprint
from sanic.response import HTTPResponse, file

from clipsync.context import ClipSyncRequest
from clipsync.errors import NotFound

bp = Blueprint("static")
MAX_AGE = 3600


@bp.get("/static/<relative:path>")
async def static(request: ClipSyncRequest, relative: str) -> HTTPResponse:
    path = request.app.ctx.templates.static_file(relative)
    if path is None:
        raise NotFound("There is no such file.")
    mime, _ = mimetypes.guess_type(path.name)
    return await file(
        path,
        mime_type=mime or "application/octet-stream",
        request_headers=request.headers,
        max_age=MAX_AGE,
    )
