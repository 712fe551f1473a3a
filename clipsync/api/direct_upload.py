"""`/api/upload/presigned-url`: a URL to PUT a video straight into object storage.

The client PUTs the file to `uploadUrl` (with exactly the `Content-Type` it
declared: the signature covers it), then registers it with
`POST /api/videos/register {"fileKey", "title", "description"}`.
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from clipsync.api.bodies import json_object
from clipsync.context import ClipSyncRequest
from clipsync.sessions import require_user

bp = Blueprint("api_direct_upload", url_prefix="/api/upload")


@bp.post("/presigned-url")
async def presigned_url(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    body = json_object(request)
    upload = await request.app.ctx.uploads.presign(
        user, body.get("filename"), body.get("size"), body.get("contentType")
    )
    return json_response(
        {
            "uploadUrl": upload.upload_url,
            "fileKey": upload.file_key,
            "method": "PUT",
            "headers": {"Content-Type": body["contentType"]},
            "expiresIn": request.app.ctx.settings.storage.upload_url_seconds,
        },
        status=201,
    )
