"""`/hls/<video id>/…`: the HLS tree, poster and sprite, authorised on every request.

Nothing stored is public by path: each request is checked against the visibility
rule for that user and that video, and the path must name a file of that video's
HLS tree. Byte ranges are honoured; responses are private to the browser.
"""

from __future__ import annotations

import re
import uuid

from sanic import Blueprint
from sanic.response import HTTPResponse

from clipsync.context import ClipSyncRequest
from clipsync.errors import ClipSyncError, NotFound
from clipsync.models import VideoStatus
from clipsync.services.transcoding import content_type
from clipsync.services.videos import get_visible
from clipsync.sessions import require_user
from clipsync.storage import keys

bp = Blueprint("hls")
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
PLAYABLE = (VideoStatus.READY, VideoStatus.APPROVED)


class RangeNotSatisfiable(ClipSyncError):
    status = 416
    code = "range_not_satisfiable"
    default_message = "The requested byte range is not in this file."


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (start, end) asked for by a Range header, or None for all of it."""
    if not header:
        return None
    match = RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None  # not a single byte range: serve the whole file, as RFC 9110 allows
    first, last = match.groups()
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    return start, end


@bp.route("/hls/<video_id:uuid>/<path:path>", methods=["GET", "HEAD"])
async def hls_file(request: ClipSyncRequest, video_id: uuid.UUID, path: str) -> HTTPResponse | None:
    user = require_user(request)
    video = await get_visible(user, video_id)
    if video.status not in PLAYABLE:
        raise NotFound("This video is not ready to play yet.")
    try:
        key = keys.hls_key(video.id, path)
    except ValueError:
        raise NotFound("There is no such file.") from None
    storage = request.app.ctx.backends.storage
    size = await storage.size(key)
    if size is None:
        raise NotFound("There is no such file.")

    requested = byte_range(request.headers.get("range"), size)
    start, end = requested or (0, size - 1)
    playlist = path.endswith(".m3u8")
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start + 1),
        # Authorised content: never in a shared cache. Playlists are re-checked (a
        # re-transcode replaces them); segments and images never change in place.
        "Cache-Control": "private, no-cache" if playlist else "private, max-age=86400",
    }
    if requested:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    response = await request.respond(
        status=206 if requested else 200, headers=headers, content_type=content_type(path)
    )
    if request.method != "HEAD" and size:
        async for chunk in storage.read(key, start, end):
            await response.send(chunk)
    await response.eof()
    return None
