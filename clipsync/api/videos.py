"""`/api/videos`: upload, register, list, detail, edit, delete, resume points, live status."""

from __future__ import annotations

import uuid

from sanic import Blueprint
from sanic.response import HTTPResponse, empty
from sanic.response import json as json_response

from clipsync.api.bodies import json_object
from clipsync.api.live_stream import Send, serve_live
from clipsync.api.multipart import StreamedFile
from clipsync.context import ClipSyncRequest
from clipsync.errors import BadRequest
from clipsync.events import Event
from clipsync.models import User, Video
from clipsync.services import disk_space, likes, quotas, search, videos
from clipsync.services.library import library_for
from clipsync.services.uploads import too_large
from clipsync.sessions import require_user

bp = Blueprint("api_videos", url_prefix="/api/videos")
# Room for the multipart framing around the file itself.
MULTIPART_OVERHEAD = 64 * 1024


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
        await quotas.ensure_allowed(settings, user, int(declared))  # framing counts too
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
    plugins = request.app.ctx.plugins
    return json_response({"video": await videos.filtered_json(plugins, video, user)}, status=201)


@bp.get("/")
async def list_videos(request: ClipSyncRequest) -> HTTPResponse:
    """Numbered pages (`page`, with a `total` counted up to a limit), or with `after`
    (empty for the first) keyset pages answered as `items` and the `next` cursor.

    `scope=feed`: only what the home feed shows (see `services.videos`)."""
    user = require_user(request)
    plugins = request.app.ctx.plugins
    page, size = videos.page_numbers(request.args.get("page"), request.args.get("pageSize"))
    mine = request.args.get("mine") in ("1", "true")
    scope = videos.scope_of(request.args.get("scope"))
    query = request.args.get("q", "").strip()
    # `?after=` (blank) asks for the first keyset page, so blanks are kept here.
    args = request.get_args(keep_blank_values=True)
    if "after" in args:
        if query or "page" in args:
            raise BadRequest("after pages the list; search results and page use page numbers.")
        found = await videos.list_after(user, args.get("after"), size, mine=mine, scope=scope)
        await likes.add_counts(found.items, user)
        return json_response(
            {
                "items": await videos.filtered_list(plugins, found.items, user),
                "next": found.next,
            }
        )
    if query:
        found = await search.search_visible(user, query, page, size, scope)
    else:
        found = await videos.list_visible(user, page, size, mine=mine, scope=scope)
    await likes.add_counts(found.items, user)
    return json_response(
        {
            "items": await videos.filtered_list(plugins, found.items, user),
            "total": found.total,
            "totalIsLowerBound": found.more,
            "page": found.page,
            "pageSize": found.page_size,
        }
    )


@bp.get("/<video_id:uuid>")
async def detail(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = require_user(request)
    video = await videos.read_visible(user, video_id)
    await likes.add_counts([video], user)
    return json_response(
        {
            "video": await videos.filtered_json(request.app.ctx.plugins, video, user),
            "userProgress": await videos.progress_of(user, video),
        }
    )


@bp.patch("/<video_id:uuid>")
async def edit(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """The uploader changes `title` and/or `description`; anyone else gets 404."""
    user = require_user(request)
    video = await library_for(request.app.ctx).edit(user, video_id, json_object(request))
    return json_response(
        {"video": await videos.filtered_json(request.app.ctx.plugins, video, user)}
    )


@bp.delete("/<video_id:uuid>")
async def delete(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """The uploader deletes the video and its files for good; anyone else gets 404."""
    user = require_user(request)
    await library_for(request.app.ctx).delete_own(user, video_id)
    return empty()


@bp.put("/<video_id:uuid>/progress")
async def save_progress(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = require_user(request)
    video = await videos.get_visible(user, video_id)
    position = await videos.save_progress(user, video, json_object(request).get("position"))
    return json_response({"position": position})


@bp.get("/events")
async def events(request: ClipSyncRequest) -> None:
    """Server-Sent Events: the caller's own videos, each time one changes.

    The stream opens with the caller's videos as they are, then sends a video again
    whenever the event bus carries news of it: jobs run in other processes, and the
    bus brings their news to this one, read once per process however many streams
    are open. It ends with the session (see `api/live_stream.py`).
    """
    seen: dict[str, tuple[object, ...]] = {}

    async def send_video(user: User, video: Video, send: Send) -> None:
        state = (video.status, video.progress, video.error, video.title, video.poster_key)
        if seen.get(str(video.id)) != state:
            seen[str(video.id)] = state
            await send("video", await videos.filtered_json(request.app.ctx.plugins, video, user))

    async def opening(user: User, send: Send) -> None:
        for video in await Video.filter(owner_id=user.id).order_by("-created_at").limit(200):
            await send_video(user, video, send)

    async def on_news(user: User, event: Event, send: Send) -> None:
        if event.data.get("ownerId") != user.id or not event.data.get("videoId"):
            return
        # One read per event in this process, however many of the owner's pages are open.
        video = await event.shared("video", lambda: Video.get_or_none(id=event.data["videoId"]))
        if video is not None and video.owner_id == user.id:
            await send_video(user, video, send)

    await serve_live(request, ("video.",), on_news, opening)
