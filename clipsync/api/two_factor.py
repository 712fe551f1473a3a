"""`/api/auth/mfa`: two-factor sign-in (TOTP), enrolling, turning off, the second step.

The work is services/two_factor.py. A signed-in person enrols with `totp/setup` and
`totp/confirm`; someone whose role must use two-factor and has not (`[auth]
require_mfa_for`) does the same with the `mfaToken` their password gave them, and
the confirmation then signs them in. `verify` is the second step of every other
sign-in: it answers exactly as `POST /api/auth/login` does without two-factor.
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.response import HTTPResponse, empty, json

from clipsync.api.auth import client_of, session_json
from clipsync.api.bodies import json_object
from clipsync.context import ClipSyncRequest
from clipsync.models import User
from clipsync.services.two_factor import ENROL, VERIFY
from clipsync.sessions import require_user

bp = Blueprint("api_two_factor", url_prefix="/api/auth/mfa")


async def enrolling(request: ClipSyncRequest, body: dict[str, object]) -> tuple[User, bool]:
    """Who enrols: the signed-in person, or (True) the holder of an enrolment `mfaToken`."""
    if "mfaToken" in body:
        user, _ = await request.app.ctx.accounts.two_factor.read_token(body["mfaToken"], ENROL)
        return user, True
    return require_user(request), False


@bp.get("/")
async def state(request: ClipSyncRequest) -> HTTPResponse:
    """`{enabled, recoveryCodesLeft}` for the caller."""
    user = require_user(request)
    two_factor = request.app.ctx.accounts.two_factor
    return json(
        {
            "enabled": user.totp_enabled_at is not None,
            "recoveryCodesLeft": await two_factor.recovery_codes_left(user),
        }
    )


@bp.post("/totp/setup")
async def setup(request: ClipSyncRequest) -> HTTPResponse:
    """A new secret → `{secret, otpauthUrl, qrSvg}`; nothing is on until `confirm`."""
    user, _ = await enrolling(request, json_object(request) if request.body else {})
    enrolment = await request.app.ctx.accounts.two_factor.begin(user)
    return json(
        {
            "secret": enrolment.secret,
            "otpauthUrl": enrolment.otpauth_url,
            "qrSvg": enrolment.qr_svg,
        }
    )


@bp.post("/totp/confirm")
async def confirm(request: ClipSyncRequest) -> HTTPResponse:
    """`{code}` → `{recoveryCodes}`, shown this once; with an `mfaToken`, also signed in."""
    body = json_object(request)
    user, with_token = await enrolling(request, body)
    accounts = request.app.ctx.accounts
    codes = await accounts.two_factor.confirm(user, body.get("code"))
    if not with_token:
        return json({"recoveryCodes": codes})
    session = await accounts.finish_sign_in(user, **client_of(request))
    return json({"recoveryCodes": codes, **session_json(session)})


@bp.delete("/totp")
async def turn_off(request: ClipSyncRequest) -> HTTPResponse:
    """`{password, code}` → 204: two-factor is off and the recovery codes are gone."""
    user = require_user(request)
    body = json_object(request)
    accounts = request.app.ctx.accounts
    await accounts.two_factor.turn_off(user, body.get("password"), body.get("code"), accounts.auth)
    return empty()


@bp.post("/verify")
async def verify(request: ClipSyncRequest) -> HTTPResponse:
    """`{mfaToken, code}` (a TOTP code or a recovery code) → the sign-in, as login answers."""
    body = json_object(request)
    accounts = request.app.ctx.accounts
    user, _ = await accounts.two_factor.read_token(body.get("mfaToken"), VERIFY)
    await accounts.two_factor.check_code(user, body.get("code"))
    session = await accounts.finish_sign_in(user, **client_of(request))
    return json(session_json(session))
