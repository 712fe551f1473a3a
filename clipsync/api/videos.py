"""`/api/videos`: upload, register, list, detail, resume points and live status."""

from __future__ import annotations

import asyncio
import json
import uuid

from sanic import Blueprint
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from clipsync.api.bodies import json_object
from clipsync.api.multipart import StreamedFile
from clipsync.context import ClipSyncRequest
from clipsync.errors import Unauthorized
from clipsync.models import Video
from clipsync.services import disk_space, search, videos
from clipsync.services.uploads import too_large
from clipsync.sessions import request_token, require_user

bp = Blueprint("api_videos", url_prefix="/api/videos")
# Room for the multipart framing around the file itself.
MULTIPART_OVERHEAD = 64 * 1024
EVENT_POLL_SECONDS = 1.0
EVENT_KEEPALIVE_SECONDS = 15.0


@bp.post("/upload-local", stream=True)
async def upload_local(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    settings = request.app.ctx.settings
    declared = request.headers.get("content-length")
    if (
        declared
        and declared.isdigit()
        and int(declared) > settings.uploads.max_size + MULTIPART_OVERHEAD
    ):
        raise too_large(settings)
    if declared and declared.isdigit():
        # Refused before a byte is read, rather than failing with the disk full.
        await disk_space.ensure_room_for_upload(
            settings, request.app.ctx.backends.storage, int(declared)
        )
    upload = StreamedFile(request, "file")
    await upload.open()
    video = await request.app.ctx.uploads.receive(
        user, upload.filename, upload.chunks(), upload.content_type
    )
    return json_response({"videoId": str(video.id)}, status=201)


@bp.post("/register")
async def register(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    body = json_object(request)
    uploads = request.app.ctx.uploads
    if "fileKey" in body:  # a direct upload (see api/direct_upload.py)
        video = await uploads.register_key(
            user, body.get("fileKey"), body.get("title"), body.get("description")
        )
    else:
        video = await uploads.register(
            user, body.get("videoId"), body.get("title"), body.get("description")
        )
    return json_response({"video": videos.video_json(video, user)}, status=201)


@bp.get("/")
async def list_videos(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    page, size = videos.page_numbers(request.args.get("page"), request.args.get("pageSize"))
    mine = request.args.get("mine") in ("1", "true")
    query = request.args.get("q", "").strip()
    if query:
        found = await search.search_visible(user, query, page, size)
    else:
        found = await videos.list_visible(user, page, size, mine=mine)
    return json_response(
        {
            "items": [videos.video_json(v, user) for v in found.items],
            "total": found.total,
            "page": found.page,
            "pageSize": found.page_size,
        }
    )


@bp.get("/<video_id:uuid>")
async def detail(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = require_user(request)
    video = await videos.get_visible(user, video_id)
    return json_response(
        {
            "video": videos.video_json(video, user),
            "userProgress": await videos.progress_of(user, video),
        }
    )


@bp.put("/<video_id:uuid>/progress")
async def save_progress(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = require_user(request)
    video = await videos.get_visible(user, video_id)
    position = await videos.save_progress(user, video, json_object(request).get("position"))
    return json_response({"position": position})


@bp.get("/events")
async def events(request: ClipSyncRequest) -> None:
    """Server-Sent Events: the caller's own videos, each time one changes.

    Jobs run in another process, so changes are found by polling the rows once a
    second; a comment line keeps idle connections open through proxies. The session
    is checked again on every tick, as every request checks it: once it is no longer
    honoured (signed out, account deactivated, role or category changed, token
    expired), a last `event: signed-out` carries the reason and the stream ends.
    """
    user = require_user(request)
    token = request_token(request)
    assert token is not None  # require_user passed, so the request carried one
    accounts = request.app.ctx.accounts
    response = await request.respond(
        content_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    # The headers go out with the first bytes: without these, a client with no videos
    # would not see the stream open (EventSource's `open`) until the first keep-alive.
    await response.send(": connected\n\n")
    seen: dict[str, tuple[object, ...]] = {}
    idle = 0.0
    while True:
        rows = await Video.filter(owner_id=user.id).order_by("-created_at").limit(200)
        sent = False
        for video in rows:
            state = (video.status, video.progress, video.error, video.title, video.poster_key)
            if seen.get(str(video.id)) != state:
                seen[str(video.id)] = state
                data = json.dumps(videos.video_json(video, user))
                await response.send(f"event: video\ndata: {data}\n\n")
                sent = True
        idle = 0.0 if sent else idle + EVENT_POLL_SECONDS
        if idle >= EVENT_KEEPALIVE_SECONDS:
            await response.send(": keep-alive\n\n")
            idle = 0.0
        await asyncio.sleep(EVENT_POLL_SECONDS)
        try:
            user = await accounts.user_for_token(token)
        except Unauthorized as exc:
            # A named event the page acts on (it stops listening instead of reconnecting).
            reason = json.dumps({"message": exc.message})
            await response.send(f"event: signed-out\ndata: {reason}\n\n")
            await response.eof()
            return
