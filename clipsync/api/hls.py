"""`/hls/<video id>/…`: the HLS tree, poster and sprite, authorised on every request.

Nothing stored is public by path: each request is checked against the visibility
rule for that user and that video, and the path must name a file of that video's
HLS tree. Responses are private to the browser.

Two ways to deliver the bytes once a request is allowed:

- proxy (local storage always; object storage with `[storage] playback = "proxy"`):
  every file is streamed through the app, byte ranges honoured;
- presigned (object storage that can presign, `[storage] playback = "presigned"`):
  the master playlist is served as stored (its URIs stay app-relative, so every
  media playlist request comes back here to be authorised); each media playlist is
  served with its segment and init URIs rewritten to presigned GET URLs, so the
  player fetches the media straight from the store; any other file (poster, sprite,
  thumbnails) answers a redirect to a presigned URL.

Captions (`services/captions.py`) are added after the transcode and kept outside the
HLS tree, so the stored master playlist does not list them: when a video has any,
`master.m3u8` is served with a SUBTITLES group merged in
(`playlists.master_with_subtitles`), and `captions/<language>.m3u8` is a one-segment
subtitle playlist made on request, naming `captions/<language>.vtt` (proxy) or a
presigned URL of it (presigned). Both are re-checked on every request (`no-cache`):
a replaced or deleted track shows at once.

The video's row and the rendered master playlist come from the cache
(`videos.read_visible`, `services/master_playlist.py`); whether this viewer may see
the video is still decided on every request, from the viewer's own row.
"""

from __future__ import annotations

import asyncio
import math
import re
import uuid

from sanic import Blueprint
from sanic.response import HTTPResponse, redirect
from sanic.response import text as text_response

from clipsync import metrics
from clipsync.backends import PresigningStorage
from clipsync.context import ClipSyncRequest
from clipsync.errors import ClipSyncError, NotFound
from clipsync.media import playlists
from clipsync.models import Caption, Video, VideoStatus
from clipsync.services.captions import captions_for, tracks_of
from clipsync.services.master_playlist import master_playlist
from clipsync.services.transcoding import content_type
from clipsync.services.videos import read_visible
from clipsync.sessions import require_user
from clipsync.settings import MAX_PRESIGN_SECONDS, Settings
from clipsync.storage import keys

bp = Blueprint("hls")
# ASCII digits, at most 19: int() takes other scripts' digits and fails on thousands.
RANGE = re.compile(r"^bytes=([0-9]{0,19})-([0-9]{0,19})$")
PLAYABLE = (VideoStatus.READY, VideoStatus.APPROVED)
# Signed URLs must not outlive the answer that carries them in any cache.
SIGNED_CACHE_CONTROL = "private, no-store"
MASTER = "master.m3u8"
CAPTIONS = "captions/"
CAPTION_FILE = re.compile(r"^captions/([A-Za-z0-9-]{1,35})\.(m3u8|vtt)$")


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


def presigning_store(settings: Settings, storage: object) -> PresigningStorage | None:
    """The store players fetch media from directly (see the module docstring), or None."""
    if settings.storage.playback == "presigned" and isinstance(storage, PresigningStorage):
        return storage
    return None


def playback_expiry(settings: Settings, video: Video) -> int:
    """Seconds a presigned segment URL in a media playlist stays valid.

    Short-lived, but not shorter than the video: hls.js (like other players) fetches
    a VOD media playlist once, then its segments as playback reaches them, so a URL
    must still work when the last segment is reached, `duration` seconds later at
    normal speed. The configured margin covers start-up, buffering and short pauses;
    a player held up for longer gets a 403 from the store and reloads the playlist,
    which signs the URLs afresh (themes/default/static/js/player.js).
    """
    seconds = settings.storage.playback_url_seconds + math.ceil(video.duration or 0)
    return min(seconds, MAX_PRESIGN_SECONDS)


