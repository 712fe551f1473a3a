"""The video pages: home (what I may watch), upload, my videos, the watch page, and the
uploader's edit page with its delete confirmation (plain forms).

Each page is rendered on the server with everything it shows, so lists and links work
without JavaScript; the page's own script (the theme's `static/js/<page>.js`) then uses
the JSON API for what needs it: uploading, live status updates, playback and resume.
"""

from __future__ import annotations

import uuid
from typing import Any

from markupsafe import Markup
from sanic import Blueprint
from sanic.response import HTTPResponse, redirect

from clipsync.api.bodies import form_fields
from clipsync.context import ClipSyncRequest
from clipsync.errors import ClipSyncError, NotFound
from clipsync.media.captions import MAX_BYTES as MAX_CAPTION_BYTES
from clipsync.models import Role, User
from clipsync.rich_text import description_html
from clipsync.services import early_playback, playlists, quotas, video_audience
from clipsync.services import tags as video_tags
from clipsync.services.captions import caption_json, tracks_of
from clipsync.services.library import library_for
from clipsync.services.memberships import categories_of
from clipsync.services.search import search_visible
from clipsync.services.videos import (
    FEED,
    Page,
    encode_cursor,
    filtered_json,
    filtered_list,
    get_visible,
    list_visible,
    page_numbers,
    progress_of,
    video_json,
)
from clipsync.services.view_counts import view_count
from clipsync.sessions import require_user
from clipsync.web.page_panels import watch_panels
from clipsync.web.sharing_pages import embed_code, may_download, start_time

bp = Blueprint("video_pages")

HOME_PAGE_SIZE = 24
MY_VIDEOS_PAGE_SIZE = 50


def category_labels(request: ClipSyncRequest) -> dict[str, str]:
    """Category name → label, for showing a video's category."""
    return {c.name: c.label for c in request.app.ctx.settings.categories}


