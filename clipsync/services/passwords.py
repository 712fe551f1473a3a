"""Passwords: changing one, and resetting a forgotten one with a link sent by email.

What a new password may be is `password_rules.check_new_password`, the same check
as at registration. Either way the password changes, sessions end (the token
version is bumped, see `AccountService.identify`, and the sign-in sessions of
services/auth_sessions.py are revoked: all of them on a reset, all but the
caller's on a change), the account's unused reset
links stop working, and `account.password_changed` tells the owner (a security
notification: in-app and email, always sent) while `account.sessions_ended` closes
the live streams of the ended sessions.

- Change: the current password is checked within the sign-in limits of
  rate_limit.py, on the same counters as signing in, so a stolen session is no
  faster way to guess it. The caller's session goes on with a fresh pair of
  tokens; other sessions end.
- Forgot: the answer never tells whether an address has an account, and takes
  about as long either way (the same hashing and queries, and a write that changes
  nothing where there is no link to store). For an active account, a link with a
  256-bit token is stored as a hash and mailed through the email channel. At most
  `MAILS_PER_ACCOUNT` links per account and `LINKS_PER_ADDRESS` per client address
  are made in `LIMIT_WINDOW`; past that nothing is sent, and the answer is still
  the same, so the limit tells nothing either.
- Reset: a link works once, until it expires, and only for an active account;
  otherwise a clear 400 and nothing is changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from datetime import UTC, datetime, timedelta

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from clipsync import events
from clipsync.errors import (
    BadRequest,
    Forbidden,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from clipsync.models import PasswordReset, SignInFailures, User
from clipsync.services import notifications
from clipsync.services.accounts import (
    MAX_ADDRESS_LENGTH,
    MAX_EMAIL_LENGTH,
    TOO_MANY_AT_ONCE,
    TOO_MANY_FOR_EMAIL,
    TOO_MANY_FROM_ADDRESS,
    AccountService,
    Session,
    fold_email,
)
from clipsync.services.auth_sessions import end_sessions
from clipsync.services.notification_types import Message
from clipsync.services.password_rules import check_new_password
from clipsync.settings import Settings

log = logging.getLogger(__name__)

RESET_TYPE = "account.password_reset"
RESET_PATH = "/password/reset"
MAILS_PER_ACCOUNT = 3
LINKS_PER_ADDRESS = 5
LIMIT_WINDOW = timedelta(hours=1)
# Longer than any token `secrets.token_urlsafe(32)` makes: anything longer is no link.
MAX_TOKEN_LENGTH = 128

WRONG_CURRENT = "Your current password is not right."
LINK_UNKNOWN = "This reset link is not valid. Ask for a new one."
LINK_USED = "This reset link has been used already. Ask for a new one."
LINK_EXPIRED = "This reset link has expired. Ask for a new one."
ACCOUNT_DEACTIVATED = "This account has been deactivated. Ask an administrator."


def hash_token(token: str) -> str:
    """What is stored of a reset token: a 256-bit token needs no slow hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def sent_message(settings: Settings) -> str:
    """The one answer to every "forgot password" request."""
    return (
        "If an account uses this address, a link to choose a new password is on its way. "
        f"It works once, for {settings.auth.reset_token_minutes} minutes."
    )


# --- change -------------------------------------------------------------------------


async def change_password(
    accounts: AccountService,
    user: User,
    current: object,
    new: object,
    *,
    address: str,
    session_id: str = "",
    user_agent: str = "",
) -> Session:
    """Change a signed-in person's password; answers new tokens for their session.

    `session_id` is the caller's sign-in session: it goes on, every other ends.
    Without one (a token tied to no session) every session ends and a new one
    starts. The new password is checked first, so a typo there costs no attempt.
    """
    await accounts.check_password_allowed(user, "change")
    if not isinstance(current, str) or not current:
        raise ValidationFailed("Enter your current password.", field="currentPassword")
    secret = check_new_password(accounts.settings, new, field="newPassword")
    await _check_current(accounts, user, current, address[:MAX_ADDRESS_LENGTH])
    if secret == current:
        raise ValidationFailed(
            "The new password is your current one: choose another.", field="newPassword"
        )
    password_hash = await asyncio.to_thread(accounts.auth.hash_password, secret)
    async with in_transaction():
        if not await _set_password(user.id, password_hash, keep_session=session_id):
            raise Unauthorized("Your account is no longer active.")
    await user.refresh_from_db()
    await _announce(user, "change")
    if session_id:
        return await accounts.sessions.renew(user, session_id)
    return await accounts.sessions.start(user, user_agent=user_agent, address=address)


async def _check_current(accounts: AccountService, user: User, current: str, address: str) -> None:
    """Check the current password as `AccountService.login` checks a sign-in.

    Every limit is taken before bcrypt runs; a wrong password stays counted, for
    this address and email exactly as a failed sign-in.
    """
    places = (f"address {address}", f"email {user.email}")
    if not accounts.in_flight.enter(*places):
        raise TooManyRequests(TOO_MANY_AT_ONCE, retry_after=1)
    try:
        wait = await accounts.address_attempts.take(address)
        if wait:
            raise TooManyRequests(TOO_MANY_FROM_ADDRESS, retry_after=wait)
        reservation = await accounts.throttle.reserve(user.email, address, datetime.now(UTC))
        if reservation.retry_after:
            await accounts.address_attempts.give_back(address)  # refused unchecked: no guess
            raise TooManyRequests(TOO_MANY_FOR_EMAIL, retry_after=reservation.retry_after)
        right = await asyncio.to_thread(accounts.auth.check_password, current, user.password_hash)
        if not right:
            changes: dict[str, object] = {"failed_logins": F("failed_logins") + 1}
            if reservation.wait_until is not None:
                changes["locked_until"] = reservation.wait_until
            await User.filter(id=user.id).update(**changes)
            raise BadRequest(WRONG_CURRENT, details={"field": "currentPassword"})
        await accounts.address_attempts.give_back(address)
        await accounts.throttle.clear(user.email, address)
    finally:
        accounts.in_flight.leave(*places)


