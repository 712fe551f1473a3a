"""`/api/auth`: register, sign in, who am I, sign out."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, empty, json

from clipsync.api.bodies import json_object
from clipsync.context import ClipSyncRequest
from clipsync.services.accounts import Session
from clipsync.sessions import request_token, require_user

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
