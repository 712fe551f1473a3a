"""The video pages: home (what I may watch), upload, my videos, and the watch page.

Each page is rendered on the server with everything it shows, so lists and links work
without JavaScript; the page's own script (the theme's `static/js/<page>.js`) then uses
the JSON API for what needs it: uploading, live status updates, playback and resume.
"""

from __future__ import annotations

import uuid
from typing import Any

from sanic import Blueprint
from sanic.response import HTTPResponse

from clipsync.context import ClipSyncRequest
from clipsync.models import User
from clipsync.services.search import search_visible
from clipsync.services.videos import (
    Page,
    get_visible,
    list_visible,
    page_numbers,
    progress_of,
    video_json,
)
from clipsync.sessions import require_user

bp = Blueprint("video_pages")

HOME_PAGE_SIZE = 24
MY_VIDEOS_PAGE_SIZE = 50


def category_labels(request: ClipSyncRequest) -> dict[str, str]:
    """Category name → label, for showing a video's category."""
    return {c.name: c.label for c in request.app.ctx.settings.categories}


def listing(page: Page, user: User) -> dict[str, Any]:
    pages = max(1, -(-page.total // page.page_size))
    return {
        "videos": [video_json(v, user) for v in page.items],
        "page": page,
        "pages": pages,
    }


@bp.get("/")
async def home(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    number, size = page_numbers(request.args.get("page"), None, HOME_PAGE_SIZE)
    query = request.args.get("q", "").strip()
    if query:
        page = await search_visible(user, query, number, size)
    else:
        page = await list_visible(user, number, size)
    return request.app.ctx.templates.render(
        request,
        "home.html",
        query=query,
        category_names=category_labels(request),
        **listing(page, user),
    )


@bp.get("/upload")
async def upload(request: ClipSyncRequest) -> HTTPResponse:
    require_user(request)
    return request.app.ctx.templates.render(
        request, "upload.html", max_upload_size=request.app.ctx.settings.uploads.max_size
    )


@bp.get("/videos")
async def my_videos(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    number, size = page_numbers(request.args.get("page"), None, MY_VIDEOS_PAGE_SIZE)
    page = await list_visible(user, number, size, mine=True)
    return request.app.ctx.templates.render(
        request, "my_videos.html", category_names=category_labels(request), **listing(page, user)
    )


@bp.get("/watch/<video_id:uuid>")
async def watch(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = require_user(request)
    video = await get_visible(user, video_id)
    position = await progress_of(user, video)
    return request.app.ctx.templates.render(
        request,
        "watch.html",
        video=video_json(video, user),
        resume_at=position or 0,
        category_names=category_labels(request),
    )
