"""What a provider's claims mean in ClipSync: who, which category, which role.

Pure functions of the validated claims and `[plugins.auth_oidc]`; nothing here reads
or writes the database. A claim that cannot be mapped is a `SignInRefused` with a
message for the person, so their sign-in stops before anything is created or changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clipsync.models import Role

from .errors import SignInRefused
from .settings import OidcSettings

# The longest issuer and subject `ExternalIdentity` keeps, and the longest email.
MAX_NAME = 255
MAX_EMAIL = 320
# From the least to the most: the highest role among a person's groups counts.
ROLE_ORDER = (Role.USER, Role.EDITOR, Role.ADMIN)


@dataclass(frozen=True)
class Person:
    """A validated sign-in at the provider, in ClipSync's terms.

    `category` and `role` are None when the provider does not decide them.
    """

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str
    category: str | None
    role: Role | None


def person_from_claims(claims: dict[str, Any], config: OidcSettings) -> Person:
    """Map validated claims (id_token merged with userinfo) to a `Person`."""
    issuer, subject = str(claims["iss"]), str(claims["sub"])
    if len(issuer) > MAX_NAME or len(subject) > MAX_NAME:
        raise SignInRefused(
            f"The sign-in service names people with more than {MAX_NAME} characters, which "
            "ClipSync cannot keep. Ask an administrator."
        )
    given = claims.get("email")
    email = given.strip() if isinstance(given, str) else ""
    name = claims.get("name")
    return Person(
        issuer=issuer,
        subject=subject,
        email=email if 0 < len(email) <= MAX_EMAIL else None,
        email_verified=is_true(claims.get("email_verified")),
        name=name.strip() if isinstance(name, str) else "",
        category=category_of(claims, config),
        role=role_of(claims, config),
    )


def is_true(value: object) -> bool:
    """A boolean claim: some providers send the string "true" (Amazon Cognito)."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _values(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def category_of(claims: dict[str, Any], config: OidcSettings) -> str | None:
    """The category the claims put the person in, or None when the provider does not decide."""
    if not config.category_claim:
        return None
    values = _values(claims.get(config.category_claim))
    for value in values:
        if value in config.category_values:
            return config.category_values[value]
    if config.default_category:
        return config.default_category
    shown = ", ".join(repr(v) for v in values) or "nothing"
    raise SignInRefused(
        f"Your account at the sign-in service has {config.category_claim} = {shown}, "
        "which no ClipSync category is set up for. Ask an administrator to add it."
    )


def role_of(claims: dict[str, Any], config: OidcSettings) -> Role | None:
    """The highest role of the person's groups; None when roles are not mapped."""
    if not config.role_groups:
        return None
    groups = _values(claims.get(config.groups_claim))
    roles = [Role(config.role_groups[g]) for g in groups if g in config.role_groups]
    return max(roles, key=ROLE_ORDER.index, default=Role.USER)