# --- forgot -------------------------------------------------------------------------


async def request_reset(
    settings: Settings, email: object, address: str, *, accounts: AccountService | None = None
) -> None:
    """Mail a reset link to `email` if an active account has it (see the module docstring).

    Returns the same way whether or not anything was sent. With `accounts`, an account
    whose ClipSync password is not used (single sign-on, `local_password_refused`) gets
    no link either.
    """
    if not isinstance(email, str) or not email.strip():
        raise ValidationFailed("Enter your email address.", field="email")
    key = fold_email(email)[:MAX_EMAIL_LENGTH]
    address = address[:MAX_ADDRESS_LENGTH]
    token = secrets.token_urlsafe(32)
    digest = hash_token(token)
    now = datetime.now(UTC)
    since = now - LIMIT_WINDOW
    user = await User.get_or_none(email=key, is_active=True)
    if user is not None and accounts is not None:
        try:
            await accounts.check_password_allowed(user, "reset")
        except Forbidden:
            user = None  # the same answer, and no link, for a password not used here
    from_address = await PasswordReset.filter(address=address, created_at__gte=since).count()
    # No account has id 0: an unknown address costs the same query.
    for_account = await PasswordReset.filter(
        user_id=user.id if user is not None else 0, created_at__gte=since
    ).count()
    if user is None or from_address >= LINKS_PER_ADDRESS or for_account >= MAILS_PER_ACCOUNT:
        if user is not None:
            log.info("password reset for account %s not sent: too many asked", user.id)
        # A write that changes nothing, in place of the insert below.
        await PasswordReset.filter(token_hash=digest).update(used_at=now)
        return
    minutes = settings.auth.reset_token_minutes
    expires_at = now + timedelta(minutes=minutes)
    await PasswordReset.create(
        token_hash=digest, user_id=user.id, expires_at=expires_at, address=address
    )
    site = settings.web.site_name
    until = expires_at.strftime("%d %B %Y, %H:%M UTC")
    await notifications.deliver(
        Message(
            None,
            RESET_TYPE,
            f"Choose a new password for {site}",
            f"Someone asked to reset the password of {user.email} on {site}, from the "
            f"network address {address}. The link works once, for {minutes} minutes "
            f"(until {until}).",
            f"{RESET_PATH}?token={token}",
            email=user.email,
            data={"expiresAt": until, "minutes": minutes, "requestedFrom": address},
        )
    )


# --- reset --------------------------------------------------------------------------


async def open_reset(token: object) -> PasswordReset:
    """The reset a link names, while it may be used; a `BadRequest` saying why not."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise BadRequest(LINK_UNKNOWN)
    reset = await PasswordReset.get_or_none(token_hash=hash_token(token)).select_related("user")
    if reset is None:
        raise BadRequest(LINK_UNKNOWN)
    if reset.used_at is not None:
        raise BadRequest(LINK_USED)
    if reset.expires_at <= datetime.now(UTC):
        raise BadRequest(LINK_EXPIRED)
    if not reset.user.is_active:
        raise BadRequest(ACCOUNT_DEACTIVATED)
    return reset


async def reset_password(accounts: AccountService, token: object, password: object) -> User:
    """Set a new password with a reset link; every session of the account ends."""
    reset = await open_reset(token)
    await accounts.check_password_allowed(reset.user, "reset")
    secret = check_new_password(accounts.settings, password)
    password_hash = await asyncio.to_thread(accounts.auth.hash_password, secret)
    async with in_transaction():
        # Claiming the link is one conditional UPDATE: of two uses at once, one wins.
        # Raising below rolls the claim back, so a refused reset changes nothing.
        claimed = await PasswordReset.filter(
            id=reset.id, used_at__isnull=True, expires_at__gt=datetime.now(UTC)
        ).update(used_at=datetime.now(UTC))
        if not claimed:
            raise BadRequest(LINK_USED)
        if not await _set_password(reset.user_id, password_hash):
            raise BadRequest(ACCOUNT_DEACTIVATED)
    user = await User.get(id=reset.user_id)
    # The owner proved they read the account's mail: earlier guesses hold nobody up.
    await SignInFailures.filter(email=user.email).delete()
    await _announce(user, "reset")
    return user


# --- both ---------------------------------------------------------------------------


async def _set_password(user_id: int, password_hash: str, keep_session: str = "") -> bool:
    """Store the hash and end every session (but `keep_session`) and reset link (in
    the caller's transaction).

    False, changing nothing, when the account is not active.
    """
    changed = await User.filter(id=user_id, is_active=True).update(
        password_hash=password_hash,
        token_version=F("token_version") + 1,
        failed_logins=0,
        locked_until=None,
    )
    if changed:
        await PasswordReset.filter(user_id=user_id, used_at__isnull=True).update(
            used_at=datetime.now(UTC)
        )
        await end_sessions(user_id, keep=keep_session)
    return bool(changed)


async def _announce(user: User, via: str) -> None:
    await events.publish("account.password_changed", userId=user.id, via=via)
    await events.publish("account.sessions_ended", userId=user.id)
