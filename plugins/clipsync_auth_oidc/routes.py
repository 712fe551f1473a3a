"""`/-/auth_oidc/login` and `/-/auth_oidc/callback`: the two ends of a single sign-on.

`login` makes a sign-in attempt (attempts.py), keeps it in its sealed cookie and
sends the browser to the provider. `callback` checks what comes back in this order:
the cookie (present, genuine, not expired), `state`, `iss` (RFC 9207, when the
provider sends it), an `error` from the provider, then the code is swapped and the
id_token checked (provider.py, id_tokens.py), the claims mapped (claims.py) and the
person found, linked or created and kept in step (people.py). Any failure raises
before anything is written, and the error page says why. The sign-in ends exactly as
a password sign-in does (`AccountService.finish_sign_in`, then `web.pages.signed_in`
sets the same cookies), without ClipSync's own second step: the provider owns that.
"""

from __future__ import annotations

import hmac
import logging

from sanic.response import HTTPResponse, redirect

from clipsync.context import ClipSyncRequest
from clipsync.web.pages import client_of, safe_next, signed_in

from . import attempts, people, provider
from .claims import person_from_claims
from .errors import SignInRefused
from .settings import OidcSettings

log = logging.getLogger(__name__)

PLUGIN = "auth_oidc"
LOGIN_PATH = f"/-/{PLUGIN}/login"
CALLBACK_PATH = f"/-/{PLUGIN}/callback"


def redirect_uri(request: ClipSyncRequest) -> str:
    """This ClipSync's callback, as registered at the provider: from `[server] public_url`."""
    return request.app.ctx.settings.server.base_url + CALLBACK_PATH


def _config(request: ClipSyncRequest) -> OidcSettings:
    return request.app.ctx.plugins.plugin_config(PLUGIN)


async def login(request: ClipSyncRequest) -> HTTPResponse:
    """Start a sign-in: to the provider, with state, nonce and PKCE kept in the cookie."""
    config = _config(request)
    lifetime = config.login_timeout_seconds
    attempt = attempts.begin(safe_next(request.args.get("next")), lifetime)
    url = await provider.authorization_url(config, redirect_uri(request), attempt)
    response = redirect(url, status=303)
    key = attempts.sealing_key(request.app.ctx.settings, config)
    attempts.remember(request, response, attempts.seal(attempt, key), lifetime)
    return response


async def callback(request: ClipSyncRequest) -> HTTPResponse:
    """Finish a sign-in that the provider sent back here (see the module docstring)."""
    try:
        return await _finish(request)
    except SignInRefused as refused:
        # For the administrator asked why someone cannot sign in: what they were shown.
        log.info("single sign-on refused: %s", refused.message)
        raise


async def _finish(request: ClipSyncRequest) -> HTTPResponse:
    config = _config(request)
    key = attempts.sealing_key(request.app.ctx.settings, config)
    attempt = attempts.unseal(request.cookies.get(attempts.COOKIE), key)
    state = request.args.get("state") or ""
    if not hmac.compare_digest(state.encode(), attempt.state.encode()):
        raise SignInRefused(
            "This answer from the sign-in service does not belong to the sign-in started in "
            "this browser (wrong state). Nothing was changed; please start again."
        )
    issuer = request.args.get("iss")
    if issuer is not None and issuer != config.issuer:
        raise SignInRefused(
            "This answer comes from another sign-in service than the one ClipSync is set up "
            "for (wrong issuer). Nothing was changed."
        )
    error = request.args.get("error")
    if error:
        why = (request.args.get("error_description") or error)[:300]
        raise SignInRefused(f"The sign-in service did not sign you in: {why}.")
    code = request.args.get("code")
    if not code:
        raise SignInRefused("The sign-in service sent no authorization code. Please try again.")
    claims = await provider.finish(config, redirect_uri(request), attempt, code)
    person = person_from_claims(claims, config)
    accounts = request.app.ctx.accounts
    user = await people.sign_in(accounts, request.app.ctx.plugins, person)
    session = await accounts.finish_sign_in(user, **client_of(request))
    response = signed_in(request, session, attempt.next)
    attempts.forget(request, response)
    return response
