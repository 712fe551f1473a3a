"""A sign-in in progress: `state`, `nonce` and the PKCE verifier, kept in a sealed cookie.

`/login` makes them and `/callback` needs them, and the two requests may reach
different ClipSync hosts, so they travel with the browser, never in one server's
memory: in one short-lived HttpOnly cookie, sealed (encrypted and authenticated,
JWE `dir` + A256GCM with joserfc) so the browser can neither read the verifier nor
change anything, and expiring with the sign-in (`login_timeout_seconds`). The
cookie goes only to `/-/auth_oidc/`, and SameSite=Lax still lets the provider's
redirect back (a top-level GET) carry it. The callback clears it: each one is used once.

The key is `cookie_secret`, or one generated once into `<data_dir>/secrets/`; it
seals nothing else, so a leaked one forges only sign-ins in progress.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwe import JWERegistry
from joserfc.jwk import OctKey
from joserfc.jwt import JWTClaimsRegistry
from sanic import Request
from sanic.response import HTTPResponse

from clipsync import generated_keys
from clipsync.settings import Settings

from .errors import SignInRefused
from .settings import OidcSettings

COOKIE = "clipsync_oidc"
COOKIE_PATH = "/-/auth_oidc/"
KEY_FILE = "auth_oidc_cookie.key"
HEADER = {"alg": "dir", "enc": "A256GCM"}
REGISTRY = JWERegistry(algorithms=["dir", "A256GCM"])
LOST = (
    "This sign-in has expired or was started in another browser or tab. "
    "Please start it again from the sign-in page."
)

# The key in use per (data directory, configured secret): read from disk once.
_keys: dict[tuple[str, str], OctKey] = {}


@dataclass(frozen=True)
class Attempt:
    state: str
    nonce: str
    # PKCE (RFC 7636): 64 characters of the unreserved set, well within 43-128.
    verifier: str
    # Where to go once signed in (a same-site path).
    next: str
    expires_at: int


def begin(next_path: str, lifetime: int) -> Attempt:
    """A new attempt with fresh random state, nonce and verifier."""
    return Attempt(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        verifier=secrets.token_urlsafe(48),
        next=next_path,
        expires_at=int(time.time()) + lifetime,
    )


def sealing_key(settings: Settings, config: OidcSettings) -> OctKey:
    """The key that seals the cookie (see the module docstring)."""
    configured = config.cookie_secret.reveal()
    cache_key = (str(settings.data_dir), configured)
    if cache_key not in _keys:
        secret = generated_keys.key_for(settings.data_dir / "secrets" / KEY_FILE, 48, configured)
        # Domain-separated, so the same secret could never seal another kind of value.
        raw = hashlib.sha256(b"clipsync auth_oidc cookie v1\0" + secret.encode()).digest()
        _keys[cache_key] = OctKey.import_key(raw)
    return _keys[cache_key]


def seal(attempt: Attempt, key: OctKey) -> str:
    claims = {
        "state": attempt.state,
        "nonce": attempt.nonce,
        "verifier": attempt.verifier,
        "next": attempt.next,
        "exp": attempt.expires_at,
    }
    return jwt.encode(HEADER, claims, key, registry=REGISTRY)


def unseal(sealed: str | None, key: OctKey, now: int | None = None) -> Attempt:
    """The attempt a cookie holds; `SignInRefused` when it is missing, forged or expired."""
    if not sealed:
        raise SignInRefused(LOST)
    try:
        claims = jwt.decode(sealed, key, registry=REGISTRY).claims
        JWTClaimsRegistry(
            now=now, exp={"essential": True}, state={"essential": True},
            nonce={"essential": True}, verifier={"essential": True},
        ).validate(claims)  # fmt: skip
        return Attempt(
            state=str(claims["state"]),
            nonce=str(claims["nonce"]),
            verifier=str(claims["verifier"]),
            next=str(claims.get("next") or "/"),
            expires_at=int(claims["exp"]),
        )
    except (JoseError, ValueError, TypeError):
        raise SignInRefused(LOST) from None


def remember(request: Request, response: HTTPResponse, sealed: str, lifetime: int) -> None:
    _cookie(request, response, sealed, lifetime)


def forget(request: Request, response: HTTPResponse) -> None:
    """Clear the cookie, with the attributes it was set with (see clipsync/sessions.py)."""
    _cookie(request, response, "", 0)


def _cookie(request: Request, response: HTTPResponse, value: str, max_age: int) -> None:
    response.add_cookie(
        COOKIE,
        value,
        path=COOKIE_PATH,
        max_age=max_age,
        httponly=True,
        samesite="Lax",
        secure=request.app.ctx.settings.server.secure_cookies,
    )
