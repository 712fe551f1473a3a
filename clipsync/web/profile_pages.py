"""The profile pages: `/account/profile` (display name, avatar, email) and the link
mailed to a new address (`/account/email/confirm?token=…`).

Plain forms that post back, like the password pages; the avatar form is sent by
js/profile.js to `PUT /api/auth/me/avatar` (a streamed upload). The work is
services/profiles.py.
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.response import HTTPResponse, redirect

from clipsync.api.bodies import form_fields
from clipsync.context import ClipSyncRequest
from clipsync.errors import BadRequest, ClipSyncError
from clipsync.services import notifications, profiles
from clipsync.sessions import require_user
from clipsync.web.pages import form_again

bp = Blueprint("profile_pages")

PAGE = "profile.html"
CONFIRM_PAGE = "confirm_email.html"
# What `?done=` may show after a form (nothing a link could inject).
DONE = {
    "name": "Your display name was saved.",
    "avatar": "Your avatar was saved.",
    "avatar-removed": "Your avatar was removed.",
}


def _limits() -> dict[str, object]:
    return {
        "email_on": notifications.email_enabled(),
        "max_name": profiles.MAX_DISPLAY_NAME,
        "max_avatar": profiles.MAX_AVATAR_BYTES,
    }


def _page(request: ClipSyncRequest, **context: object) -> HTTPResponse:
    return request.app.ctx.templates.render(request, PAGE, **_limits(), **context)


@bp.get("/account/profile")
async def profile_form(request: ClipSyncRequest) -> HTTPResponse:
    require_user(request)
    return _page(request, done=DONE.get(request.args.get("done", "")))


@bp.post("/account/profile")
async def profile_submit(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    form = form_fields(request, "display_name")
    try:
        await profiles.set_display_name(user, form["display_name"])
    except ClipSyncError as error:
        return form_again(request, PAGE, error, form, **_limits())
    return redirect("/account/profile?done=name", status=303)


@bp.post("/account/profile/email")
async def email_submit(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    form = form_fields(request, "new_email", "password")
    try:
        sent = await profiles.request_email_change(
            request.app.ctx.accounts,
            user,
            form["new_email"],
            form["password"],
            address=request.remote_addr or request.ip,
        )
    except ClipSyncError as error:
        return form_again(request, PAGE, error, form, email_error=True, **_limits())
    return _page(request, email_sent=sent)


@bp.get("/account/email/confirm")
async def confirm_form(request: ClipSyncRequest) -> HTTPResponse:
    """The mailed link shows a button: mail scanners that follow links change nothing."""
    token = request.args.get("token", "")
    try:
        change = await profiles.open_email_change(token)
    except ClipSyncError as error:
        return request.app.ctx.templates.render(
            request, CONFIRM_PAGE, status=error.status, error=error.message, dead=True
        )
    return request.app.ctx.templates.render(
        request, CONFIRM_PAGE, token=token, new_email=change.new_email
    )


@bp.post("/account/email/confirm")
async def confirm_submit(request: ClipSyncRequest) -> HTTPResponse:
    form = form_fields(request, "token")
    try:
        user = await profiles.confirm_email_change(form["token"])
    except ClipSyncError as error:
        return request.app.ctx.templates.render(
            request,
            CONFIRM_PAGE,
            status=error.status,
            error=error.message,
            dead=isinstance(error, BadRequest) or error.status == 409,
        )
    return request.app.ctx.templates.render(request, CONFIRM_PAGE, done=True, new_email=user.email)
