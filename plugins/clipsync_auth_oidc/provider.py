"""Talking to the OpenID provider, with Authlib's `AsyncOAuth2Client`.

Each sign-in reads the provider's discovery document (and, at the callback, its
JWKS) afresh: sign-ins are rare, and a provider that rotates its keys is then never
met with stale ones; nothing is kept between requests, so any host can serve any step.

- `authorization_url`: the provider's authorization endpoint with the
  authorization-code flow's parameters, `state`, `nonce` and the PKCE S256 challenge.
- `finish`: swaps the code (with the PKCE verifier) for tokens, checks the id_token
  (id_tokens.py) and adds what the userinfo endpoint says of the same person, since
  many providers, as the spec allows, put email and groups only there.
"""

from __future__ import annotations

from typing import Any

import httpx2
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client

from .attempts import Attempt
from .errors import ProviderTrouble, SignInRefused
from .id_tokens import accepted_algorithms, validate_id_token
from .settings import OidcSettings

DISCOVERY_PATH = "/.well-known/openid-configuration"
REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")
# The id_token's word on these stands: userinfo may add to the claims, never change who.
IDENTITY_CLAIMS = frozenset({"iss", "sub", "aud", "azp", "exp", "iat", "nbf", "nonce", "at_hash"})


def client_for(config: OidcSettings, redirect_uri: str) -> AsyncOAuth2Client:
    secret = config.client_secret.reveal()
    return AsyncOAuth2Client(
        client_id=config.client_id,
        client_secret=secret or None,
        token_endpoint_auth_method="client_secret_basic" if secret else "none",
        scope=" ".join(config.scopes),
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=config.timeout_seconds,
    )


async def _get_json(client: AsyncOAuth2Client, url: str, what: str, **kwargs: Any) -> Any:
    try:
        response = await client.request("GET", url, **kwargs)
    except httpx2.HTTPError as error:
        raise ProviderTrouble(
            f"ClipSync could not reach the sign-in service ({what}): {type(error).__name__}. "
            "Please try again in a moment."
        ) from None
    if response.status_code != 200:
        raise ProviderTrouble(
            f"The sign-in service answered HTTP {response.status_code} for its {what} "
            f"({url}). Please try again in a moment."
        )
    try:
        return response.json()
    except ValueError:
        raise ProviderTrouble(f"The sign-in service's {what} is not JSON.") from None


async def discover(client: AsyncOAuth2Client, issuer: str) -> dict[str, Any]:
    """The provider's metadata, checked: its `issuer` must be exactly the configured one."""
    url = issuer.rstrip("/") + DISCOVERY_PATH
    metadata = await _get_json(client, url, "discovery document", withhold_token=True)
    if not isinstance(metadata, dict):
        raise ProviderTrouble("The sign-in service's discovery document is not a JSON object.")
    if metadata.get("issuer") != issuer:
        raise ProviderTrouble(
            f"The sign-in service calls itself {metadata.get('issuer')!r}, not {issuer!r}: "
            "[plugins.auth_oidc] issuer must be exactly its issuer."
        )
    missing = [name for name in REQUIRED_ENDPOINTS if not isinstance(metadata.get(name), str)]
    if missing:
        raise ProviderTrouble(f"The sign-in service's discovery document lacks {missing[0]}.")
    return metadata


async def authorization_url(config: OidcSettings, redirect_uri: str, attempt: Attempt) -> str:
    """Where to send the browser to sign in at the provider."""
    async with client_for(config, redirect_uri) as client:
        metadata = await discover(client, config.issuer)
        url, _state = client.create_authorization_url(
            metadata["authorization_endpoint"],
            state=attempt.state,
            code_verifier=attempt.verifier,
            nonce=attempt.nonce,
        )
    return url


async def finish(
    config: OidcSettings, redirect_uri: str, attempt: Attempt, code: str
) -> dict[str, Any]:
    """Swap `code` for tokens; the checked id_token's claims, with userinfo's added."""
    async with client_for(config, redirect_uri) as client:
        metadata = await discover(client, config.issuer)
        try:
            token = await client.fetch_token(
                metadata["token_endpoint"], code=code, code_verifier=attempt.verifier
            )
        except OAuthError as error:
            raise SignInRefused(
                f"The sign-in service refused to finish the sign-in ({error.error}"
                f"{': ' + error.description if error.description else ''}). "
                "Please start again from the sign-in page."
            ) from None
        except (httpx2.HTTPError, ValueError) as error:
            raise ProviderTrouble(
                f"The sign-in service's token endpoint did not answer properly "
                f"({type(error).__name__}). Please try again in a moment."
            ) from None
        jwks = await _get_json(client, metadata["jwks_uri"], "signing keys", withhold_token=True)
        claims = validate_id_token(
            token.get("id_token"),
            jwks=jwks,
            issuer=config.issuer,
            client_id=config.client_id,
            nonce=attempt.nonce,
            algorithms=accepted_algorithms(metadata.get("id_token_signing_alg_values_supported")),
            access_token=token.get("access_token"),
        )
        endpoint = metadata.get("userinfo_endpoint")
        if isinstance(endpoint, str) and token.get("access_token"):
            info = await _get_json(client, endpoint, "userinfo")
            if not isinstance(info, dict) or info.get("sub") != claims["sub"]:
                # OpenID Connect core §5.3.2: the answer must be about the same person.
                raise SignInRefused(
                    "The sign-in service's userinfo is about someone else than its id_token. "
                    "Nothing was changed; please try again."
                )
            claims |= {k: v for k, v in info.items() if k not in IDENTITY_CLAIMS}
    return claims
