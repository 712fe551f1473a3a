"""`POST /api/videos/<id>/stream-link`: a URL that plays the video with no cookie.

See services/stream_links.py: signed, expiring, and revoked with the sign-in session
it was made in.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sanic import Blueprint
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from clipsync.context import ClipSyncRequest
from clipsync.errors import NotFound
from clipsync.models import VideoStatus
from clipsync.services import stream_links
from clipsync.services.videos import read_visible
from clipsync.sessions import require_user

bp = Blueprint("api_stream_links", url_prefix="/api/videos")
PLAYABLE = (VideoStatus.READY, VideoStatus.APPROVED)


@bp.post("/<video_id:uuid>/stream-link")
async def create_stream_link(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """`url` (the signed master playlist) and `expiresAt`; 404 for a video the caller
    may not see or that is not playable, 409 for a token tied to no session."""
    user = require_user(request)
    video = await read_visible(user, video_id)
    if video.status not in PLAYABLE:
        raise NotFound("This video is not ready to play yet.")
    link = stream_links.make(request.app.ctx.settings, video.id, request.ctx.session_id)
    expires = datetime.fromtimestamp(link.expires_at, UTC).isoformat()
    return json_response({"url": link.url, "expiresAt": expires}, status=201)
