"""`/api/admin/videos`: the moderators' library: every video they may moderate, in any
status, with filters and sort; unpublishing and deleting one.

The queue's decisions (approve, reject, move, re-transcode) stay in `api/admin.py`.
"""

from __future__ import annotations

import uuid

from sanic import Blueprint
from sanic.response import HTTPResponse, empty, json

from clipsync.api.bodies import json_object
from clipsync.context import ClipSyncRequest
from clipsync.services.library import LibraryFilters, library_for
from clipsync.services.videos import filtered_json, page_numbers
from clipsync.sessions import require_user

bp = Blueprint("api_library_admin", url_prefix="/api/admin/videos")


def optional_body(request: ClipSyncRequest) -> dict[str, object]:
    """A JSON object when one was sent; an empty one when the body is empty."""
    return json_object(request) if request.body else {}


@bp.get("/")
async def library(request: ClipSyncRequest) -> HTTPResponse:
    """`?status=&category=&uploader=&q=&sort=newest|oldest|title&page=&pageSize=`"""
    user = require_user(request)
    page, size = page_numbers(request.args.get("page"), request.args.get("pageSize"))
    filters = LibraryFilters(
        **{
            name: request.args.get(name, "").strip()
            for name in ("status", "category", "uploader", "q")
        },
        sort=request.args.get("sort", "").strip() or "newest",
    )
    found = await library_for(request.app.ctx).listing(user, filters, page, size)
    return json(
        {
            "items": [
                (await filtered_json(request.app.ctx.plugins, v, user))
                | {"uploaderEmail": v.owner.email}
                for v in found.items
            ],
            "total": found.total,
            "page": found.page,
            "pageSize": found.page_size,
        }
    )


@bp.post("/<video_id:uuid>/unpublish")
async def unpublish(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """APPROVED → READY: hidden from its category again until approved anew."""
    user = require_user(request)
    reason = optional_body(request).get("reason", "")
    video = await library_for(request.app.ctx).unpublish(user, video_id, reason)
    return json({"video": await filtered_json(request.app.ctx.plugins, video, user)})


@bp.delete("/<video_id:uuid>")
async def delete(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """Delete a video the caller may moderate, with its files, for good."""
    user = require_user(request)
    reason = optional_body(request).get("reason", "")
    await library_for(request.app.ctx).delete_moderated(user, video_id, reason)
    return empty()