@bp.route("/hls/<video_id:uuid>/<path:path>", methods=["GET", "HEAD"])
async def hls_file(request: ClipSyncRequest, video_id: uuid.UUID, path: str) -> HTTPResponse | None:
    user = require_user(request)
    video = await read_visible(user, video_id)
    if video.status not in PLAYABLE:
        raise NotFound("This video is not ready to play yet.")
    if path.startswith(CAPTIONS):
        return await _caption_file(request, video, path)
    try:
        key = keys.hls_key(video.id, path)
    except ValueError:
        raise NotFound("There is no such file.") from None
    storage = request.app.ctx.backends.storage
    store = presigning_store(request.app.ctx.settings, storage)
    if path == MASTER and not request.headers.get("range"):
        # Rendered once per video, captions merged in, and kept in the cache.
        text = await master_playlist(storage, video)
        has_captions = "TYPE=SUBTITLES" in text
        cache_control = SIGNED_CACHE_CONTROL if store and not has_captions else "private, no-cache"
        metrics.hls_file_served(path, 0 if request.method == "HEAD" else len(text.encode()))
        return _text_answer(request, text, MASTER, cache_control)
    if path == MASTER:
        tracks = await tracks_of(video.id)
        if tracks:
            return await _master_with_captions(request, key, tracks)
    if store is not None:
        return await _presigned(request, store, video, path, key)
    size = await storage.size(key)
    if size is None:
        raise NotFound("There is no such file.")
    return await _proxied(request, key, path, size)


async def _presigned(
    request: ClipSyncRequest, store: PresigningStorage, video: Video, path: str, key: str
) -> HTTPResponse:
    storage = request.app.ctx.backends.storage
    settings = request.app.ctx.settings
    if not path.endswith(".m3u8"):
        if await storage.size(key) is None:
            raise NotFound("There is no such file.")
        url = store.presigned_get(key, settings.storage.playback_url_seconds)
        metrics.hls_file_served(path, 0, presigned=True)
        return redirect(url, status=302, headers={"Cache-Control": SIGNED_CACHE_CONTROL})
    try:
        text = b"".join([chunk async for chunk in storage.read(key)]).decode()
    except FileNotFoundError:
        raise NotFound("There is no such file.") from None
    if not playlists.is_master_playlist(text):
        expires = playback_expiry(settings, video)

        def sign(uri: str) -> str:
            target = playlists.resolve_uri(path, uri)
            if target is None:
                return uri
            return store.presigned_get(keys.hls_key(video.id, target), expires)

        # About 0.2 ms a URI: a two-hour rendition is some 2000 of them, so not on
        # the event loop.
        text = await asyncio.to_thread(playlists.sign_media_playlist, text, sign)
    headers = {"Cache-Control": SIGNED_CACHE_CONTROL}
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(text.encode()))
        return HTTPResponse(status=200, headers=headers, content_type=content_type(path))
    return text_response(text, headers=headers, content_type=content_type(path))


def _text_answer(request: ClipSyncRequest, text: str, path: str, cache: str) -> HTTPResponse:
    headers = {"Cache-Control": cache}
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(text.encode()))
        return HTTPResponse(status=200, headers=headers, content_type=content_type(path))
    return text_response(text, headers=headers, content_type=content_type(path))


async def _master_with_captions(
    request: ClipSyncRequest, key: str, tracks: list[Caption]
) -> HTTPResponse:
    """The stored master playlist with the video's caption tracks merged in."""
    storage = request.app.ctx.backends.storage
    try:
        text = b"".join([chunk async for chunk in storage.read(key)]).decode()
    except FileNotFoundError:
        raise NotFound("There is no such file.") from None
    subtitles = [
        playlists.SubtitleTrack(t.language, t.label, f"{CAPTIONS}{t.language}.m3u8") for t in tracks
    ]
    text = playlists.master_with_subtitles(text, subtitles)
    return _text_answer(request, text, MASTER, "private, no-cache")


async def _caption_file(request: ClipSyncRequest, video: Video, path: str) -> HTTPResponse:
    """A caption track's subtitle playlist or its WebVTT file (module docstring)."""
    match = CAPTION_FILE.match(path)
    if match is None:
        raise NotFound("There is no such file.")
    language, kind = match.groups()
    settings = request.app.ctx.settings
    if kind == "vtt":
        data = await captions_for(request.app.ctx).read(video, language)
        return _text_answer(request, data.decode(), path, "private, no-cache")
    caption = await Caption.get_or_none(video_id=video.id, language=language)
    if caption is None:
        raise NotFound("There is no such file.")
    store = presigning_store(settings, request.app.ctx.backends.storage)
    uri = f"{caption.language}.vtt"
    cache = "private, no-cache"
    if store is not None:
        uri = store.presigned_get(caption.key, playback_expiry(settings, video))
        cache = SIGNED_CACHE_CONTROL
    text = playlists.subtitle_playlist(uri, video.duration or 0)
    return _text_answer(request, text, path, cache)


async def _proxied(request: ClipSyncRequest, key: str, path: str, size: int) -> None:
    storage = request.app.ctx.backends.storage
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
    metrics.hls_file_served(path, 0 if request.method == "HEAD" else end - start + 1)
