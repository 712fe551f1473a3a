"""`/api/playlists`: a person's own ordered lists of videos (see `services/playlists.py`).

Only the owner changes a playlist; whoever may open it reads it, with the videos they
may see; everyone else gets 404.
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.response import HTTPResponse, empty
from sanic.response import json as json_response

from clipsync.api.bodies import json_object
from clipsync.context import ClipSyncRequest
from clipsync.services import likes, playlists
from clipsync.services.videos import filtered_list
from clipsync.sessions import require_user

bp = Blueprint("api_playlists", url_prefix="/api/playlists")


@bp.get("/")
async def own(request: ClipSyncRequest) -> HTTPResponse:
    """The caller's playlists, most recently changed first."""
    user = require_user(request)
    found = await playlists.own(user)
    return json_response({"items": [playlists.playlist_json(p, n) for p, n in found]})


@bp.post("/")
async def create(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    playlist = await playlists.create(user, json_object(request))
    return json_response({"playlist": playlists.playlist_json(playlist, 0)}, status=201)


@bp.get("/<playlist_id:int>")
async def detail(request: ClipSyncRequest, playlist_id: int) -> HTTPResponse:
    """The playlist and, in order, the videos of it the caller may watch."""
    user = require_user(request)
    opened = await playlists.open_playlist(user, playlist_id)
    await likes.add_counts(opened.videos, user)
    items = await filtered_list(request.app.ctx.plugins, opened.videos, user)
    return json_response(
        {"playlist": playlists.playlist_json(opened.playlist, len(items)), "items": items}
    )


@bp.patch("/<playlist_id:int>")
async def edit(request: ClipSyncRequest, playlist_id: int) -> HTTPResponse:
    user = require_user(request)
    playlist = await playlists.update(user, playlist_id, json_object(request))
    return json_response({"playlist": playlists.playlist_json(playlist)})


@bp.delete("/<playlist_id:int>")
async def delete(request: ClipSyncRequest, playlist_id: int) -> HTTPResponse:
    user = require_user(request)
    await playlists.delete(user, playlist_id)
    return empty()


@bp.post("/<playlist_id:int>/items")
async def add_item(request: ClipSyncRequest, playlist_id: int) -> HTTPResponse:
    """`{"videoId"}` goes at the end; a video the owner may not see is 404."""
    user = require_user(request)
    item = await playlists.add(user, playlist_id, json_object(request).get("videoId"))
    return json_response({"videoId": str(item.video_id), "position": item.position}, status=201)


@bp.delete("/<playlist_id:int>/items/<video_id:str>")
async def remove_item(request: ClipSyncRequest, playlist_id: int, video_id: str) -> HTTPResponse:
    user = require_user(request)
    await playlists.remove(user, playlist_id, video_id)
    return empty()


@bp.put("/<playlist_id:int>/order")
async def reorder(request: ClipSyncRequest, playlist_id: int) -> HTTPResponse:
    """`{"videoIds": [..]}`: those first, in that order; the others after, as they were."""
    user = require_user(request)
    await playlists.reorder(user, playlist_id, json_object(request).get("videoIds"))
    opened = await playlists.open_playlist(user, playlist_id)
    items = await filtered_list(request.app.ctx.plugins, opened.videos, user)
    return json_response(
        {"playlist": playlists.playlist_json(opened.playlist, len(items)), "items": items}
    )
