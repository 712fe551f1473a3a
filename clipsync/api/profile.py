"""The caller's profile beyond `/api/auth/me`: avatar, email change; and `/avatars/<id>`.

`PATCH /api/auth/me` (the display name) sits with `GET /api/auth/me` in api/auth.py.
The work is services/profiles.py.
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.response import HTTPResponse, json, raw

from clipsync.api.bodies import json_object
from clipsync.api.multipart import StreamedFile
from clipsync.context import ClipSyncRequest
from clipsync.services import profiles
from clipsync.sessions import require_user

bp = Blueprint("api_profile")

# A multipart body's boundaries and headers around the file.
FORM_OVERHEAD = 16 * 1024


@bp.put("/api/auth/me/avatar", stream=True)
async def put_avatar(request: ClipSyncRequest) -> HTTPResponse:
    """Multipart `file` → the user with the new `avatarUrl` (the image re-encoded)."""
    user = require_user(request)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > profiles.MAX_AVATAR_BYTES + FORM_OVERHEAD:
        raise profiles.too_large()  # refused before a byte is read
    upload = StreamedFile(request, "file")
    await upload.open()
    await profiles.set_avatar(request.app.ctx.backends.storage, user, upload.chunks())
    return json({"user": user.to_public()})


@bp.delete("/api/auth/me/avatar")
async def delete_avatar(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    await profiles.remove_avatar(request.app.ctx.backends.storage, user)
    return json({"user": user.to_public()})


@bp.post("/api/auth/me/email")
async def change_email(request: ClipSyncRequest) -> HTTPResponse:
    """`{newEmail, password}` → 202; the change waits for the link mailed to `newEmail`."""
    user = require_user(request)
    body = json_object(request)
    message = await profiles.request_email_change(
        request.app.ctx.accounts,
        user,
        body.get("newEmail"),
        body.get("password"),
        address=request.remote_addr or request.ip,
    )
    return json({"message": message}, status=202)


@bp.get("/avatars/<user_id:int>")
async def avatar(request: ClipSyncRequest, user_id: int) -> HTTPResponse:
    """A person's avatar, for signed-in people only (nothing stored is public by path).

    Always read through the app, in every storage mode: avatars are small, and a
    presigned URL would outlive the session that asked for it.
    """
    require_user(request)
    key = await profiles.avatar_of(user_id)
    storage = request.app.ctx.backends.storage
    data = b"".join([chunk async for chunk in storage.read(key)])
    # The URL names the version (`?v=`): a new avatar is a new URL.
    return raw(
        data,
        content_type=profiles.AVATAR_TYPE,
        headers={"Cache-Control": "private, max-age=86400"},
    )
