"""`/api/uploads/`: resumable uploads with the tus 1.0 protocol.

Core, creation, termination, checksum (sha256) and expiration; see
https://tus.io/protocols/resumable-upload. The upload's id (in `Location`) becomes
the video's id when its last byte arrives; the client then registers it with
`POST /api/videos/register` as after any other upload. The work is done by
`clipsync.services.resumable`; this only speaks the protocol's headers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC
from email.utils import format_datetime

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, empty

from clipsync.context import ClipSyncRequest
from clipsync.errors import BadRequest, PreconditionFailed, UnsupportedMediaType
from clipsync.models import ResumableUpload
from clipsync.sessions import require_user

bp = Blueprint("api_uploads", url_prefix="/api/uploads", strict_slashes=False)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,checksum,expiration"
PATCH_TYPE = "application/offset+octet-stream"


@bp.on_request
async def require_tus_version(request: Request) -> None:
    if request.method != "OPTIONS" and request.headers.get("tus-resumable") != TUS_VERSION:
        raise PreconditionFailed(
            f"This server speaks tus {TUS_VERSION}: send the Tus-Resumable header.",
            headers={"Tus-Version": TUS_VERSION},
        )


@bp.on_response
async def tus_resumable(request: Request, response: HTTPResponse) -> None:
    response.headers["Tus-Resumable"] = TUS_VERSION


def expires(upload: ResumableUpload) -> str:
    return format_datetime(upload.expires_at.astimezone(UTC), usegmt=True)


@bp.route("/", methods=["OPTIONS"])
async def options(request: ClipSyncRequest) -> HTTPResponse:
    return empty(
        headers={
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(request.app.ctx.settings.uploads.max_size),
            "Tus-Checksum-Algorithm": "sha256",
        }
    )


@bp.post("/")
async def create(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    if "upload-defer-length" in request.headers:
        raise BadRequest("Upload-Defer-Length is not supported: send Upload-Length.")
    upload = await request.app.ctx.resumable.create(
        user, request.headers.get("upload-length"), request.headers.get("upload-metadata")
    )
    return empty(
        status=201,
        headers={"Location": f"/api/uploads/{upload.id}", "Upload-Expires": expires(upload)},
    )


@bp.route("/<upload_id:str>", methods=["HEAD"])
async def head(request: ClipSyncRequest, upload_id: str) -> HTTPResponse:
    user = require_user(request)
    upload = await request.app.ctx.resumable.status(user, upload_id)
    headers = {
        "Upload-Offset": str(upload.offset),
        "Upload-Length": str(upload.length),
        "Upload-Expires": expires(upload),
        "Cache-Control": "no-store",
    }
    if upload.metadata:
        headers["Upload-Metadata"] = upload.metadata
    return HTTPResponse(status=200, headers=headers)


async def body(request: ClipSyncRequest) -> AsyncIterator[bytes]:
    while (chunk := await request.stream.read()) is not None:  # type: ignore[union-attr]
        if chunk:
            yield chunk


@bp.patch("/<upload_id:str>", stream=True)
async def patch(request: ClipSyncRequest, upload_id: str) -> HTTPResponse:
    user = require_user(request)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != PATCH_TYPE:
        raise UnsupportedMediaType(f"Send the bytes as {PATCH_TYPE}.")
    upload = await request.app.ctx.resumable.patch(
        user,
        upload_id,
        request.headers.get("upload-offset"),
        request.headers.get("upload-checksum"),
        request.headers.get("content-length"),
        body(request),
    )
    return empty(headers={"Upload-Offset": str(upload.offset), "Upload-Expires": expires(upload)})


@bp.delete("/<upload_id:str>")
async def terminate(request: ClipSyncRequest, upload_id: str) -> HTTPResponse:
    user = require_user(request)
    await request.app.ctx.resumable.terminate(user, upload_id)
    return empty()
