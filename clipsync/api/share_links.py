"""Share links over HTTP: making, listing and revoking them (`/api/videos/<id>/links`),
opening one (`/api/share/<token>`), and the link viewer's HLS files.

The rules are services/share_links.py's. Here: reading the request (who asks, from
where, the proof of a link's password in its cookie or the password in the
`X-Share-Password` header) and shaping the answers.

A link viewer's player reads the video's HLS tree under `/hls/<id>/share/<token>/`
(`master.m3u8`, the media playlists, segments, captions, poster): the same route as
everyone's (api/hls.py), which asks `shared_hls_video` instead of the visibility rule
when the path starts with `share/`. Relative URIs in the playlists keep the prefix,
so every playlist and every segment request carries the link and is checked against
it: a revoked link's next request is a 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from sanic import Blueprint
from sanic.response import HTTPResponse, empty, json

from clipsync import delivery
from clipsync.api.bodies import json_object
from clipsync.context import ClipSyncRequest
from clipsync.errors import ClipSyncError, NotFound
from clipsync.models import Role, ShareLink, User, Video
from clipsync.services import share_links
from clipsync.services.videos import filtered_json
from clipsync.sessions import require_user

bp = Blueprint("api_share_links", url_prefix="/api")
PASSWORD_HEADER = "X-Share-Password"


class PasswordNeeded(ClipSyncError):
    status = 401
    code = "password_required"
    default_message = "This link asks for a password."


def address_of(request: ClipSyncRequest) -> str:
    return request.remote_addr or request.ip or ""


def actor_of(request: ClipSyncRequest) -> User | None:
    return getattr(request.ctx, "actor", None)


async def opened_link(request: ClipSyncRequest, token: str) -> ShareLink:
    """The link `token` opens for this request (the viewer rule, then the link's own);
    its password proven by the cookie, or given in the header (rate-limited)."""
    share_links.may_open(request.app.ctx.settings.sharing.allow_public_links, actor_of(request))
    link = await share_links.link_access(token)
    proof = request.cookies.get(share_links.proof_cookie(link))
    if share_links.unlocked(link, token, proof):
        return link
    password = request.headers.get(PASSWORD_HEADER)
    if password is None:
        raise PasswordNeeded(
            f"This link asks for a password: send it in the {PASSWORD_HEADER} header."
        )
    await share_links.unlock(link, token, password, address_of(request), guesses_of(request))
    return link


def guesses_of(request: ClipSyncRequest) -> share_links.Guesses:
    """This app's count of share-link password guesses (shared through Redis when set)."""
    return request.app.ctx.share_link_guesses


def viewer_of(request: ClipSyncRequest) -> User:
    """Who `video_json` shows the video to: the signed-in person, or nobody in particular."""
    return actor_of(request) or User(id=0, role=Role.USER, category="", is_active=False)


async def shared_json(request: ClipSyncRequest, link: ShareLink, token: str) -> dict[str, Any]:
    """The video of `link` as its JSON, its files reached through the link."""
    video: Video = link.video
    data = await filtered_json(request.app.ctx.plugins, video, viewer_of(request))
    return share_links.shared_video_json(data, video.id, token)


async def shared_hls_video(
    request: ClipSyncRequest, video_id: uuid.UUID, token: str
) -> tuple[Video, User, str]:
    """(the video, who watches, the subject of the URLs signed for them) of an HLS
    request made through a link (api/hls.py), checked on every request: NotFound once
    the link is revoked or expired, or when it names another video."""
    try:
        link = await opened_link(request, token)
    except PasswordNeeded:
        raise NotFound("There is no such video.") from None
    if str(link.video_id) != str(video_id):
        raise NotFound("There is no such video.")
    return link.video, viewer_of(request), delivery.link_subject(link.id)


async def link_still_open(video_id: uuid.UUID, subject: str) -> None:
    """For a segment sent on its signature alone (api/hls.py): when it was signed for a
    share link (`l:<id>`), NotFound unless that link still opens `video_id`, so a
    revoked link's next segment fails at once rather than when its signature expires.
    One indexed query, only for link viewers."""
    kind, _, link_id = subject.partition(":")
    if kind != "l":
        return
    if not link_id.isdigit() or not await share_links.link_open(int(link_id), video_id):
        raise NotFound("There is no such file.")


@bp.get("/share/<token:str>")
async def open_link(request: ClipSyncRequest, token: str) -> HTTPResponse:
    """The video a link opens, for whoever holds the link; each call is a logged use."""
    link = await opened_link(request, token)
    request_headers = request.headers
    await share_links.log_use(
        link, actor_of(request), address_of(request), request_headers.get("user-agent", "")
    )
    return json(
        {
            "video": await shared_json(request, link, token),
            "expiresAt": link.expires_at.isoformat(),
        },
        headers={"Cache-Control": "private, no-store"},
    )


@bp.post("/videos/<video_id:uuid>/links")
async def create_link(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = require_user(request)
    link, token = await share_links.create(user, video_id, json_object(request))
    base = request.app.ctx.settings.server.base_url
    answer = share_links.link_json(link) | {
        "url": share_links.link_url(base, token),
        "token": token,
    }
    return json(answer, status=201, headers={"Cache-Control": "no-store"})


@bp.get("/videos/<video_id:uuid>/links")
async def list_links(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = require_user(request)
    found = await share_links.links_of(user, video_id)
    return json({"items": [share_links.link_json(link) for link in found]})


@bp.delete("/videos/<video_id:uuid>/links/<link_id:int>")
async def revoke_link(request: ClipSyncRequest, video_id: uuid.UUID, link_id: int) -> HTTPResponse:
    user = require_user(request)
    await share_links.revoke(user, video_id, link_id)
    return empty()
