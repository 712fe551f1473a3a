"""Profiles: the name a person is shown by, their avatar, and changing their email.

- Display name: emails are identifiers, not names. The UI shows `display_name_of(user)`
  wherever it names a person, so an address reaches only admins and its owner. A
  display name is prose under text_rules.py (NFKC, nothing invisible), trimmed, 1 to
  `MAX_DISPLAY_NAME` characters; "" clears it.
- Avatar: whatever is uploaded is only read, never stored. Pillow opens it as one of
  `AVATAR_FORMATS` (by its content, not its name), the pixel count is checked from
  the header before anything is decoded (a decompression bomb is refused unread), the
  first frame is turned upright (EXIF orientation), cropped to a square and written
  anew as a `AVATAR_SIZE` WebP: EXIF, GPS, comments and any trailing payload are left
  behind (`media/images.py`, which video posters share). Each upload gets a new key
  (storage/keys.py `avatar_key`), so its URL changes and browsers may cache it.
- Email: a change is asked with the current password (checked within the sign-in
  limits, as a password change is) and made only when the single-use link mailed to
  the new address is used, within `EMAIL_LINK_HOURS`. The old address then gets a
  security notice (`account.email_changed`). Sessions go on: the password did not
  change and the person proved both the password and the new mailbox; someone who
  did not expect the notice can end sessions on /account/sessions.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Protocol

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from clipsync import events
from clipsync.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    ValidationFailed,
)
from clipsync.media import images
from clipsync.models import User
from clipsync.models.email_changes import EmailChange
from clipsync.services import notifications
from clipsync.services.accounts import AccountService, normalize_email
from clipsync.services.notification_types import EMAIL_CHANGE, Message
from clipsync.services.passwords import _check_current
from clipsync.sizes import format_size
from clipsync.storage import keys
from clipsync.text_rules import clean_field

log = logging.getLogger(__name__)

MAX_DISPLAY_NAME = 80

AVATAR_FORMATS = images.IMAGE_FORMATS
MAX_AVATAR_BYTES = 5 * 1024 * 1024
MAX_AVATAR_PIXELS = images.MAX_PIXELS
AVATAR_SIZE = 256
AVATAR_TYPE = "image/webp"

EMAIL_LINK_HOURS = 24
MAILS_PER_HOUR = 5
LIMIT_WINDOW = timedelta(hours=1)
TOO_MANY_REQUESTS = "You asked for too many email changes. Please wait an hour and try again."
EMAIL_CONFIRM_PATH = "/account/email/confirm"
MAX_TOKEN_LENGTH = 128
LINK_UNKNOWN = "This confirmation link is not valid. Ask for a new one on your profile page."
LINK_USED = "This confirmation link has been used already."
LINK_EXPIRED = "This confirmation link has expired. Ask for a new one on your profile page."
ADDRESS_TAKEN = "Another account uses this email address."
ACCOUNT_DEACTIVATED = "This account has been deactivated. Ask an administrator."


class Named(Protocol):
    email: str
    display_name: str


def display_name_of(user: Named) -> str:
    """The person's chosen display name, else the part of their email before the "@"."""
    name = (getattr(user, "display_name", "") or "").strip()
    if name:
        return name
    return (user.email or "").split("@", 1)[0]


def avatar_url(user: User) -> str | None:
    """Where the person's avatar is served (see api/profile.py), None without one."""
    if not user.avatar_key:
        return None
    version = user.avatar_key.rsplit("/", 1)[-1].split(".", 1)[0]
    return f"/avatars/{user.id}?v={version}"


# --- display name -------------------------------------------------------------------


def clean_display_name(value: object) -> str:
    """The display name to store from a request's value ("" clears it)."""
    if not isinstance(value, str):
        raise ValidationFailed('displayName is text (send "" to clear it).', field="displayName")
    name = clean_field(value, field="displayName", what="Display names").strip()
    if len(name) > MAX_DISPLAY_NAME:
        raise ValidationFailed(
            f"Display names can be at most {MAX_DISPLAY_NAME} characters.", field="displayName"
        )
    return name


async def set_display_name(user: User, value: object) -> User:
    user.display_name = clean_display_name(value)
    await user.save(update_fields=["display_name"])
    return user


# --- avatar -------------------------------------------------------------------------


def too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"Avatar images can be at most {format_size(MAX_AVATAR_BYTES)}.")


async def read_bounded(chunks: AsyncIterator[bytes], limit: int = MAX_AVATAR_BYTES) -> bytes:
    """The chunks joined, refused as soon as they pass `limit` bytes."""
    return await images.read_bounded(chunks, limit, too_large)


NOT_AN_IMAGE = images.NOT_AN_IMAGE
TOO_MANY_PIXELS = images.too_many_pixels("avatars")


def render_avatar(data: bytes) -> bytes:
    """A square `AVATAR_SIZE` WebP made from the image in `data` (see the module docstring
    and `media/images.py`)."""
    return images.render(data, (AVATAR_SIZE, AVATAR_SIZE), "WEBP", "avatars")


async def set_avatar(storage: object, user: User, chunks: AsyncIterator[bytes]) -> User:
    """Store a new avatar for `user` from an upload's chunks; the old one is deleted."""
    data = await read_bounded(chunks)
    if not data:
        raise ValidationFailed("Choose an image file.", field="file")
    image = await asyncio.to_thread(render_avatar, data)
    key = keys.avatar_key(user.id, secrets.token_hex(8))

    async def one_chunk() -> AsyncIterator[bytes]:
        yield image

    await storage.put_stream(key, one_chunk(), AVATAR_TYPE)  # type: ignore[attr-defined]
    old = user.avatar_key
    user.avatar_key = key
    await user.save(update_fields=["avatar_key"])
    if old:
        await _delete_quietly(storage, old)
    return user


