"""Sharing a video beyond its watch page: the embed player and the original's download.

- `/embed/<id>`: the player alone, for an intranet page's `<iframe>`. It is
  authorised by the viewer's own ClipSync session, exactly as the watch page is (the
  visibility rule of services/videos.py `get_visible`), so an embed shows nothing to
  someone who could not open the video here; a signed-out viewer gets a sign-in link
  (opened outside the frame: the sign-in page itself refuses framing). Only this page
  may be framed, by `[sharing] embed_frame_ancestors` (http_security.py
  `allow_framing`). The session cookie is SameSite=Lax, so the framing page must be on
  the same site (e.g. intranet.example.org framing video.example.org) for the viewer
  to be recognised; a cross-site page shows the sign-in link.
- `/videos/<id>/download`: the uploaded file as it was, as an attachment, when
  `[sharing] allow_download` and the video's `download_allowed` both say yes, to
  whoever may watch it; 404 otherwise (as for a video one may not see).
"""

from __future__ import annotations

import re
import uuid
from html import escape
from urllib.parse import quote

from sanic import Blueprint
from sanic.response import HTTPResponse

from clipsync.context import ClipSyncRequest
from clipsync.errors import ClipSyncError, NotFound
from clipsync.http_security import allow_framing
from clipsync.models import User, Video
from clipsync.services.videos import filtered_json, get_visible, progress_of
from clipsync.sessions import require_user

bp = Blueprint("sharing_pages")

NO_DOWNLOAD = "This video cannot be downloaded."


def may_download(request: ClipSyncRequest, video: Video) -> bool:
    """Whether the site and the video's uploader both allow downloading it."""
    return request.app.ctx.settings.sharing.allow_download and bool(video.download_allowed)


def content_disposition(filename: str) -> str:
    """`attachment` with the original name: an ASCII fallback and the exact UTF-8 name.

    Quotes, backslashes and control characters never reach the header; a name with
    nothing left is "video".
    """
    cleaned = "".join(c for c in filename if c.isprintable() and c not in '"\\/').strip()
    cleaned = cleaned or "video"
    fallback = "".join(c if c.isascii() else "_" for c in cleaned)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(cleaned, safe='')}"


def start_time(value: str | None) -> int | None:
    """`?t=83` (seconds) or `?t=1m23s`, as share links and description times write it."""
    if not value:
        return None
    match = re.fullmatch(r"(?:(\d{1,3})h)?(?:(\d{1,4})m)?(?:(\d{1,6})s?)?", value.strip())
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def embed_code(url: str, title: str) -> str:
    """The `<iframe>` the watch page offers to copy (the template escapes it once more)."""
    return (
        f'<iframe src="{escape(url)}" width="640" height="360" title="{escape(title)}" '
        'allow="fullscreen; picture-in-picture" allowfullscreen></iframe>'
    )


@bp.get("/videos/<video_id:uuid>/download")
async def download(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse | None:
    user = require_user(request)
    video = await get_visible(user, video_id)
    if not may_download(request, video) or not video.source_key:
        raise NotFound(NO_DOWNLOAD)
    storage = request.app.ctx.backends.storage
    size = await storage.size(video.source_key)
    if size is None:
        raise NotFound(NO_DOWNLOAD)
    name = video.original_filename or f"{video.title or 'video'}"
    response = await request.respond(
        headers={
            "Content-Disposition": content_disposition(name),
            "Content-Length": str(size),
            "Cache-Control": "private, no-store",
        },
        content_type="application/octet-stream",
    )
    if size:
        async for chunk in storage.read(video.source_key):
            await response.send(chunk)
    await response.eof()
    return None


@bp.get("/embed/<video_id:uuid>")
async def embed(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    allow_framing(request)
    templates = request.app.ctx.templates
    user: User | None = getattr(request.ctx, "actor", None)
    if user is None:
        return templates.render(
            request, "embed.html", status=401, video=None, sign_in=f"/login?next=/watch/{video_id}"
        )
    try:
        video = await get_visible(user, video_id)
    except ClipSyncError as error:
        return templates.render(request, "embed.html", status=error.status, video=None, error=error)
    return templates.render(
        request,
        "embed.html",
        video=await filtered_json(request.app.ctx.plugins, video, user),
        resume_at=await progress_of(user, video) or 0,
        start_at=start_time(request.args.get("t")),
        watch_url=f"/watch/{video.id}",
    )
