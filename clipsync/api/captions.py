"""`/api/videos/<id>/captions`: list, upload (add or replace) and delete caption tracks.

Uploads are multipart/form-data with a `file` (WebVTT or SRT) and a `language` (a
BCP 47 tag), and optionally a `label`. Caption files are small
(`media.captions.MAX_BYTES`), so the body is read whole, but never more than that
limit and the form's framing: a longer body is refused as it arrives, whatever the
server's `max_body_size`.
"""

from __future__ import annotations

import uuid
from typing import Any

from sanic import Blueprint, Request
from sanic.headers import parse_content_header
from sanic.request.form import parse_multipart_form
from sanic.response import HTTPResponse, empty
from sanic.response import json as json_response

from clipsync.context import ClipSyncRequest
from clipsync.errors import BadRequest, PayloadTooLarge, ValidationFailed
from clipsync.media.captions import MAX_BYTES
from clipsync.services.captions import caption_json, captions_for
from clipsync.sessions import require_user
from clipsync.sizes import format_size

bp = Blueprint("api_captions", url_prefix="/api/videos")
# Room for the multipart framing and the small fields around the file.
FORM_OVERHEAD = 16 * 1024
MAX_FORM = MAX_BYTES + FORM_OVERHEAD


def too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"Caption files can be at most {format_size(MAX_BYTES)}.")


async def read_form(request: Request) -> tuple[dict[str, str], dict[str, Any]]:
    """The fields and files of a multipart body of at most `MAX_FORM` bytes."""
    kind, options = parse_content_header(request.headers.get("content-type", ""))
    boundary = options.get("boundary")
    if kind != "multipart/form-data" or not boundary:
        raise BadRequest("Send multipart/form-data with a caption 'file' and its 'language'.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM:
        raise too_large()
    body = bytearray()
    while (chunk := await request.stream.read()) is not None:  # type: ignore[union-attr]
        body += chunk
        if len(body) > MAX_FORM:
            raise too_large()
    fields, files = parse_multipart_form(bytes(body), boundary.encode())
    return {k: fields.get(k) for k in fields}, {k: files.get(k) for k in files}


def upload_parts(fields: dict[str, Any], files: dict[str, Any]) -> tuple[Any, Any, bytes]:
    """(language, label, file bytes) of a caption form, the API's or the edit page's."""
    file = files.get("file")
    if file is None or not getattr(file, "body", b""):
        raise ValidationFailed("Choose a caption file (WebVTT or SRT).", field="file")
    if len(file.body) > MAX_BYTES:
        raise too_large()
    return fields.get("language"), fields.get("label"), file.body


@bp.get("/<video_id:uuid>/captions")
async def list_captions(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = require_user(request)
    tracks = await captions_for(request.app.ctx).listing(user, video_id)
    return json_response({"items": [caption_json(c) for c in tracks]})


@bp.post("/<video_id:uuid>/captions", stream=True)
async def upload_captions(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """Add the track of `language`, or replace it: 201 when new, 200 when replaced."""
    user = require_user(request)
    service = captions_for(request.app.ctx)
    # Who may, before reading the body: a stranger learns nothing from its checks.
    await service.editable(user, video_id)
    language, label, data = upload_parts(*await read_form(request))
    caption, created = await service.upload(user, video_id, language, label, data)
    return json_response({"caption": caption_json(caption)}, status=201 if created else 200)


@bp.delete("/<video_id:uuid>/captions/<language:str>")
async def delete_captions(
    request: ClipSyncRequest, video_id: uuid.UUID, language: str
) -> HTTPResponse:
    user = require_user(request)
    await captions_for(request.app.ctx).delete(user, video_id, language)
    return empty()
