"""Pages of sharing beyond one category: a share link's page and "Shared with me".

- `/s/<token>`: the video a share link opens, with the player (its HLS files reached
  through the link, api/share_links.py). Anyone signed in may open it, or with
  `[sharing] allow_public_links` anyone; a signed-out visitor otherwise signs in first
  and comes back. A link with a password shows a form first (POST `/s/<token>`,
  rate-limited); the right password leaves a cookie for that link only. An unknown,
  revoked or expired link is the 404 page. Each opening is a logged use.
- `/shared`: the videos shared with the person (services/grants.py `shared_with`).
"""

from __future__ import annotations

from urllib.parse import quote

from sanic import Blueprint
from sanic.response import HTTPResponse, redirect

from clipsync.api.bodies import form_fields
from clipsync.api.share_links import actor_of, address_of, guesses_of, shared_json
from clipsync.context import ClipSyncRequest
from clipsync.errors import ClipSyncError, TooManyRequests
from clipsync.models import ShareLink
from clipsync.services import grants, share_links
from clipsync.services.videos import page_numbers
from clipsync.sessions import require_user
from clipsync.web.video_pages import category_labels, listing

bp = Blueprint("share_link_pages")
SHARED_PAGE_SIZE = 24


@bp.get("/s/<token:str>")
async def share_page(request: ClipSyncRequest, token: str) -> HTTPResponse:
    settings = request.app.ctx.settings
    actor = actor_of(request)
    if actor is None and not settings.sharing.allow_public_links:
        return redirect(f"/login?next={quote('/s/' + token, safe='')}", status=303)
    link = await share_links.link_access(token)
    if not share_links.unlocked(link, token, request.cookies.get(share_links.proof_cookie(link))):
        return _password_page(request, link)
    await share_links.log_use(
        link, actor, address_of(request), request.headers.get("user-agent", "")
    )
    return request.app.ctx.templates.render(
        request,
        "share_link.html",
        video=await shared_json(request, link, token),
        link_expires_at=link.expires_at.isoformat(),
        resume_at=0,
        start_at=None,
        category_names=category_labels(request),
        headers={"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"},
    )


@bp.post("/s/<token:str>")
async def unlock(request: ClipSyncRequest, token: str) -> HTTPResponse:
    """The password form of a link: the right password sets the link's cookie."""
    settings = request.app.ctx.settings
    actor = actor_of(request)
    if actor is None and not settings.sharing.allow_public_links:
        return redirect(f"/login?next={quote('/s/' + token, safe='')}", status=303)
    link = await share_links.link_access(token)
    password = form_fields(request, "password")["password"]
    try:
        proof = await share_links.unlock(
            link, token, password, address_of(request), guesses_of(request)
        )
    except TooManyRequests as error:
        return _password_page(request, link, error, status=429)
    except ClipSyncError as error:
        return _password_page(request, link, error, status=error.status)
    response = redirect(f"/s/{quote(token, safe='')}", status=303)
    response.add_cookie(
        share_links.proof_cookie(link),
        proof,
        path="/",
        max_age=share_links.seconds_left(link),
        httponly=True,
        samesite="Lax",
        secure=settings.server.secure_cookies,
    )
    return response


def _password_page(
    request: ClipSyncRequest,
    link: ShareLink,
    error: ClipSyncError | None = None,
    status: int = 200,
) -> HTTPResponse:
    headers = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}
    if error is not None:
        headers |= error.headers
    return request.app.ctx.templates.render(
        request,
        "share_link.html",
        status=status,
        video=None,
        needs_password=True,
        error=error.message if error else "",
        headers=headers,
    )


@bp.get("/shared")
async def shared_with_me(request: ClipSyncRequest) -> HTTPResponse:
    """The videos named people shared with me, newest first."""
    user = require_user(request)
    number, size = page_numbers(request.args.get("page"), None, SHARED_PAGE_SIZE)
    page = await grants.shared_with(user, number, size)
    shown = await listing(request, page, user)
    return request.app.ctx.templates.render(
        request, "shared.html", category_names=category_labels(request), **shown
    )
