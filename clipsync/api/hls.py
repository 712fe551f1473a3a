"""`/hls/<video id>/…`: the HLS tree, poster and sprite, authorised on every request.

Nothing stored is public by path. A request is authorised in one of two ways:

- by the viewer: the session (cookie or bearer token) and the visibility rule for
  that user and that video, checked on every request; the path must name a file of
  that video's HLS tree;
- by its URL (`?sub=…&exp=…&sig=…`, clipsync/delivery.py): a segment, init segment
  or image is sent on a valid signature alone, with no database query and no session
  lookup (the session middleware skips the token for these routes, `ctx_signed_urls`);
  a signed playlist or caption file (a stream link, services/stream_links.py) is also
  checked against its subject and the visibility rule.

How the bytes go out once a request is allowed:

- local storage, and object storage with `[storage] playback = "proxy"`: each media
  playlist is served with its segment and init URIs signed for the viewer
  (`playlists.with_signed_uris`), so the player's segment requests take the fast
  path. Local files go out with the kernel's sendfile (clipsync/sendfile.py), byte
  ranges honoured, or, with `[delivery] accel_redirect_prefix`, as an empty answer
  whose `X-Accel-Redirect` header makes the front (deploy/nginx) send them. Object
  storage in proxy mode streams through the app;
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

While a video is PROCESSING, its uploader and those who may moderate it may watch
what the transcode has finished (services/early_playback.py), through their session
only: its master and media playlists grow, so they go out with `no-cache` (and the
media playlists, which carry signed URLs, `no-store`). Everyone else, share and
stream links included, gets a 404 until it is READY.
"""

from __future__ import annotations

import asyncio
import math
import re
import stat
import time
import uuid
from dataclasses import dataclass

from sanic import Blueprint
from sanic.response import HTTPResponse, redirect
from sanic.response import text as text_response

from clipsync import delivery, metrics
from clipsync.api.share_links import link_still_open, shared_hls_video
from clipsync.backends import PresigningStorage
from clipsync.context import ClipSyncRequest
from clipsync.errors import ClipSyncError, NotFound
from clipsync.media import playlists
from clipsync.models import Caption, User, Video, VideoStatus
from clipsync.sendfile import send_file
from clipsync.services import stream_links
from clipsync.services.captions import captions_for
from clipsync.services.early_playback import may_watch_early
from clipsync.services.master_playlist import master_playlist
from clipsync.services.share_links import split_hls_path
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
# The playlists of a video still transcoding: they grow, re-checked on every fetch.
GROWING_MASTER_CACHE = "private, no-cache"
GROWING_CACHE_CONTROL = "private, no-cache, no-store"
# A file whose URL is signed or versioned: what that URL names never changes.
IMMUTABLE_CACHE = "private, max-age=31536000, immutable"
# Uploaded posters: a new upload is a new name (storage/keys.py).
VERSIONED = ("posters/",)
# A media playlist longer than this (some 500 segments) is signed off the event loop.
BIG_PLAYLIST = 32 * 1024
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


@dataclass(frozen=True)
class Viewer:
    """Who a playlist is written for: the subject its signed URLs carry.

    `until`: the expiry of the signed URL this viewer came with (a stream link), which
    the URIs of the playlists it is given carry on; None for a signed-in request.
    """

    user: User
    subject: str
    until: int | None = None


@bp.route("/hls/<video_id:uuid>/<path:path>", methods=["GET", "HEAD"], ctx_signed_urls=True)
async def hls_file(request: ClipSyncRequest, video_id: uuid.UUID, path: str) -> HTTPResponse | None:
    settings = request.app.ctx.settings
    # `share/<token>/<file>`: watching through a share link (api/share_links.py).
    token, path = split_hls_path(path)
    grant = None
    if delivery.carries_signature(request.args):
        grant = delivery.signer_for(settings).verify(video_id, path, request.args)
        if not delivery.needs_viewer(path):
            await link_still_open(video_id, grant.subject)  # a revoked link: 404 at once
            # The fast path: the signature alone, no database and no session.
            return await _send(request, video_id, path, IMMUTABLE_CACHE)
    if token is not None:  # the link decides, not the visibility rule
        video, user, subject = await shared_hls_video(request, video_id, token)
        viewer = Viewer(user, subject)
    else:
        viewer = await _viewer(request, grant)
        video = await read_visible(viewer.user, video_id)
    growing = video.status not in PLAYABLE
    if growing and (token or viewer.until is not None or not may_watch_early(viewer.user, video)):
        raise NotFound("This video is not ready to play yet.")
    if path.startswith(CAPTIONS):
        return await _caption_file(request, video, path, viewer)
    try:
        key = keys.hls_key(video.id, path)
    except ValueError:
        raise NotFound("There is no such file.") from None
    storage = request.app.ctx.backends.storage
    store = presigning_store(settings, storage)
    if path == MASTER:
        # Rendered once per video, captions merged in, and kept in the cache. A Range
        # header (ffmpeg sends `bytes=0-`) is ignored: a playlist is always whole.
        text = await master_playlist(storage, video)
        if viewer.until is not None:
            text = _signed_master(settings, video, text, viewer)
        has_captions = "TYPE=SUBTITLES" in text
        plain = store and not has_captions and viewer.until is None
        cache_control = SIGNED_CACHE_CONTROL if plain or viewer.until else "private, no-cache"
        if growing:
            cache_control = GROWING_MASTER_CACHE
        metrics.hls_file_served(path, 0 if request.method == "HEAD" else len(text.encode()))
        return _text_answer(request, text, MASTER, cache_control)
    playlist_cache = GROWING_CACHE_CONTROL if growing else SIGNED_CACHE_CONTROL
    if store is not None:
        return await _presigned(request, store, video, path, key, playlist_cache)
    if path.endswith(".m3u8"):
        return await _signed_media_playlist(request, video, path, key, viewer, playlist_cache)
    return await _send(request, video.id, path, _file_cache(path))


