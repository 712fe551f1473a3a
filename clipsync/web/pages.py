"""The account pages: first-run set-up, register, sign in and sign out.

Forms post back to the same address and work without JavaScript. A refused form is
shown again with the reason and what the person typed (never the password).
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.response import HTTPResponse, redirect

from clipsync.api.bodies import form_fields
from clipsync.context import ClipSyncRequest
from clipsync.errors import ClipSyncError, ValidationFailed
from clipsync.services.accounts import MfaChallenge, Session
from clipsync.services.two_factor import VERIFY
from clipsync.sessions import clear_session_cookie, request_token, set_sign_in_cookies

bp = Blueprint("pages")


def safe_next(target: str | None) -> str:
    """Only same-site paths: `/watch/x` yes, `//evil.example` or `https://…` no."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def signed_in(request: ClipSyncRequest, session: Session, target: str = "/") -> HTTPResponse:
    """Go on to `target` with the session's cookies (see clipsync/sessions.py)."""
    response = redirect(safe_next(target), status=303)
    set_sign_in_cookies(request, response, session)
    return response


def client_of(request: ClipSyncRequest) -> dict[str, str]:
    """Where a sign-in comes from, as its session remembers it."""
    return {
        "address": request.remote_addr or request.ip,
        "user_agent": request.headers.get("user-agent", ""),
    }


def form_again(
    request: ClipSyncRequest,
    template: str,
    error: ClipSyncError,
    form: dict[str, str],
    **context: object,
) -> HTTPResponse:
    kept = {k: v for k, v in form.items() if "password" not in k}
    return request.app.ctx.templates.render(
        request,
        template,
        status=error.status,
        headers=error.headers,
        error=error.message,
        form=kept,
        **context,
    )


def check_confirmation(form: dict[str, str]) -> None:
    if form["password"] != form["password_confirm"]:
        raise ValidationFailed("The two passwords do not match.", field="password_confirm")


@bp.get("/setup")
async def setup_form(request: ClipSyncRequest) -> HTTPResponse:
    if request.app.ctx.set_up or await request.app.ctx.accounts.is_set_up():
        return redirect("/login", status=303)
    # `setting_up` hides the header's sign-in and register links: they lead back here.
    return request.app.ctx.templates.render(request, "setup.html", setting_up=True)


@bp.post("/setup")
async def setup_submit(request: ClipSyncRequest) -> HTTPResponse:
    form = form_fields(request, "email", "password", "password_confirm")
    try:
        check_confirmation(form)
        session = await request.app.ctx.accounts.set_up_first_admin(
            form["email"], form["password"], **client_of(request)
        )
    except ClipSyncError as error:
        return form_again(request, "setup.html", error, form, setting_up=True)
    request.app.ctx.set_up = True
    return signed_in(request, session)


@bp.get("/register")
async def register_form(request: ClipSyncRequest) -> HTTPResponse:
    invite = request.args.get("invite", "")
    return request.app.ctx.templates.render(request, "register.html", form={"invite": invite})


@bp.post("/register")
async def register_submit(request: ClipSyncRequest) -> HTTPResponse:
    form = form_fields(request, "email", "password", "password_confirm", "categoryRole", "invite")
    try:
        check_confirmation(form)
        session = await request.app.ctx.accounts.register(
            form["email"],
            form["password"],
            form["categoryRole"],
            form["invite"] or None,
            **client_of(request),
        )
    except ClipSyncError as error:
        return form_again(request, "register.html", error, form)
    return signed_in(request, session)


@bp.get("/login")
async def login_form(request: ClipSyncRequest) -> HTTPResponse:
    if request.ctx.actor is not None:
        return redirect(safe_next(request.args.get("next")), status=303)
    return request.app.ctx.templates.render(
        request,
        "login.html",
        next=safe_next(request.args.get("next")),
        sign_in_providers=request.app.ctx.plugins.sign_in_providers(),
    )


@bp.post("/login")
async def login_submit(request: ClipSyncRequest) -> HTTPResponse:
    form = form_fields(request, "email", "password", "next")
    try:
        session = await request.app.ctx.accounts.login(
            form["email"], form["password"], **client_of(request)
        )
    except ClipSyncError as error:
        return form_again(
            request,
            "login.html",
            error,
            form,
            next=safe_next(form["next"]),
            sign_in_providers=request.app.ctx.plugins.sign_in_providers(),
        )
    if isinstance(session, MfaChallenge):
        return await second_step(request, session, form["next"])
    return signed_in(request, session, form["next"])


async def second_step(
    request: ClipSyncRequest, challenge: MfaChallenge, target: str
) -> HTTPResponse:
    """What a right password shows when a second step is due: the code form, or enrolling.

    Both post to web/two_factor_pages.py, which finishes the sign-in.
    """
    if challenge.purpose == VERIFY:
        return request.app.ctx.templates.render(
            request, "login_code.html", mfa_token=challenge.token, next=safe_next(target)
        )
    enrolment = await request.app.ctx.accounts.two_factor.begin(challenge.user)
    return request.app.ctx.templates.render(
        request,
        "two_factor.html",
        stage="enrol",
        enrolment=enrolment,
        mfa_token=challenge.token,
        next=safe_next(target),
    )


@bp.post("/logout")
async def logout(request: ClipSyncRequest) -> HTTPResponse:
    token = request_token(request)
    if token and request.ctx.actor is not None:
        await request.app.ctx.accounts.logout(token)
    response = redirect("/login", status=303)
    clear_session_cookie(request, response)
    return response
