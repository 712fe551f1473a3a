"""The account's sign-in sessions page (`/account/sessions`): see them, end them.

Plain forms that post back and work without JavaScript, like the password pages;
the work is `services/auth_sessions.py`. Ending the session this browser uses signs
it out.
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.response import HTTPResponse, redirect

from clipsync.api.bodies import form_fields
from clipsync.context import ClipSyncRequest
from clipsync.services.auth_sessions import session_json
from clipsync.sessions import clear_session_cookie, require_user

bp = Blueprint("account_pages")

PAGE = "/account/sessions"


@bp.get(PAGE)
async def sessions_page(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    rows = await request.app.ctx.accounts.sessions.list(user)
    current = request.ctx.session_id
    return request.app.ctx.templates.render(
        request,
        "account_sessions.html",
        sessions=[session_json(row, current) for row in rows],
        ended=request.args.get("ended", ""),
    )


@bp.post(f"{PAGE}/end")
async def end_one(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    session_id = form_fields(request, "session")["session"]
    await request.app.ctx.accounts.sessions.end(user, session_id)
    if session_id == request.ctx.session_id:
        response = redirect("/login", status=303)
        clear_session_cookie(request, response)
        return response
    return redirect(f"{PAGE}?ended=one", status=303)


@bp.post(f"{PAGE}/end-others")
async def end_others(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    await request.app.ctx.accounts.sessions.end_others(user, request.ctx.session_id)
    return redirect(f"{PAGE}?ended=others", status=303)