async def listing(request: ClipSyncRequest, page: Page, user: User) -> dict[str, Any]:
    pages = max(1, -(-page.total // page.page_size))
    if page.more:  # counting stopped: there is always a further page
        pages = max(pages, page.page + 1)
    return {
        "videos": await filtered_list(request.app.ctx.plugins, page.items, user),
        "page": page,
        "pages": pages,
    }


@bp.get("/")
async def home(request: ClipSyncRequest) -> HTTPResponse:
    """The feed: the published videos the person may see (`FEED`), or the matches of
    a search among them. Every status is on the moderation and library pages."""
    user = require_user(request)
    number, size = page_numbers(request.args.get("page"), None, HOME_PAGE_SIZE)
    query = request.args.get("q", "").strip()
    if query:
        page = await search_visible(user, query, number, size, FEED)
    else:
        page = await list_visible(user, number, size, scope=FEED)
    shown = await listing(request, page, user)
    # Where home.js's infinite scroll goes on (GET /api/videos?after=); search results
    # keep their numbered pages.
    more = page.page < shown["pages"]
    next_cursor = encode_cursor(page.items[-1]) if not query and page.items and more else None
    return request.app.ctx.templates.render(
        request,
        "home.html",
        query=query,
        category_names=category_labels(request),
        # Admins' feed holds every category's videos: the page says so.
        feed_all_categories=user.role == Role.ADMIN,
        next_cursor=next_cursor,
        page_size=size,
        **shown,
    )


@bp.get("/upload")
async def upload(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    settings = request.app.ctx.settings
    labels = category_labels(request)
    return request.app.ctx.templates.render(
        request,
        "upload.html",
        max_upload_size=settings.uploads.max_size,
        quota=await quotas.usage(settings, user),
        # Where a new video may start: every category the uploader belongs to, the
        # primary one first (and chosen unless they pick another).
        upload_categories=[
            {"name": name, "label": labels.get(name, name)} for name in categories_of(user)
        ],
        caption_max_size=MAX_CAPTION_BYTES,
    )


@bp.get("/videos")
async def my_videos(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    number, size = page_numbers(request.args.get("page"), None, MY_VIDEOS_PAGE_SIZE)
    page = await list_visible(user, number, size, mine=True)
    return request.app.ctx.templates.render(
        request,
        "my_videos.html",
        category_names=category_labels(request),
        deleted=request.args.get("deleted") == "1",
        **await listing(request, page, user),
    )


@bp.get("/watch/<video_id:uuid>")
async def watch(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """The player and what is around it: uploader, views, description, sharing."""
    user = require_user(request)
    video = await get_visible(user, video_id)
    position = await progress_of(user, video)
    await video.fetch_related("owner")
    base = request.app.ctx.settings.server.base_url
    shown = await filtered_json(request.app.ctx.plugins, video, user)
    # Still transcoding: its uploader and moderators may watch what is ready so far.
    early = await early_playback.watch_state(request.app.ctx.backends.storage, user, video)
    return request.app.ctx.templates.render(
        request,
        "watch.html",
        video=shown,
        early=early and early | {"video": shown | {"hls": early["hls"], "playable": True}},
        plugin_panels=await watch_panels(request, video, user),
        resume_at=position or 0,
        start_at=start_time(request.args.get("t")),
        category_names=category_labels(request),
        uploader=video.owner.to_public(),
        views=await view_count(request.app.ctx.analytics.backend, video),
        description=Markup(description_html(video.description)),
        download_url=f"/videos/{video.id}/download" if may_download(request, video) else None,
        share_url=f"{base}/watch/{video.id}",
        embed_code=embed_code(f"{base}/embed/{video.id}", video.title or "Untitled"),
        # `?playlist=<id>`: playing a playlist, which goes on to its next video.
        playlist=await playlists.next_in(user, request.args.get("playlist"), video.id)
        if request.args.get("playlist")
        else None,
    )


@bp.get("/videos/<video_id:uuid>/edit")
async def edit_video(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = require_user(request)
    video = await library_for(request.app.ctx).owned(user, video_id)
    await video_tags.attach([video])
    await video_audience.attach([video])  # its categories, for the sharing panel
    return await edit_page(request, video_json(video, user), saved=request.args.get("saved") == "1")


@bp.post("/videos/<video_id:uuid>/edit")
async def save_video(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """Save the form; a refused value shows the form again, as typed, with the reason."""
    user = require_user(request)
    library = library_for(request.app.ctx)
    fields = form_fields(request, "title", "description")
    if "tags" in (request.form or {}):  # a theme's form without the field keeps the tags
        fields |= form_fields(request, "tags")
    try:
        await library.edit(user, video_id, fields)
    except NotFound:
        raise
    except ClipSyncError as error:
        video = video_json(await library.owned(user, video_id), user)
        return await edit_page(request, video | fields, status=error.status, error=error.message)
    return redirect(f"/videos/{video_id}/edit?saved=1", status=303)


async def edit_page(
    request: ClipSyncRequest,
    video: dict[str, Any],
    *,
    status: int = 200,
    error: str = "",
    saved: bool = False,
    **caption_notices: Any,
) -> HTTPResponse:
    """The edit page; `caption_notices`: the caption form's refusal (`caption_pages.py`)."""
    if "tags" not in video:  # the form must show them, or saving it would drop them
        video = video | {"tags": await video_tags.labels_of(video["id"])}
    return request.app.ctx.templates.render(
        request,
        "edit_video.html",
        status=status,
        video=video,
        error=error,
        saved=saved,
        reapprove_on_edit=request.app.ctx.settings.moderation.reapprove_on_edit,
        captions=[caption_json(c) for c in await tracks_of(video["id"])],
        caption_max_size=MAX_CAPTION_BYTES,
        **caption_notices,
    )


@bp.get("/videos/<video_id:uuid>/delete")
async def confirm_delete(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """The confirmation step: nothing is deleted until this page's form is sent."""
    user = require_user(request)
    video = await library_for(request.app.ctx).owned(user, video_id)
    return request.app.ctx.templates.render(
        request,
        "delete_video.html",
        video=video_json(video, user),
        action=f"/videos/{video.id}/delete",
        cancel=f"/videos/{video.id}/edit",
    )


@bp.post("/videos/<video_id:uuid>/delete")
async def delete_video(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = require_user(request)
    await library_for(request.app.ctx).delete_own(user, video_id)
    return redirect("/videos?deleted=1", status=303)
