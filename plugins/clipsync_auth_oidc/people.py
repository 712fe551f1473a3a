"""Who a single sign-on is in ClipSync: found, linked or created, then kept in step.

- Found: by the provider's stable name for the person, (issuer, subject), in
  `ExternalIdentity`; their email at the provider may change, that link does not.
- Linked: at a first sign-in, to the account that already has the same email, but
  only when the provider says it verified that address (`email_verified`); else
  anyone who could set that email at the provider would take the account over.
- Created: otherwise, with the provider's email, its `name` as display name, and the
  category and role its claims give (or the defaults). The account gets a random
  password nobody knows: it signs in through the provider (or sets a password with
  "Forgot password?" where local passwords are allowed).

At every sign-in the category and role follow the claims. A change is made as an
administrator's change is (services/user_admin.py): in one transaction the row
changes, the token version is bumped and every sign-in session is revoked, then the
audit log records it (the person as actor, "single sign-on" as reason),
`user_category_changed` runs and `account.sessions_ended` and
`account.access_changed` go out. The last active administrator is never demoted by
claims: ClipSync keeps them an admin and logs a warning, as an admin cannot demote
the last admin either.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from clipsync import events
from clipsync.errors import Conflict, ValidationFailed
from clipsync.models import ExternalIdentity, Role, User
from clipsync.plugins import PluginHost
from clipsync.services.accounts import AccountService, fold_email
from clipsync.services.auth_sessions import end_sessions
from clipsync.services.moderation import record
from clipsync.services.profiles import clean_display_name

from .claims import Person
from .errors import SignInRefused

log = logging.getLogger(__name__)

PROVIDER = "auth_oidc"
DEACTIVATED = "This account has been deactivated. Ask an administrator."
AUDIT_REASON = "single sign-on"


async def sign_in(accounts: AccountService, plugins: PluginHost, person: Person) -> User:
    """The ClipSync user `person` is, in step with their claims (see the module docstring)."""
    identity = await ExternalIdentity.get_or_none(
        issuer=person.issuer, subject=person.subject
    ).select_related("user")
    user = identity.user if identity is not None else await _first_sign_in(accounts, person)
    if not user.is_active:
        raise SignInRefused(DEACTIVATED)
    await follow_claims(plugins, user, person)
    await ExternalIdentity.filter(issuer=person.issuer, subject=person.subject).update(
        email=person.email, last_sign_in_at=datetime.now(UTC)
    )
    return user


async def _first_sign_in(accounts: AccountService, person: Person) -> User:
    if person.email is None:
        raise SignInRefused(
            "The sign-in service did not share your email address, which ClipSync needs "
            "for your account. Ask an administrator to let it share the email claim."
        )
    existing = await User.get_or_none(email=fold_email(person.email))
    if existing is not None:
        return await _link(existing, person)
    try:
        async with in_transaction():
            user = await accounts.create_user(
                person.email,
                secrets.token_urlsafe(32),
                role=person.role or Role.USER,
                category=person.category,
            )
            await _identity(user, person)
    except (Conflict, IntegrityError):
        # Two first sign-ins of one person at once: the other one made the account.
        identity = await ExternalIdentity.get_or_none(
            issuer=person.issuer, subject=person.subject
        ).select_related("user")
        if identity is None:
            raise SignInRefused(
                "Your account was being set up at the same moment elsewhere. Please try again."
            ) from None
        return identity.user
    except ValidationFailed as error:
        raise SignInRefused(
            f"The sign-in service gave the email address {person.email!r}, which ClipSync "
            f"cannot use: {error.message}"
        ) from None
    try:
        user.display_name = clean_display_name(person.name)
        await user.save(update_fields=["display_name"])
    except ValidationFailed:
        pass  # a name ClipSync would refuse: they can choose one on their profile
    return user


async def _link(user: User, person: Person) -> User:
    """Link the existing account with the person's email, if the provider verified it."""
    if not person.email_verified:
        raise SignInRefused(
            f"An account with {person.email} already exists here, and the sign-in service "
            "has not confirmed that this address is yours, so ClipSync cannot link the two. "
            "Ask an administrator."
        )
    if not user.is_active:
        raise SignInRefused(DEACTIVATED)
    with contextlib.suppress(IntegrityError):  # the same first sign-in twice at once
        await _identity(user, person)
    return user


async def _identity(user: User, person: Person) -> ExternalIdentity:
    return await ExternalIdentity.create(
        user=user,
        provider=PROVIDER,
        issuer=person.issuer,
        subject=person.subject,
        email=person.email,
    )


async def follow_claims(plugins: PluginHost, user: User, person: Person) -> None:
    """Give `user` the category and role of the claims; a change ends their sessions."""
    changes: dict[str, object] = {}
    if person.category is not None and person.category != user.category:
        changes["category"] = person.category
    if person.role is not None and person.role != user.role:
        if user.role == Role.ADMIN and not await _other_admins(user):
            log.warning(
                "single sign-on: %s is the last active administrator; keeping them one "
                "although the provider's groups say %s",
                user.id,
                person.role,
            )
        else:
            changes["role"] = person.role
    if not changes:
        return
    old = {"categoryRole": user.category, "role": str(user.role)}
    async with in_transaction():
        await User.filter(id=user.id).update(**changes, token_version=F("token_version") + 1)
        await end_sessions(user.id)
    await user.refresh_from_db()
    new = {"categoryRole": user.category, "role": str(user.role)}
    changed = {k: (old[k], new[k]) for k in old if old[k] != new[k]}
    await record(
        user, "user_update", target=user, category=user.category, reason=AUDIT_REASON,
        **{k: {"old": o, "new": n} for k, (o, n) in changed.items()},
    )  # fmt: skip
    if "categoryRole" in changed:
        await plugins.notify(
            "user_category_changed", user=user, old=old["categoryRole"], new=user.category
        )
    await events.publish("account.sessions_ended", userId=user.id)
    names = {"categoryRole": "category", "role": "role"}
    await events.publish(
        "account.access_changed",
        userId=user.id,
        **{names[k]: n for k, (_o, n) in changed.items()},
    )


async def _other_admins(user: User) -> bool:
    return await User.filter(role=Role.ADMIN, is_active=True).exclude(id=user.id).exists()