async def _viewer(request: ClipSyncRequest, grant: delivery.Grant | None) -> Viewer:
    """The person a playlist request is for: its signed URL's subject, or its session."""
    if grant is not None:
        user = await stream_links.viewer_of(request.app.ctx.accounts, grant.subject)
        return Viewer(user, grant.subject, grant.expires)
    # Share links are resolved before this (`hls_file`): Viewer(<who watches>,
    # delivery.link_subject(<link id>)), so every URL its playlists hand out names
    # the link (api/share_links.py `shared_hls_video`, `link_still_open`).
    user = require_user(request)
    return Viewer(user, delivery.session_subject(user.id, request.ctx.session_id))


def _signed_master(settings: Settings, video: Video, text: str, viewer: Viewer) -> str:
    """The master playlist of a stream link: each URI signed for as long as the link."""
    signer = delivery.signer_for(settings)
    until = viewer.until or 0

    def query(path: str, _start: float) -> str:
        return signer.query(video.id, path, viewer.subject, until)

    return playlists.with_signed_uris(text, MASTER, query)


async def _signed_media_playlist(
    request: ClipSyncRequest,
    video: Video,
    path: str,
    key: str,
    viewer: Viewer,
    cache_control: str = SIGNED_CACHE_CONTROL,
) -> HTTPResponse:
    """A media playlist from local storage (or proxied), its segments given signed URLs."""
    storage = request.app.ctx.backends.storage
    settings = request.app.ctx.settings
    try:
        text = b"".join([chunk async for chunk in storage.read(key)]).decode()
    except FileNotFoundError:
        raise NotFound("There is no such file.") from None
    if not playlists.is_master_playlist(text):
        signer = delivery.signer_for(settings)
        now = time.time()

        def query(target: str, start: float) -> str:
            expires = delivery.segment_expiry(settings, start, now)
            return signer.query(video.id, target, viewer.subject, expires)

        if len(text) > BIG_PLAYLIST:
            text = await asyncio.to_thread(playlists.with_signed_uris, text, path, query)
        else:
            text = playlists.with_signed_uris(text, path, query)
    metrics.hls_file_served(path, 0 if request.method == "HEAD" else len(text.encode()))
    return _text_answer(request, text, path, cache_control)


def _file_cache(path: str) -> str:
    """Cache-Control of a file fetched with the session: only versioned names are immutable."""
    if path.startswith(VERSIONED):
        return IMMUTABLE_CACHE
    # Segments and images of a re-transcode replace these under the same names.
    return "private, max-age=86400"


async def _send(
    request: ClipSyncRequest, video_id: uuid.UUID, path: str, cache_control: str
) -> HTTPResponse | None:
    """Send a file of the tree: by the front (X-Accel-Redirect), by sendfile, or proxied."""
    try:
        key = keys.hls_key(video_id, path)
    except ValueError:
        raise NotFound("There is no such file.") from None
    storage = request.app.ctx.backends.storage
    if not isinstance(storage, delivery.FileStorage):
        size = await storage.size(key)
        if size is None:
            raise NotFound("There is no such file.")
        return await _proxied(request, key, path, size, cache_control)
    file = storage.path(key)
    try:
        found = file.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound("There is no such file.") from None
    if not stat.S_ISREG(found.st_mode):
        raise NotFound("There is no such file.")
    size = found.st_size
    accel = delivery.accel_path(request.app.ctx.settings, key)
    if accel is not None:
        metrics.hls_file_served(path, 0)
        headers = {"X-Accel-Redirect": accel, "Cache-Control": cache_control}
        return HTTPResponse(status=200, headers=headers, content_type=content_type(path))
    span = byte_range(request.headers.get("range"), size)
    try:
        headers = {"Cache-Control": cache_control}
        await send_file(request, file, span, size, headers=headers, content_type=content_type(path))
    except FileNotFoundError:
        raise NotFound("There is no such file.") from None
    sent = 0 if request.method == "HEAD" else (span[1] - span[0] + 1 if span else size)
    metrics.hls_file_served(path, sent)
    return None


async def _presigned(
    request: ClipSyncRequest,
    store: PresigningStorage,
    video: Video,
    path: str,
    key: str,
    playlist_cache: str = SIGNED_CACHE_CONTROL,
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
    headers = {"Cache-Control": playlist_cache}
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


async def _caption_file(
    request: ClipSyncRequest, video: Video, path: str, viewer: Viewer
) -> HTTPResponse:
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
    if viewer.until is not None and store is None:
        # A stream link: the WebVTT file is fetched with no cookie either.
        vtt = f"{CAPTIONS}{caption.language}.vtt"
        signer = delivery.signer_for(settings)
        uri += "?" + signer.query(video.id, vtt, viewer.subject, viewer.until)
        cache = SIGNED_CACHE_CONTROL
    if store is not None:
        uri = store.presigned_get(caption.key, playback_expiry(settings, video))
        cache = SIGNED_CACHE_CONTROL
    text = playlists.subtitle_playlist(uri, video.duration or 0)
    return _text_answer(request, text, path, cache)


async def _proxied(
    request: ClipSyncRequest, key: str, path: str, size: int, cache_control: str
) -> None:
    """A file of object storage streamed through the app (`[storage] playback = "proxy"`)."""
    storage = request.app.ctx.backends.storage
    requested = byte_range(request.headers.get("range"), size)
    start, end = requested or (0, size - 1)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start + 1),
        # Authorised content: never in a shared cache.
        "Cache-Control": cache_control,
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
