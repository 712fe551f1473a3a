"""The pages that organise the library: browsing a category or a tag, and playlists.

- `/browse/category/<name>` and `/tags/<name>`: the videos of a category or a tag the
  person may see in the feed, newest first, by title or most viewed
  (`services/browse.py`); "More" is the next keyset page, and `browse.js` loads it as
  the reader scrolls.
- `/playlists`: the person's own playlists and a form to make one.
- `/playlists/<id>`: a playlist, with the videos of it the viewer may watch; its owner
  reorders, removes, renames and shares it there (`playlist.js`, through the API).
  Someone who may not open it gets 404.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from sanic import Blueprint
from sanic.response import HTTPResponse, redirect

from clipsync.api.bodies import form_fields
from clipsync.context import ClipSyncRequest
from clipsync.errors import NotFound, ValidationFailed
from clipsync.models import PlaylistAudience, User
from clipsync.services import browse, likes, playlists
from clipsync.services import tags as video_tags
from clipsync.services.videos import FEED, filtered_list
from clipsync.sessions import require_user
from clipsync.web.video_pages import category_labels

bp = Blueprint("organise_pages")

PAGE_SIZE = 24
SORT_LABELS = {"newest": "Newest", "views": "Most viewed", "title": "Title"}
AUDIENCE_LABELS = {
    PlaylistAudience.PRIVATE: "Only me",
    PlaylistAudience.CATEGORY: "People of my category",
    PlaylistAudience.SIGNED_IN: "Anyone signed in",
}


async def _browse_page(
    request: ClipSyncRequest, user: User, heading: str, path: str, category: str, tag: str
) -> HTTPResponse:
    ctx = request.app.ctx
    chosen = browse.browse_of(ctx.settings, category, tag, request.args.get("sort"))
    after = request.args.get("after") or None
    found = await browse.list_browse(user, chosen, after, PAGE_SIZE, FEED, ctx.analytics.backend)
    await likes.add_counts(found.items, user)
    query = {"scope": FEED, "sort": chosen.sort, "pageSize": PAGE_SIZE}
    query |= {"category": category} if category else {"tag": tag}
    more = f"{path}?{urlencode({'sort': chosen.sort, 'after': found.next})}" if found.next else ""
    return ctx.templates.render(
        request,
        "browse.html",
        heading=heading,
        path=path,
        sort=chosen.sort,
        sort_labels=SORT_LABELS,
        videos=await filtered_list(ctx.plugins, found.items, user),
        next_cursor=found.next,
        more_url=more,
        source=f"/api/videos?{urlencode(query)}",
        continued=after is not None,
        category_names=category_labels(request),
    )


@bp.get("/browse/category/<name:str>")
async def browse_category(request: ClipSyncRequest, name: str) -> HTTPResponse:
    user = require_user(request)
    labels = category_labels(request)
    if name not in labels:
        raise NotFound("There is no such category.")
    return await _browse_page(
        request, user, labels[name], f"/browse/category/{quote(name)}", name, ""
    )


@bp.get("/tags/<name:str>")
async def browse_tag(request: ClipSyncRequest, name: str) -> HTTPResponse:
    user = require_user(request)
    tag = await video_tags.tag_named(name) if len(name) <= video_tags.MAX_LENGTH else None
    heading = f"#{tag.label if tag else name.strip()}"
    return await _browse_page(request, user, heading, f"/tags/{quote(name)}", "", name)


@bp.get("/playlists")
async def my_playlists(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    return await _playlists_page(request, user)


async def _playlists_page(
    request: ClipSyncRequest, user: User, status: int = 200, **form: Any
) -> HTTPResponse:
    return request.app.ctx.templates.render(
        request,
        "playlists.html",
        status=status,
        playlists=[playlists.playlist_json(p, n) for p, n in await playlists.own(user)],
        audience_labels={str(a): label for a, label in AUDIENCE_LABELS.items()},
        **form,
    )


@bp.post("/playlists")
async def create_playlist(request: ClipSyncRequest) -> HTTPResponse:
    """The "New playlist" form; a refused value shows the page again with the reason."""
    user = require_user(request)
    fields = form_fields(request, "title", "description", "audience")
    try:
        playlist = await playlists.create(user, fields)
    except ValidationFailed as error:
        return await _playlists_page(
            request, user, status=error.status, error=error.message, form=fields
        )
    return redirect(f"/playlists/{playlist.id}", status=303)


@bp.get("/playlists/<playlist_id:int>")
async def playlist_page(request: ClipSyncRequest, playlist_id: int) -> HTTPResponse:
    user = require_user(request)
    ctx = request.app.ctx
    opened = await playlists.open_playlist(user, playlist_id)
    await likes.add_counts(opened.videos, user)
    owner = opened.playlist.owner_id == user.id
    return ctx.templates.render(
        request,
        "playlist.html",
        playlist=playlists.playlist_json(opened.playlist, len(opened.videos)),
        videos=await filtered_list(ctx.plugins, opened.videos, user),
        hidden=opened.total - len(opened.videos),
        owner=owner,
        audience_labels={str(a): label for a, label in AUDIENCE_LABELS.items()},
        category_names=category_labels(request),
    )
