"""`/api/videos/<id>/grants`: sharing a video with named people (services/grants.py).

`GET /api/videos?shared=1` (api/videos.py) lists what is shared with the caller.
"""

from __future__ import annotations

import uuid

from sanic import Blueprint
from sanic.response import HTTPResponse, empty, json

from clipsync.api.bodies import json_object
from clipsync.context import ClipSyncRequest
from clipsync.services import grants
from clipsync.sessions import require_user

bp = Blueprint("api_grants", url_prefix="/api/videos")


@bp.get("/<video_id:uuid>/grants")
async def list_grants(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """Who the video is shared with; its uploader and moderators only, others get 404."""
    user = require_user(request)
    found = await grants.grants_of(user, video_id)
    return json({"items": [grants.grant_json(grant, person) for grant, person in found]})


@bp.post("/<video_id:uuid>/grants")
async def grant(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """Share the video with one person (`userId` or `email`, and `until`): 201 when new,
    200 when it changes the end of that person's grant."""
    user = require_user(request)
    found, created = await grants.grant(user, video_id, json_object(request))
    person = await found.user
    return json({"grant": grants.grant_json(found, person)}, status=201 if created else 200)


@bp.delete("/<video_id:uuid>/grants/<grant_id:int>")
async def remove_grant(
    request: ClipSyncRequest, video_id: uuid.UUID, grant_id: int
) -> HTTPResponse:
    user = require_user(request)
    await grants.remove(user, video_id, grant_id)
    return empty()
