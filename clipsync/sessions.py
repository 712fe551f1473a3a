"""Who is making a request: the session cookie or a bearer token, and CSRF.

The web UI keeps its token in an HttpOnly, SameSite=Lax cookie; scripts send
`Authorization: Bearer <token>`. A middleware resolves either to
`request.ctx.actor` (a `User` or None) before any handler runs; handlers then ask
for what they need with `require_user` / `require_role`.

CSRF: forms carry a `csrf_token` field and scripts in the page an `X-CSRF-Token`
header, both equal to the `clipsync_csrf` cookie (double submit). It is checked on
every unsafe request that a browser could send with cookies: every page form, and
every API call authenticated by the session cookie. Bearer requests need none.
`navigator.sendBeacon` cannot set headers, so the endpoints in `BEACON_ENDPOINTS`
(and only those: a token in a URL can leak through logs and history) may instead
carry the token as a `csrf` query parameter.

The token is replaced whenever a session cookie is set or cleared (sign-in,
registration, set-up, sign-out), so a token seen before signing in is worthless after.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING

from sanic import Request
from sanic.response import HTTPResponse

from clipsync.errors import ClipSyncError, Forbidden, Unauthorized
from clipsync.models import Role, User

if TYPE_CHECKING:
    from clipsync.context import ClipSyncApp

SESSION_COOKIE = "clipsync_session"
CSRF_COOKIE = "clipsync_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Where the player's analytics sends its last events with navigator.sendBeacon
# (themes/default/static/js/analytics.js), which cannot send a header.
BEACON_ENDPOINTS = frozenset({"/api/analytics/event"})


def is_api(request: Request) -> bool:
    """Requests answered with data, not pages: errors are JSON, never redirects."""
    return request.path.startswith(("/api/", "/hls/")) or request.path.endswith(".json")


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def request_token(request: Request) -> str | None:
    """The token this request carries: a bearer header wins over the cookie."""
    return bearer_token(request) or request.cookies.get(SESSION_COOKIE) or None


async def attach_actor(request: Request) -> None:
    """Middleware: resolve the request's token to `request.ctx.actor`."""
    request.ctx.actor = None
    request.ctx.auth_error = None
    token = request_token(request)
    if token:
        app: ClipSyncApp = request.app
        try:
            request.ctx.actor = await app.ctx.accounts.user_for_token(token)
        except Unauthorized as exc:
            request.ctx.auth_error = exc
    if request.method not in SAFE_METHODS:
        check_csrf(request)


def check_csrf(request: Request) -> None:
    route = request.route
    if route is not None and getattr(route.ctx, "csrf_exempt", False):
        return  # a plugin route authorised by a token in its URL (`Route.csrf`)
    if is_api(request) and (bearer_token(request) or not request.cookies.get(SESSION_COOKIE)):
        return
    expected = request.cookies.get(CSRF_COOKIE, "")
    given = request.headers.get(CSRF_HEADER, "")
    if not given and request.path in BEACON_ENDPOINTS:
        given = request.args.get("csrf", "")
    if not given and not is_api(request):
        form = request.form or {}
        given = form.get(CSRF_FIELD, "") or ""
    if not expected or not hmac.compare_digest(expected, given):
        raise Forbidden(
            "This form has expired or did not come from this site. Reload the page and try again."
        )


def csrf_token(request: Request) -> str:
    """The CSRF token for forms on this page; `remember_csrf` sets its cookie."""
    token = getattr(request.ctx, "csrf_token", None)
    if token is None:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        request.ctx.csrf_token = token
    return token


def remember_csrf(request: Request, response: HTTPResponse) -> None:
    """Response middleware: set the CSRF cookie if this page handed out a new token."""
    token = getattr(request.ctx, "csrf_token", None)
    if token and token != request.cookies.get(CSRF_COOKIE):
        app: ClipSyncApp = request.app
        response.add_cookie(
            CSRF_COOKIE,
            token,
            path="/",
            httponly=False,
            samesite="Lax",
            secure=app.ctx.settings.server.secure_cookies,
        )


def rotate_csrf(request: Request) -> None:
    """A fresh CSRF token for this response; `remember_csrf` sends its cookie."""
    request.ctx.csrf_token = secrets.token_urlsafe(32)


def set_session_cookie(request: Request, response: HTTPResponse, token: str, max_age: int) -> None:
    """Sign the browser in: the session cookie, and a CSRF token of its own."""
    _session_cookie(request, response, token, max_age)
    rotate_csrf(request)


def clear_session_cookie(request: Request, response: HTTPResponse) -> None:
    """Sign the browser out, and replace the CSRF token of the ended session."""
    # Sent with exactly the attributes it was set with: Sanic's `delete_cookie` adds
    # Secure by default, and a browser ignores a Secure Set-Cookie over plain HTTP,
    # so the session cookie would stay behind after signing out.
    _session_cookie(request, response, "", 0)
    rotate_csrf(request)


def _session_cookie(request: Request, response: HTTPResponse, value: str, max_age: int) -> None:
    app: ClipSyncApp = request.app
    response.add_cookie(
        SESSION_COOKIE,
        value,
        path="/",
        max_age=max_age,
        httponly=True,
        samesite="Lax",
        secure=app.ctx.settings.server.secure_cookies,
    )


def require_user(request: Request) -> User:
    actor: User | None = request.ctx.actor
    if actor is None:
        error: ClipSyncError | None = request.ctx.auth_error
        raise error or Unauthorized()
    return actor


def require_role(request: Request, *roles: Role) -> User:
    user = require_user(request)
    if user.role not in roles:
        raise Forbidden()
    return user
