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
from clipsync.services import browse, disk_space, grants, likes, quotas, search, videos
from clipsync.services.library import library_for
from clipsync.services.source_replacement import source_replacement_for
from clipsync.services.thumbnails import (
    MAX_POSTER_BYTES,
    poster_url,
    thumbnails_for,
    thumbnails_json,
)
from clipsync.services.thumbnails import too_large as too_large_image
from clipsync.services.uploads import too_large
from clipsync.sessions import require_user

bp = Blueprint("api_videos", url_prefix="/api/videos")
# Room for the multipart framing around the file itself.
MULTIPART_OVERHEAD = 64 * 1024
# `{"candidate": n}` is a few bytes.
MAX_JSON_BODY = 1024


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
            user, body.get("fileKey"), body.get("title"), body.get("description"),
            body.get("tags"), body.get("category"),
        )  # fmt: skip
    else:
        video = await uploads.register(
            user, body.get("videoId"), body.get("title"), body.get("description"),
            body.get("tags"), body.get("category"),
        )  # fmt: skip
    plugins = request.app.ctx.plugins
    return json_response({"video": await videos.filtered_json(plugins, video, user)}, status=201)


@bp.get("/")
async def list_videos(request: ClipSyncRequest) -> HTTPResponse:
    """Numbered pages (`page`, with a `total` counted up to a limit), or with `after`
    (empty for the first) keyset pages answered as `items` and the `next` cursor.

    `scope=feed`: only what the home feed shows (see `services.videos`).
    `category`, `tag`, `sort` (newest, views, title): a browsed list, keyset pages only
    (see `services.browse`)."""
    user = require_user(request)
    plugins = request.app.ctx.plugins
    page, size = videos.page_numbers(request.args.get("page"), request.args.get("pageSize"))
    mine = request.args.get("mine") in ("1", "true")
    scope = videos.scope_of(request.args.get("scope"))
    query = request.args.get("q", "").strip()
    if request.args.get("shared") in ("1", "true"):
        # Shared with me by name (services/grants.py): numbered pages, nothing else.
        if query or mine or "after" in request.args:
            raise BadRequest("shared lists by page; not with q, mine or after.")
        found = await grants.shared_with(user, page, size)
        await likes.add_counts(found.items, user)
        items = await videos.filtered_list(plugins, found.items, user)
        return json_response(
            {"items": items, "total": found.total, "totalIsLowerBound": False, "page": page}
            | {"pageSize": size}
        )
    # `?after=` (blank) asks for the first keyset page, so blanks are kept here.
    args = request.get_args(keep_blank_values=True)
    narrowed = browse.browse_of(
        request.app.ctx.settings, args.get("category"), args.get("tag"), args.get("sort")
    )
    if narrowed.narrowed:
        if query or mine or "page" in args:
            raise BadRequest("category, tag and sort page with after; not with q, mine or page.")
        analytics = request.app.ctx.analytics.backend
        found = await browse.list_browse(
            user, narrowed, args.get("after") or None, size, scope, analytics
        )
        await likes.add_counts(found.items, user)
        return json_response(
            {"items": await videos.filtered_list(plugins, found.items, user), "next": found.next}
        )
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
    """The uploader changes `title`, `description` and/or `tags`; anyone else gets 404."""
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


@bp.get("/<video_id:uuid>/thumbnails")
async def thumbnails(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """The frames the uploader (or a moderator) may make the poster; others get 404."""
    user = require_user(request)
    video, numbers = await thumbnails_for(request.app.ctx).candidates(user, video_id)
    return json_response(thumbnails_json(video, numbers))


@bp.put("/<video_id:uuid>/thumbnail", stream=True)
async def set_thumbnail(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """`{"candidate": n}` picks a frame; a multipart `file` uploads an image instead."""
    user = require_user(request)
    service = thumbnails_for(request.app.ctx)
    declared = request.headers.get("content-length", "")
    if request.headers.get("content-type", "").startswith("multipart/"):
        if declared.isdigit() and int(declared) > MAX_POSTER_BYTES + MULTIPART_OVERHEAD:
            raise too_large_image()  # refused before a byte is read
        upload = StreamedFile(request, "file")
        await upload.open()
        video = await service.upload(user, video_id, upload.chunks())
    else:
        if declared.isdigit() and int(declared) > MAX_JSON_BODY:
            raise BadRequest('Send {"candidate": n}, or the image as multipart/form-data.')
        await request.receive_body()
        video = await service.choose(user, video_id, json_object(request).get("candidate"))
    return json_response(
        {
            "video": await videos.filtered_json(request.app.ctx.plugins, video, user),
            "poster": poster_url(video),
        }
    )


@bp.post("/<video_id:uuid>/source", stream=True)
async def replace_source(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """A new file for the video (multipart `file`), checked as an upload, then transcoded
    again; the uploader or a moderator of the video, others get 404."""
    user = require_user(request)
    settings = request.app.ctx.settings
    declared = request.headers.get("content-length", "")
    size = int(declared) if declared.isdigit() else 0
    if size > settings.uploads.max_size + MULTIPART_OVERHEAD:
        raise too_large(settings)
    replacing = source_replacement_for(request.app.ctx)
    video = await replacing.prepare(user, video_id, size)  # before a byte is read
    if size:
        await disk_space.ensure_room_for_upload(settings, request.app.ctx.backends.storage, size)
    upload = StreamedFile(request, "file")
    await upload.open()
    video = await replacing.replace(
        user, video, upload.filename, upload.chunks(), upload.content_type
    )
    plugins = request.app.ctx.plugins
    return json_response({"video": await videos.filtered_json(plugins, video, user)}, status=202)


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
