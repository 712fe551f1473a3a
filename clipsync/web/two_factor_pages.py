"""Two-factor pages: `/account/two-factor` (enrol, recovery codes, turn off) and the
code step of signing in (`/login/code`).

Plain forms that post back and work without JavaScript, like the password pages;
the work is services/two_factor.py. Between the password and the code the form
carries the `mfaToken` in a hidden field: it is short-lived and proves only the
password. Someone whose role must enrol (`[auth] require_mfa_for`) enrols on the
same page with that token, and is signed in once a code confirms it.
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.response import HTTPResponse, redirect

from clipsync.api.bodies import form_fields
from clipsync.context import ClipSyncRequest
from clipsync.errors import ClipSyncError
from clipsync.models import User
from clipsync.services.two_factor import ENROL, VERIFY
from clipsync.sessions import require_user, set_sign_in_cookies
from clipsync.web.pages import client_of, safe_next, signed_in

bp = Blueprint("two_factor_pages")

PAGE = "/account/two-factor"


@bp.post("/login/code")
async def code_submit(request: ClipSyncRequest) -> HTTPResponse:
    form = form_fields(request, "mfa_token", "code", "next")
    accounts = request.app.ctx.accounts
    try:
        user, _ = await accounts.two_factor.read_token(form["mfa_token"], VERIFY)
        await accounts.two_factor.check_code(user, form["code"])
    except ClipSyncError as error:
        return request.app.ctx.templates.render(
            request,
            "login_code.html",
            status=error.status,
            headers=error.headers,
            error=error.message,
            mfa_token=form["mfa_token"],
            next=safe_next(form["next"]),
        )
    session = await accounts.finish_sign_in(user, **client_of(request))
    return signed_in(request, session, form["next"])


@bp.get(PAGE)
async def two_factor_page(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    two_factor = request.app.ctx.accounts.two_factor
    return request.app.ctx.templates.render(
        request,
        "two_factor.html",
        stage="on" if user.totp_enabled_at is not None else "off",
        codes_left=await two_factor.recovery_codes_left(user),
        required=str(user.role) in request.app.ctx.settings.auth.require_mfa_for,
        notice=request.args.get("done", ""),
    )


@bp.post(f"{PAGE}/setup")
async def setup_submit(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    enrolment = await request.app.ctx.accounts.two_factor.begin(user)
    return request.app.ctx.templates.render(
        request, "two_factor.html", stage="enrol", enrolment=enrolment
    )


@bp.post(f"{PAGE}/confirm")
async def confirm_submit(request: ClipSyncRequest) -> HTTPResponse:
    """A first code turns it on; the recovery codes are shown this once."""
    form = form_fields(request, "code", "mfa_token", "next")
    accounts = request.app.ctx.accounts
    user: User | None = None
    try:
        if form["mfa_token"]:
            user, _ = await accounts.two_factor.read_token(form["mfa_token"], ENROL)
        else:
            user = require_user(request)
        codes = await accounts.two_factor.confirm(user, form["code"])
    except ClipSyncError as error:
        enrolment = await accounts.two_factor.pending(user) if user is not None else None
        return request.app.ctx.templates.render(
            request,
            "two_factor.html",
            status=error.status,
            headers=error.headers,
            error=error.message,
            stage="enrol" if enrolment is not None else "off",
            enrolment=enrolment,
            mfa_token=form["mfa_token"],
            next=safe_next(form["next"]),
        )
    response = request.app.ctx.templates.render(
        request,
        "two_factor.html",
        stage="codes",
        recovery_codes=codes,
        next=safe_next(form["next"]) if form["mfa_token"] else PAGE,
    )
    if form["mfa_token"]:
        # Enrolling was the second step of signing in: this page signs the browser in.
        session = await accounts.finish_sign_in(user, **client_of(request))
        set_sign_in_cookies(request, response, session)
    return response


@bp.post(f"{PAGE}/off")
async def off_submit(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    form = form_fields(request, "password", "code")
    accounts = request.app.ctx.accounts
    try:
        await accounts.two_factor.turn_off(user, form["password"], form["code"], accounts.auth)
    except ClipSyncError as error:
        return request.app.ctx.templates.render(
            request,
            "two_factor.html",
            status=error.status,
            headers=error.headers,
            error=error.message,
            stage="on",
            codes_left=await accounts.two_factor.recovery_codes_left(user),
        )
    return redirect(f"{PAGE}?done=off", status=303)
