"""Single sign-on with an OpenID Connect provider (Keycloak, Authentik, Entra ID, Okta…).

Beside `auth_local`, not instead of it: `auth_local` still signs ClipSync's own
session tokens, and a single sign-on ends in the same kind of ClipSync session as a
password sign-in. The flow is the authorization-code flow with PKCE (S256), `state`
and `nonce`, the provider found by discovery and its id_tokens checked against its
JWKS, with Authlib (routes.py has the steps). People are found by the provider's
(issuer, subject), linked by verified email or created at their first sign-in, and
their category and role follow the claims at every sign-in (people.py, claims.py).

- The sign-in page shows the provider's button (`register_sign_in_providers`).
- ClipSync's own two-factor step is not asked after a single sign-on: the provider
  decides how people prove who they are, so require a second factor there.
- `allow_local_passwords = false` keeps ClipSync passwords for administrators only,
  the way in when the provider is down (`local_password_refused`): everyone else's
  password sign-in, registration, password change and reset are refused.

Off (no routes, no button) until `[plugins.auth_oidc] issuer` is set.
"""

from __future__ import annotations

from typing import Any

from clipsync import hookimpl
from clipsync.doctor import Check
from clipsync.models import Role
from clipsync.plugins import PluginHost, Route, SignInProvider

from . import provider, routes
from .errors import ProviderTrouble
from .settings import OidcSettings, check_categories

__all__ = ["OidcSettings"]

PLUGIN = routes.PLUGIN


def _config(plugins: PluginHost) -> OidcSettings:
    return plugins.plugin_config(PLUGIN) or OidcSettings()


@hookimpl
def settings_schema() -> type:
    return OidcSettings


@hookimpl
def register_routes(plugins: PluginHost) -> list[Route]:
    config = _config(plugins)
    if not config.enabled:
        return []
    check_categories(plugins.settings, config)
    return [
        Route("/login", routes.login, name="login"),
        # A GET the provider's redirect makes: it changes nothing the browser did not
        # start here (the sealed cookie and its state must match).
        Route("/callback", routes.callback, name="callback"),
    ]


@hookimpl
def register_sign_in_providers(plugins: PluginHost) -> list[SignInProvider]:
    config = _config(plugins)
    if not config.enabled:
        return []
    return [
        SignInProvider(
            name=PLUGIN,
            label=config.button_label,
            url=routes.LOGIN_PATH,
            replaces_passwords=not config.allow_local_passwords,
        )
    ]


@hookimpl
def local_password_refused(user: Any, action: str, plugins: PluginHost) -> str | None:
    config = _config(plugins)
    if not config.enabled or config.allow_local_passwords:
        return None
    if user is not None and user.role == Role.ADMIN:
        return None  # the way in when the provider is down
    if action == "register":
        return (
            f"Accounts here come from single sign-on: choose “{config.button_label}” on the "
            "sign-in page, and your account is made at your first sign-in."
        )
    return (
        f"Passwords are not used here: sign in with “{config.button_label}” on the sign-in "
        "page. Your password is managed by your organisation's sign-in service."
    )


@hookimpl
async def doctor_checks(plugins: PluginHost) -> list[Check]:
    config = _config(plugins)
    if not config.enabled:
        return [Check("auth_oidc", True, "off: no [plugins.auth_oidc] issuer", required=False)]
    redirect = plugins.settings.server.base_url + routes.CALLBACK_PATH
    try:
        async with provider.client_for(config, redirect) as client:
            metadata = await provider.discover(client, config.issuer)
    except ProviderTrouble as trouble:
        return [Check("auth_oidc", False, trouble.message)]
    return [
        Check(
            "auth_oidc",
            True,
            f"{config.issuer} answers (authorization at {metadata['authorization_endpoint']}); "
            f"register {redirect} as the redirect URI of client {config.client_id!r}",
        )
    ]
