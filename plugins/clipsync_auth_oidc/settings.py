"""`[plugins.auth_oidc]`: the OpenID provider, this client at it, and how claims map.

With no `issuer` the plugin does nothing: no button, no routes, passwords as usual.
What can be checked alone is checked here; that the mapped categories exist is
checked against `[[category]]` by `check_categories` when the routes are mounted,
so a typo stops start-up either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from clipsync.errors import ConfigError
from clipsync.models import Role
from clipsync.settings import Secret, Settings, check

SECTION = "[plugins.auth_oidc]"
ROLES = tuple(role.value for role in Role)


def _issuer(value: str) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return 'must be the provider\'s issuer URL, e.g. "https://login.example.org/realms/staff"'
    if parts.query or parts.fragment:
        return "must not have a query or fragment"
    return None


def _positive(value: int) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _table(name: str, value: dict, values: tuple[str, ...] | None = None) -> None:
    """A `{ "text" = "text" }` table; with `values`, each value must be one of them."""
    for key, mapped in value.items():
        if not isinstance(key, str) or not isinstance(mapped, str):
            raise ConfigError(f'{SECTION} {name}: expected a table of "value" = "name"')
        if values is not None and mapped not in values:
            raise ConfigError(
                f"{SECTION} {name}: {key!r} maps to {mapped!r}, which is not one of "
                f"{', '.join(values)}"
            )


@dataclass(frozen=True)
class OidcSettings:
    # The provider's issuer URL: its discovery document is
    # <issuer>/.well-known/openid-configuration. Empty: single sign-on is off.
    issuer: str = check(_issuer, "")
    # This ClipSync as a client registered at the provider. Its redirect URI there is
    # <[server] public_url>/-/auth_oidc/callback.
    client_id: str = ""
    # Empty for a public client (PKCE alone); else { "$env" = ... } or { "$file" = ... }.
    client_secret: Secret = field(default_factory=Secret)
    scopes: list[str] = field(default_factory=lambda: ["openid", "email", "profile"])
    # The text of the button on the sign-in page.
    button_label: str = "Sign in with single sign-on"
    # The claim whose value picks a person's category at every sign-in (a string, or
    # a list whose first mapped value counts). Empty: categories are not taken from
    # the provider; new people get the default category.
    category_claim: str = ""
    # Claim value → ClipSync category name.
    category_values: dict = field(default_factory=dict)
    # The category for a value not in category_values (or no claim at all). Empty:
    # such a sign-in is refused and changes nothing.
    default_category: str = ""
    # The claim that lists a person's groups, and group → role ("admin", "editor",
    # "user"); the highest role of their groups counts, "user" when none maps.
    # Empty role_groups: roles are not taken from the provider.
    groups_claim: str = "groups"
    role_groups: dict = field(default_factory=dict)
    # false: only administrators may still sign in with a ClipSync password (the
    # break-glass way in when the provider is down); registration and password resets
    # of everyone else are refused.
    allow_local_passwords: bool = True
    # Seals the short-lived cookie that carries state, nonce and the PKCE verifier from
    # /login to /callback. Empty: generated once into the data directory (set it when
    # several hosts serve ClipSync, so a callback may reach any of them).
    cookie_secret: Secret = field(default_factory=Secret)
    # How long a person may take at the provider before the sign-in must start again.
    login_timeout_seconds: int = check(_positive, 600)
    # The longest one request to the provider may take.
    timeout_seconds: int = check(_positive, 10)

    def __post_init__(self) -> None:
        _table("category_values", self.category_values)
        _table("role_groups", self.role_groups, ROLES)
        if not self.issuer:
            return
        if not self.client_id:
            raise ConfigError(f"{SECTION} client_id is required when issuer is set")
        if "openid" not in self.scopes:
            raise ConfigError(f'{SECTION} scopes must include "openid" (got {self.scopes!r})')

    @property
    def enabled(self) -> bool:
        return bool(self.issuer)


def check_categories(settings: Settings, config: OidcSettings) -> None:
    """Stop start-up when the mapping names a category `[[category]]` does not define."""
    names = [c.name for c in settings.categories]
    mapped = [(f"category_values {v!r}", name) for v, name in config.category_values.items()]
    if config.default_category:
        mapped.append(("default_category", config.default_category))
    for where, name in mapped:
        if settings.category(name) is None:
            raise ConfigError(
                f"{settings.describe()}: {SECTION} {where}: there is no category {name!r} "
                f"(categories: {', '.join(names)})"
            )
