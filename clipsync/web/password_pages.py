"""The password pages: change it (`/account/password`), and the "forgot password" path
(`/password/forgot`, then the mailed link to `/password/reset?token=…`).

Plain forms that post back to the same address, like the sign-in pages; the work is
`services/passwords.py`. A refused form comes back with the reason, never with a
password in it.
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.response import HTTPResponse, redirect

from clipsync.api.bodies import form_fields
from clipsync.context import ClipSyncRequest
from clipsync.errors import BadRequest, ClipSyncError
from clipsync.services import notifications, passwords
from clipsync.sessions import require_user
from clipsync.web.pages import check_confirmation, form_again, signed_in

bp = Blueprint("password_pages")


@bp.get("/account/password")
async def change_form(request: ClipSyncRequest) -> HTTPResponse:
    require_user(request)
    return request.app.ctx.templates.render(
        request, "change_password.html", changed=request.args.get("changed") == "1"
    )


@bp.post("/account/password")
async def change_submit(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    form = form_fields(request, "current_password", "password", "password_confirm")
    try:
        check_confirmation(form)
        session = await passwords.change_password(
            request.app.ctx.accounts,
            user,
            form["current_password"],
            form["password"],
            address=request.remote_addr or request.ip,
            session_id=request.ctx.session_id,
            user_agent=request.headers.get("user-agent", ""),
        )
    except ClipSyncError as error:
        return form_again(request, "change_password.html", error, form)
    # This browser's session goes on (with new tokens); every other one ended.
    return signed_in(request, session, "/account/password?changed=1")


def _forgot_page(request: ClipSyncRequest, **context: object) -> HTTPResponse:
    return request.app.ctx.templates.render(
        request, "forgot_password.html", email_on=notifications.email_enabled(), **context
    )


@bp.get("/password/forgot")
async def forgot_form(request: ClipSyncRequest) -> HTTPResponse:
    return _forgot_page(request)


@bp.post("/password/forgot")
async def forgot_submit(request: ClipSyncRequest) -> HTTPResponse:
    form = form_fields(request, "email")
    try:
        await passwords.request_reset(
            request.app.ctx.settings,
            form["email"],
            request.remote_addr or request.ip,
            accounts=request.app.ctx.accounts,
        )
    except ClipSyncError as error:
        return form_again(
            request,
            "forgot_password.html",
            error,
            form,
            email_on=notifications.email_enabled(),
        )
    return redirect("/password/forgot/sent", status=303)


@bp.get("/password/forgot/sent")
async def forgot_sent(request: ClipSyncRequest) -> HTTPResponse:
    return _forgot_page(request, sent=passwords.sent_message(request.app.ctx.settings))


@bp.get("/password/reset")
async def reset_form(request: ClipSyncRequest) -> HTTPResponse:
    token = request.args.get("token", "")
    try:
        await passwords.open_reset(token)
    except ClipSyncError as error:
        # A dead link gets no form: only the reason and a way to ask for a new one.
        return request.app.ctx.templates.render(
            request, "reset_password.html", status=error.status, error=error.message, dead=True
        )
    return request.app.ctx.templates.render(request, "reset_password.html", form={"token": token})


@bp.post("/password/reset")
async def reset_submit(request: ClipSyncRequest) -> HTTPResponse:
    form = form_fields(request, "token", "password", "password_confirm")
    try:
        check_confirmation(form)
        await passwords.reset_password(request.app.ctx.accounts, form["token"], form["password"])
    except ClipSyncError as error:
        # BadRequest is the link's fault (unknown, used, expired): no form then.
        dead = isinstance(error, BadRequest)
        return form_again(request, "reset_password.html", error, form, dead=dead)
    return request.app.ctx.templates.render(request, "reset_password.html", done=True)
