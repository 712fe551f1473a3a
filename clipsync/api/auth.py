"""`/api/auth`: register, sign in, who am I, sign out, change or reset a password."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, empty, json

from clipsync.api.bodies import json_object
from clipsync.context import ClipSyncRequest
from clipsync.services import passwords
from clipsync.services.accounts import Session
from clipsync.sessions import (
    SESSION_COOKIE,
    bearer_token,
    request_token,
    require_user,
    set_session_cookie,
)

bp = Blueprint("api_auth", url_prefix="/api/auth")


def session_json(session: Session) -> dict[str, object]:
    return {
        "user": session.user.to_public(),
        "token": session.token,
        "expiresAt": session.expires_at,
    }


@bp.post("/register")
async def register(request: ClipSyncRequest) -> HTTPResponse:
    body = json_object(request)
    session = await request.app.ctx.accounts.register(
        body.get("email"), body.get("password"), body.get("categoryRole"), body.get("invite")
    )
    return json(session_json(session), status=201)


@bp.post("/login")
async def login(request: ClipSyncRequest) -> HTTPResponse:
    body = json_object(request)
    session = await request.app.ctx.accounts.login(
        body.get("email"),
        body.get("password"),
        address=request.remote_addr or request.ip,
        user_agent=request.headers.get("user-agent", ""),
    )
    return json(session_json(session))


@bp.get("/me")
async def me(request: Request) -> HTTPResponse:
    return json({"user": require_user(request).to_public()})


@bp.post("/logout")
async def logout(request: ClipSyncRequest) -> HTTPResponse:
    require_user(request)
    token = request_token(request)
    assert token is not None  # require_user passed, so the request carried one
    await request.app.ctx.accounts.logout(token)
    return empty()


@bp.post("/password")
async def change_password(request: ClipSyncRequest) -> HTTPResponse:
    """`{currentPassword, newPassword}` → a new session; every other session ends."""
    user = require_user(request)
    body = json_object(request)
    session = await passwords.change_password(
        request.app.ctx.accounts,
        user,
        body.get("currentPassword"),
        body.get("newPassword"),
        address=request.remote_addr or request.ip,
    )
    response = json(session_json(session))
    if bearer_token(request) is None and request.cookies.get(SESSION_COOKIE):
        # A page's script called with the cookie: keep that browser signed in.
        max_age = request.app.ctx.settings.auth.token_lifetime_hours * 3600
        set_session_cookie(request, response, session.token, max_age)
    return response


@bp.post("/password/forgot")
async def forgot_password(request: ClipSyncRequest) -> HTTPResponse:
    """`{email}` → 202, the same answer whether or not the address has an account."""
    body = json_object(request)
    settings = request.app.ctx.settings
    await passwords.request_reset(settings, body.get("email"), request.remote_addr or request.ip)
    return json({"message": passwords.sent_message(settings)}, status=202)


@bp.post("/password/reset")
async def reset_password(request: ClipSyncRequest) -> HTTPResponse:
    """`{token, password}` → 204; the link is used up and every session ends."""
    body = json_object(request)
    await passwords.reset_password(
        request.app.ctx.accounts, body.get("token"), body.get("password")
    )
    return empty()
