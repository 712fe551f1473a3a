"""The caption forms of the uploader's edit page: upload (add or replace) and delete.

Plain forms with the CSRF field, so they work without JavaScript; each answers a
redirect back to `/videos/<id>/edit`, or that page again with the reason a file was
refused. The rules are the API's (`services/captions.py`). A form body is read whole
by the server, so here a caption file is also bounded by `[server] max_body_size`.
"""

from __future__ import annotations

import uuid

from sanic import Blueprint
from sanic.response import HTTPResponse, redirect

from clipsync.api.captions import upload_parts
from clipsync.context import ClipSyncRequest
from clipsync.errors import ClipSyncError, NotFound
from clipsync.services.captions import captions_for
from clipsync.services.library import library_for
from clipsync.services.videos import video_json
from clipsync.sessions import require_user
from clipsync.web.video_pages import edit_page

bp = Blueprint("caption_pages")


@bp.post("/videos/<video_id:uuid>/captions")
async def upload_captions(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = require_user(request)
    video = await library_for(request.app.ctx).owned(user, video_id)
    form = request.form or {}
    files = request.files or {}
    fields = {name: form.get(name) for name in ("language", "label")}
    try:
        language, label, data = upload_parts(fields, {"file": files.get("file")})
        caption, _ = await captions_for(request.app.ctx).upload(
            user, video.id, language, label, data
        )
    except NotFound:
        raise
    except ClipSyncError as error:
        return await edit_page(
            request,
            video_json(video, user),
            status=error.status,
            caption_error=error.message,
            caption_form=fields,
        )
    return redirect(f"/videos/{video.id}/edit?captions={caption.language}#captions", status=303)


@bp.post("/videos/<video_id:uuid>/captions/<language:str>/delete")
async def delete_captions(
    request: ClipSyncRequest, video_id: uuid.UUID, language: str
) -> HTTPResponse:
    user = require_user(request)
    video = await library_for(request.app.ctx).owned(user, video_id)
    await captions_for(request.app.ctx).delete(user, video.id, language)
    return redirect(f"/videos/{video.id}/edit?captions_deleted=1#captions", status=303)
