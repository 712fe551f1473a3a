"""Who is making a request: the session cookie or a bearer token, and CSRF.

The web UI keeps its access token in an HttpOnly, SameSite=Lax cookie; scripts send
`Authorization: Bearer <token>`. A middleware resolves either to
`request.ctx.actor` (a `User` or None) and `request.ctx.session_id` (the sign-in
session the token names, or "") before any handler runs; handlers then ask for what
they need with `require_user` / `require_role`.

Sign-in cookies (see services/auth_sessions.py for the sessions themselves):
- `clipsync_session`: the access token; HttpOnly, kept as long as the session so an
  expired token still tells the page a refresh may bring it back.
- `clipsync_refresh`: the refresh token; HttpOnly, SameSite=Strict, sent only to
  `/api/auth/refresh`. Page requests never carry it, so the server never refreshes
  on a page load: `static/js/session.js` does, before the access token runs out
  and when a page was rendered with an expired one (then it reloads the page).
- `clipsync_session_expires`: `<expiry>:<lifetime>` of the access token in Unix
  seconds; readable by scripts (it holds nothing secret) so session.js knows when
  to refresh, in every tab, without asking the server.

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
import time
from typing import TYPE_CHECKING

from sanic import Request
from sanic.response import HTTPResponse

from clipsync import delivery
from clipsync.errors import ClipSyncError, Forbidden, Unauthorized
from clipsync.models import Role, User
from clipsync.services.two_factor import NOT_A_SESSION, is_mfa_token

if TYPE_CHECKING:
    from clipsync.context import ClipSyncApp
    from clipsync.services.accounts import Session

SESSION_COOKIE = "clipsync_session"
REFRESH_COOKIE = "clipsync_refresh"
REFRESH_PATH = "/api/auth/refresh"
EXPIRY_COOKIE = "clipsync_session_expires"
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
    request.ctx.session_id = ""
    request.ctx.claims = None
    if request.method in SAFE_METHODS and signed_url(request):
        return  # authorised by its URL alone: no token looked up (clipsync/delivery.py)
    token = request_token(request)
    if token and is_mfa_token(token):
        # Between the password and the code: it proves the password, nothing more.
        request.ctx.auth_error = Unauthorized(NOT_A_SESSION)
    elif token:
        app: ClipSyncApp = request.app
        try:
            request.ctx.actor, claims = await app.ctx.accounts.identify(token)
            request.ctx.session_id = claims.session_id
            request.ctx.claims = claims
        except Unauthorized as exc:
            request.ctx.auth_error = exc
    if request.method not in SAFE_METHODS:
        check_csrf(request)


def signed_url(request: Request) -> bool:
    """A request to a route that takes signed URLs (`ctx_signed_urls`) carrying a signature."""
    route = request.route
    return (
        route is not None
        and getattr(route.ctx, "signed_urls", False)
        and delivery.carries_signature(request.args)
    )


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
    _set_cookie(request, response, SESSION_COOKIE, token, max_age)
    rotate_csrf(request)


def set_sign_in_cookies(
    request: Request, response: HTTPResponse, session: Session, *, rotate: bool = True
) -> None:
    """Give the browser a session's access and refresh tokens (see the module docstring).

    `rotate` replaces the CSRF token (a sign-in); a refresh keeps it, so forms open
    in other tabs still work.
    """
    lifetime = max(1, session.session_expires_at - int(time.time()))
    _set_cookie(request, response, SESSION_COOKIE, session.token, lifetime)
    if session.refresh_token:
        _set_cookie(request, response, REFRESH_COOKIE, session.refresh_token, lifetime)
    access = max(1, session.expires_at - int(time.time()))
    _set_cookie(request, response, EXPIRY_COOKIE, f"{session.expires_at}:{access}", lifetime)
    if rotate:
        rotate_csrf(request)


def clear_session_cookie(request: Request, response: HTTPResponse) -> None:
    """Sign the browser out, and replace the CSRF token of the ended session."""
    # Sent with exactly the attributes it was set with: Sanic's `delete_cookie` adds
    # Secure by default, and a browser ignores a Secure Set-Cookie over plain HTTP,
    # so the session cookie would stay behind after signing out.
    _set_cookie(request, response, SESSION_COOKIE, "", 0)
    _set_cookie(request, response, REFRESH_COOKIE, "", 0)
    _set_cookie(request, response, EXPIRY_COOKIE, "", 0)
    rotate_csrf(request)


# The sign-in cookies: (path, HttpOnly, SameSite). The refresh token goes only to the
# one address that renews; the expiry cookie is for js/session.js to read, and holds
# nothing secret.
SIGN_IN_COOKIES: dict[str, tuple[str, bool, str]] = {
    SESSION_COOKIE: ("/", True, "Lax"),
    REFRESH_COOKIE: (REFRESH_PATH, True, "Strict"),
    EXPIRY_COOKIE: ("/", False, "Lax"),
}


def _set_cookie(
    request: Request, response: HTTPResponse, name: str, value: str, max_age: int
) -> None:
    app: ClipSyncApp = request.app
    path, httponly, samesite = SIGN_IN_COOKIES[name]
    response.add_cookie(
        name,
        value,
        path=path,
        max_age=max_age,
        httponly=httponly,
        samesite=samesite,
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
