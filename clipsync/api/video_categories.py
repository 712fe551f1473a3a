"""`/api/videos/<id>/categories`: the categories a video is published to
(services/video_categories.py)."""

from __future__ import annotations

import uuid

from sanic import Blueprint
from sanic.response import HTTPResponse, json

from clipsync.api.bodies import json_object
from clipsync.context import ClipSyncRequest
from clipsync.errors import ValidationFailed
from clipsync.services import video_categories
from clipsync.services.videos import filtered_json
from clipsync.sessions import require_user

bp = Blueprint("api_video_categories", url_prefix="/api/videos")


@bp.get("/<video_id:uuid>/categories")
async def categories(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """The video's categories and what the caller may change; uploader and moderators."""
    user = require_user(request)
    video = await video_categories.categories_for(user, video_id)
    return json(video_categories.choices_json(request.app.ctx.settings, user, video))


@bp.put("/<video_id:uuid>/categories")
async def publish_to(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """Publish the video to exactly the `categories` listed (its own always stays)."""
    user = require_user(request)
    body = json_object(request)
    if set(body) != {"categories"}:
        raise ValidationFailed(
            'Send {"categories": [...]}: every category the video is published to.',
            field="categories",
        )
    settings = request.app.ctx.settings
    video = await video_categories.publish_to(settings, user, video_id, body["categories"])
    return json(
        video_categories.choices_json(settings, user, video)
        | {"video": await filtered_json(request.app.ctx.plugins, video, user)}
    )
