"""`/api/auth`: register, sign in, refresh, who am I, sign out, sessions, passwords.

Signing in answers `{user, token, refreshToken, expiresIn, expiresAt}`; the sessions
behind them are services/auth_sessions.py. A page's script refreshes with the
refresh cookie instead of a body: then the tokens travel only in HttpOnly cookies,
never in the answer.
"""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, empty, json

from clipsync import request_ids
from clipsync.api.bodies import json_object
from clipsync.context import ClipSyncRequest
from clipsync.errors import Unauthorized
from clipsync.services import passwords, profiles, quotas
from clipsync.services.accounts import MfaChallenge, Session
from clipsync.services.auth_sessions import REFRESH_RACED
from clipsync.services.auth_sessions import session_json as auth_session_json
from clipsync.services.two_factor import VERIFY
from clipsync.sessions import (
    REFRESH_COOKIE,
    SESSION_COOKIE,
    bearer_token,
    clear_session_cookie,
    request_token,
    require_user,
    set_sign_in_cookies,
)

bp = Blueprint("api_auth", url_prefix="/api/auth")


def session_json(session: Session) -> dict[str, object]:
    return {
        "user": session.user.to_public(),
        "token": session.token,
        "refreshToken": session.refresh_token,
        "expiresIn": session.expires_in,
        "expiresAt": session.expires_at,
    }


def mfa_challenge_json(challenge: MfaChallenge) -> dict[str, object]:
    """The answer to a right password when a second step is due (api/two_factor.py)."""
    due = "mfaRequired" if challenge.purpose == VERIFY else "mfaEnrolmentRequired"
    return {due: True, "mfaToken": challenge.token}


def cookie_session(request: ClipSyncRequest) -> bool:
    """A page's script calling with the browser's cookies, not a script with a token."""
    return bearer_token(request) is None and bool(request.cookies.get(SESSION_COOKIE))


def client_of(request: ClipSyncRequest) -> dict[str, str]:
    return {
        "address": request.remote_addr or request.ip,
        "user_agent": request.headers.get("user-agent", ""),
    }


@bp.post("/register")
async def register(request: ClipSyncRequest) -> HTTPResponse:
    body = json_object(request)
    settings = request.app.ctx.settings
    await quotas.ensure_registration_allowed(
        settings, request.app.ctx.accounts.sessions, client_of(request)["address"]
    )
    session = await request.app.ctx.accounts.register(
        body.get("email"),
        body.get("password"),
        body.get("categoryRole"),
        body.get("invite"),
        **client_of(request),
    )
    return json(session_json(session), status=201)


@bp.post("/login")
async def login(request: ClipSyncRequest) -> HTTPResponse:
    body = json_object(request)
    session = await request.app.ctx.accounts.login(
        body.get("email"), body.get("password"), **client_of(request)
    )
    if isinstance(session, MfaChallenge):
        return json(mfa_challenge_json(session))
    return json(session_json(session))


@bp.post("/refresh")
async def refresh(request: ClipSyncRequest) -> HTTPResponse:
    """`{refreshToken}` → a new pair; or, from a page, the refresh cookie → new cookies.

    The refresh token is used up. A page's failed refresh also clears its cookies
    (the person is signed out), except when another tab won a refresh at that moment.
    """
    body = json_object(request) if request.body else {}
    token = body.get("refreshToken")
    from_cookie = token is None and bool(request.cookies.get(REFRESH_COOKIE))
    if from_cookie:
        token = request.cookies.get(REFRESH_COOKIE)
    try:
        session = await request.app.ctx.accounts.sessions.refresh(
            token, address=request.remote_addr or request.ip
        )
    except Unauthorized as error:
        if not from_cookie or error.message == REFRESH_RACED:
            raise
        answer = error.to_json()
        answer["error"]["requestId"] = request_ids.request_id(request)
        response = json(answer, status=error.status)
        clear_session_cookie(request, response)
        return response
    if not from_cookie:
        return json(session_json(session))
    # The tokens stay in HttpOnly cookies: the script learns only when to come back.
    response = json(
        {
            "user": session.user.to_public(),
            "expiresIn": session.expires_in,
            "expiresAt": session.expires_at,
        }
    )
    set_sign_in_cookies(request, response, session, rotate=False)
    return response


@bp.get("/me")
async def me(request: Request) -> HTTPResponse:
    return json({"user": require_user(request).to_public()})


@bp.patch("/me")
async def update_me(request: Request) -> HTTPResponse:
    """`{displayName}` ("" clears it) → the updated user (see services/profiles.py)."""
    user = require_user(request)
    body = json_object(request)
    if "displayName" in body:
        await profiles.set_display_name(user, body["displayName"])
    return json({"user": user.to_public()})


@bp.post("/logout")
async def logout(request: ClipSyncRequest) -> HTTPResponse:
    require_user(request)
    token = request_token(request)
    assert token is not None  # require_user passed, so the request carried one
    await request.app.ctx.accounts.logout(token)
    response = empty()
    if cookie_session(request):
        clear_session_cookie(request, response)
    return response


@bp.get("/sessions")
async def list_sessions(request: ClipSyncRequest) -> HTTPResponse:
    """The caller's live sign-in sessions, `current` marking the one asking."""
    user = require_user(request)
    rows = await request.app.ctx.accounts.sessions.list(user)
    current = request.ctx.session_id
    return json({"sessions": [auth_session_json(row, current) for row in rows]})


@bp.delete("/sessions/<session_id:str>")
async def end_session(request: ClipSyncRequest, session_id: str) -> HTTPResponse:
    """End one of the caller's sessions (404 for anyone else's: it is not theirs to see)."""
    user = require_user(request)
    await request.app.ctx.accounts.sessions.end(user, session_id)
    response = empty()
    if session_id == request.ctx.session_id and cookie_session(request):
        clear_session_cookie(request, response)
    return response


@bp.post("/sessions/revoke-others")
async def end_other_sessions(request: ClipSyncRequest) -> HTTPResponse:
    """End every session of the caller but the one asking; `{ended}` says how many."""
    user = require_user(request)
    ended = await request.app.ctx.accounts.sessions.end_others(user, request.ctx.session_id)
    return json({"ended": ended})


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
        session_id=request.ctx.session_id,
        **client_of(request),
    )
    response = json(session_json(session))
    if cookie_session(request):
        # A page's script called with the cookie: keep that browser signed in.
        set_sign_in_cookies(request, response, session)
    return response


@bp.post("/password/forgot")
async def forgot_password(request: ClipSyncRequest) -> HTTPResponse:
    """`{email}` → 202, the same answer whether or not the address has an account."""
    body = json_object(request)
    settings = request.app.ctx.settings
    await passwords.request_reset(
        settings,
        body.get("email"),
        request.remote_addr or request.ip,
        accounts=request.app.ctx.accounts,
    )
    return json({"message": passwords.sent_message(settings)}, status=202)


@bp.post("/password/reset")
async def reset_password(request: ClipSyncRequest) -> HTTPResponse:
    """`{token, password}` → 204; the link is used up and every session ends."""
    body = json_object(request)
    await passwords.reset_password(
        request.app.ctx.accounts, body.get("token"), body.get("password")
    )
    return empty()