async def remove_avatar(storage: object, user: User) -> User:
    old = user.avatar_key
    if old:
        user.avatar_key = None
        await user.save(update_fields=["avatar_key"])
        await _delete_quietly(storage, old)
    return user


async def _delete_quietly(storage: object, key: str) -> None:
    # The new key is saved already: a file left behind costs space, not correctness.
    try:
        await storage.delete_prefix(key)  # type: ignore[attr-defined]
    except Exception:
        log.exception("could not delete the old avatar %s", key)


async def avatar_of(user_id: int) -> str:
    """The storage key of an active person's avatar; `NotFound` when there is none."""
    user = await User.get_or_none(id=user_id, is_active=True)
    if user is None or not user.avatar_key:
        raise NotFound("This person has no avatar.")
    return user.avatar_key


# --- email change -------------------------------------------------------------------


def hash_token(token: str) -> str:
    """What is stored of a link's token: a 256-bit token needs no slow hash."""
    return hashlib.sha256(token.encode()).hexdigest()


async def request_email_change(
    accounts: AccountService, user: User, new_email: object, password: object, *, address: str
) -> str:
    """Mail a confirmation link to `new_email`; answers the message to show."""
    try:
        wanted = normalize_email(new_email)
    except ValidationFailed as error:
        raise ValidationFailed(error.message, field="newEmail") from None
    if not isinstance(password, str) or not password:
        raise ValidationFailed("Enter your current password.", field="password")
    if wanted == user.email:
        raise ValidationFailed("This is your current email address.", field="newEmail")
    # Within the sign-in limits, as a password change checks it.
    await _check_current(accounts, user, password, address)
    if await User.filter(email=wanted).exists():
        raise Conflict(ADDRESS_TAKEN, details={"field": "newEmail"})
    since = datetime.now(UTC) - LIMIT_WINDOW
    if await EmailChange.filter(user_id=user.id, created_at__gte=since).count() >= MAILS_PER_HOUR:
        # Each request mails an address of the asker's choosing: not a way to send spam.
        raise TooManyRequests(TOO_MANY_REQUESTS, retry_after=int(LIMIT_WINDOW.total_seconds()))
    token = secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC) + timedelta(hours=EMAIL_LINK_HOURS)
    async with in_transaction():
        # Only the latest request counts: an earlier link would change it back.
        await EmailChange.filter(user_id=user.id, used_at__isnull=True).update(
            used_at=datetime.now(UTC)
        )
        await EmailChange.create(
            user_id=user.id, new_email=wanted, token_hash=hash_token(token), expires_at=expires_at
        )
    site = accounts.settings.web.site_name
    until = expires_at.strftime("%d %B %Y, %H:%M UTC")
    await notifications.deliver(
        Message(
            None,
            EMAIL_CHANGE,
            f"Confirm your new email address for {site}",
            f"Someone signed in to {site} as {display_name_of(user)} asked to use this "
            f"address for their account. The link works once, for {EMAIL_LINK_HOURS} "
            f"hours (until {until}).",
            f"{EMAIL_CONFIRM_PATH}?token={token}",
            email=wanted,
            data={"expiresAt": until, "hours": EMAIL_LINK_HOURS},
        )
    )
    return (
        f"A confirmation link is on its way to {wanted}. Your address changes when it is "
        f"used, within {EMAIL_LINK_HOURS} hours."
    )


async def open_email_change(token: object) -> EmailChange:
    """The change a link names, while it may be used; a `BadRequest` saying why not."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise BadRequest(LINK_UNKNOWN)
    change = await EmailChange.get_or_none(token_hash=hash_token(token)).select_related("user")
    if change is None:
        raise BadRequest(LINK_UNKNOWN)
    if change.used_at is not None:
        raise BadRequest(LINK_USED)
    if change.expires_at <= datetime.now(UTC):
        raise BadRequest(LINK_EXPIRED)
    if not change.user.is_active:
        raise BadRequest(ACCOUNT_DEACTIVATED)
    return change


async def confirm_email_change(token: object) -> User:
    """Use a link: the account's email becomes the new address; the old one is told."""
    change = await open_email_change(token)
    old = change.user.email
    try:
        async with in_transaction():
            # Claiming the link is one conditional UPDATE: of two uses at once, one wins.
            claimed = await EmailChange.filter(
                id=change.id, used_at__isnull=True, expires_at__gt=datetime.now(UTC)
            ).update(used_at=datetime.now(UTC))
            if not claimed:
                raise BadRequest(LINK_USED)
            # The column is unique: an address taken since the request is refused
            # here, and the link stays unused.
            changed = await User.filter(id=change.user_id, is_active=True).update(
                email=change.new_email
            )
            if not changed:
                raise BadRequest(ACCOUNT_DEACTIVATED)
    except IntegrityError:
        raise Conflict(ADDRESS_TAKEN) from None
    user = await User.get(id=change.user_id)
    await announce_email_change(user, old)
    return user


async def announce_email_change(user: User, old_email: str) -> None:
    """The security notice: to the person (in-app) and, by mail, to the old address."""
    await events.publish("account.email_changed", userId=user.id)
    await notifications.deliver(
        Message(
            None,
            "account.email_changed",
            "The email address of your account was changed",
            "This address no longer signs in to your account. If this was not you, "
            "tell an administrator at once.",
            "/account/profile",
            email=old_email,
        )
    )
