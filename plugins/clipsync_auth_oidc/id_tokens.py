"""Checking an id_token: the provider's signature, then issuer, audience, expiry, nonce.

joserfc (which Authlib itself builds on) checks the JWS signature against the
provider's published keys (JWKS); Authlib's `CodeIDToken` checks the claims the
OpenID Connect core spec asks a client to check (§3.1.3.7): `iss` is the configured
issuer, `aud` holds this client's id (and `azp` names it when there are several
audiences), `exp` is not past, `iat` is not in the future, `nonce` is the one this
sign-in sent, and `at_hash`, when present, matches the access token. Only asymmetric
signature algorithms are accepted: never `none`, and no HMAC keyed by a client
secret the provider also knows.
"""

from __future__ import annotations

from typing import Any

from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from .errors import ProviderTrouble, SignInRefused

ASYMMETRIC = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
# Clocks differ a little between ClipSync and the provider.
LEEWAY_SECONDS = 60

# What a failed check of each claim means, for the person reading the error page.
CLAIM_PROBLEMS = {
    "iss": "it was not issued by the sign-in service ClipSync is set up for",
    "aud": "it was issued for another application",
    "azp": "it was issued for another application",
    "nonce": "it does not belong to this sign-in (wrong nonce)",
    "exp": "it has expired",
    "iat": "it was issued in the future (is a clock wrong?)",
    "nbf": "it is not valid yet (is a clock wrong?)",
    "at_hash": "it does not match its access token",
}


def _refused(why: str) -> SignInRefused:
    return SignInRefused(
        f"The sign-in service's answer was refused: {why}. Nothing was changed; "
        "please try again, and tell an administrator if it keeps happening."
    )


def accepted_algorithms(advertised: object) -> list[str]:
    """The provider's `id_token_signing_alg_values_supported` that ClipSync accepts."""
    if not isinstance(advertised, list):
        return ["RS256"]  # the default the spec gives
    return [a for a in advertised if a in ASYMMETRIC]


def validate_id_token(
    id_token: object,
    *,
    jwks: Any,
    issuer: str,
    client_id: str,
    nonce: str,
    algorithms: list[str],
    access_token: str | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """The claims of `id_token` once its signature and claims are checked.

    Raises `SignInRefused` saying which check failed, or `ProviderTrouble` when the
    provider's keys cannot be read.
    """
    if not isinstance(id_token, str) or not id_token:
        raise _refused("it holds no id_token")
    if not algorithms:
        raise ProviderTrouble(
            "The sign-in service signs its id_tokens only with algorithms ClipSync does not "
            f"accept (it accepts {', '.join(ASYMMETRIC)})."
        )
    try:
        keys = KeySet.import_key_set(jwks)
    except (JoseError, TypeError, ValueError, KeyError):
        raise ProviderTrouble("The sign-in service's signing keys (JWKS) are unreadable.") from None
    try:
        token = jwt.decode(id_token, keys, registry=JWSRegistry(algorithms=algorithms))
    except BadSignatureError:
        raise _refused("its signature is not the sign-in service's") from None
    except InvalidKeyIdError:
        raise _refused("it is signed with a key the sign-in service does not publish") from None
    except JoseError as error:
        raise _refused(f"it is not a valid id_token ({error.error})") from None
    options = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": client_id},
    }
    params = {"nonce": nonce, "client_id": client_id, "access_token": access_token}
    claims = CodeIDToken(token.claims, token.header, options, params)
    try:
        claims.validate(now=now, leeway=LEEWAY_SECONDS)
    except ExpiredTokenError:
        raise _refused(CLAIM_PROBLEMS["exp"]) from None
    except MissingClaimError as error:
        raise _refused(f"it lacks the {error.claim} claim") from None
    except ClaimError as error:
        why = CLAIM_PROBLEMS.get(error.claim, f"its {error.claim} claim is not valid")
        raise _refused(why) from None
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise _refused("it names nobody (no sub claim)")
    return dict(claims)
