"""Two-factor sign-in with TOTP (RFC 6238) and single-use recovery codes.

The shared secret is kept sealed (Fernet: AES and an HMAC) with `[auth]
two_factor_secret`, or, when that is empty, a key the server generated once into
`<data_dir>/secrets/two_factor.key` (see generated_keys.py), so a copy of the
database alone gives no one the codes. Hosts sharing a database must seal with the
same key: a host with a generated one of its own refuses to start there.

A code is accepted within one 30-second step either side of now, and each step at
most once: `totp_last_step` only moves forward, in one conditional UPDATE, so two
requests racing with the same code cannot both win. Recovery codes are kept as
SHA-256 hashes (80 random bits need no slow hash) and each is used up by one
conditional UPDATE.

Between the password and the code, the person holds an `mfaToken`: a short-lived
HMAC-signed note, not a JWT, naming the account, its token version and what it is
for (`verify` a code, or `enrol` first). `clipsync/sessions.py` refuses it as an
access token, and the auth backend could not read it anyway. Wrong codes count
against the account in `SignInThrottle` (rate_limit.py), keyed by the account, not
the client address: whoever holds the password may be anywhere.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from clipsync import events, generated_keys
from clipsync.backends import AuthBackend
from clipsync.errors import (
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from clipsync.models import Role, User
from clipsync.models.two_factor import RecoveryCode
from clipsync.services.moderation import record
from clipsync.services.rate_limit import SignInThrottle
from clipsync.settings import Settings

if TYPE_CHECKING:
    from clipsync.services.accounts import AccountService

KEY_FILE = "two_factor.key"
TOKEN_PREFIX = "mfa."
# Long enough to open the authenticator app and type a code; short enough to be useless later.
TOKEN_SECONDS = 300
VERIFY = "verify"
ENROL = "enrol"
RECOVERY_CODES = 10
# Letters and digits a person can read back without doubt (no 0/o, 1/l/i), and never
# "-" or "_": those are dropped from what is typed, as dashes and spaces are (about 49
# bits in 10 characters).
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
STEP_SECONDS = 30
CHANGED = "account.two_factor_changed"
WRONG_CODE = "That code is not right, or was already used. Try the next code."
TOO_MANY = "Too many wrong codes. Please wait and try again."
TOKEN_EXPIRED = "This sign-in step is not valid or has expired. Please sign in again."
NOT_A_SESSION = "This token only completes a two-factor sign-in; it is not a session."


def is_mfa_token(token: str) -> bool:
    """Whether `token` is an `mfaToken` (which must never pass as an access token)."""
    return token.startswith(TOKEN_PREFIX)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _recovery_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _clean_code(code: object) -> str:
    """A code as typed, without spaces or dashes, lower case; refused when not text."""
    if not isinstance(code, str) or not code.strip():
        raise ValidationFailed("Enter the code from your authenticator app.", field="code")
    return "".join(code.split()).replace("-", "").lower()[:64]


@dataclass(frozen=True)
class Enrolment:
    """What a person needs to add the account to an authenticator app."""

    secret: str
    otpauth_url: str
    qr_svg: str


class TwoFactor:
    """Enrolment, codes, recovery codes and the `mfaToken` between password and code."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.throttle = SignInThrottle(settings.auth)
        self._keys: tuple[Fernet, bytes] | None = None

    def _secrets(self) -> tuple[Fernet, bytes]:
        # Read on first use, not at start-up: most requests never need it.
        if self._keys is None:
            configured = self.settings.auth.two_factor_secret.reveal()
            path = self.settings.data_dir / "secrets" / KEY_FILE
            secret = generated_keys.key_for(path, 32, configured).encode()
            # Domain-separated: one file, two keys that can never stand in for each other.
            seal = hashlib.sha256(b"clipsync totp seal v1\0" + secret).digest()
            sign = hashlib.sha256(b"clipsync mfa token v1\0" + secret).digest()
            self._keys = (Fernet(base64.urlsafe_b64encode(seal)), sign)
        return self._keys

    def required_for(self, user: User) -> bool:
        """Whether `user` must enrol before signing in (`[auth] require_mfa_for`)."""
        return user.totp_enabled_at is None and str(user.role) in self.settings.auth.require_mfa_for

    # --- the token between the password and the code ----------------------------

    def issue_token(self, user: User, purpose: str) -> str:
        body = json.dumps(
            {"u": user.id, "v": user.token_version, "p": purpose,
             "e": int(time.time()) + TOKEN_SECONDS},
            separators=(",", ":"),
        ).encode()  # fmt: skip
        mac = hmac.new(self._secrets()[1], body, hashlib.sha256).digest()
        return f"{TOKEN_PREFIX}{_b64(body)}.{_b64(mac)}"

    async def read_token(self, token: object, *purposes: str) -> tuple[User, str]:
        """The account and purpose of a genuine, unexpired `mfaToken` meant for `purposes`."""
        if not isinstance(token, str) or not is_mfa_token(token):
            raise Unauthorized(TOKEN_EXPIRED)
        try:
            body_text, mac_text = token[len(TOKEN_PREFIX) :].split(".")
            body, mac = _unb64(body_text), _unb64(mac_text)
        except (ValueError, binascii.Error):
            raise Unauthorized(TOKEN_EXPIRED) from None
        expected = hmac.new(self._secrets()[1], body, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, mac):
            raise Unauthorized(TOKEN_EXPIRED)
        claims = json.loads(body)
        if claims["e"] < time.time() or claims["p"] not in purposes:
            raise Unauthorized(TOKEN_EXPIRED)
        user = await User.get_or_none(id=claims["u"])
        # A password change, a reset or an admin's change ends the step like a session.
        if user is None or not user.is_active or user.token_version != claims["v"]:
            raise Unauthorized(TOKEN_EXPIRED)
        return user, claims["p"]

    # --- enrolling and turning off ------------------------------------------------

    async def begin(self, user: User) -> Enrolment:
        """A new secret for `user` (replacing one not yet confirmed), and its QR code."""
        if user.totp_enabled_at is not None:
            raise Conflict("Two-factor sign-in is already on. Turn it off first to start again.")
        secret = pyotp.random_base32()
        sealed = self._secrets()[0].encrypt(secret.encode()).decode()
        updated = await User.filter(id=user.id, totp_enabled_at__isnull=True).update(
            totp_secret=sealed, totp_last_step=None
        )
        if not updated:
            raise Conflict("Two-factor sign-in is already on. Turn it off first to start again.")
        return self._enrolment(user, secret)

    async def pending(self, user: User) -> Enrolment | None:
        """The enrolment begun and not yet confirmed (to show its QR code again), if any."""
        await user.refresh_from_db()
        if user.totp_enabled_at is not None or not user.totp_secret:
            return None
        try:
            secret = self._secrets()[0].decrypt(user.totp_secret.encode()).decode()
        except InvalidToken:
            return None
        return self._enrolment(user, secret)

    def _enrolment(self, user: User, secret: str) -> Enrolment:
        url = pyotp.TOTP(secret).provisioning_uri(
            name=user.email, issuer_name=self.settings.web.site_name
        )
        svg = segno.make(url, error="m").svg_inline(scale=4, dark="#000", light="#fff")
        return Enrolment(secret=secret, otpauth_url=url, qr_svg=svg)

    async def confirm(self, user: User, code: object) -> list[str]:
        """Turn two-factor on with a first right code; the recovery codes, shown once."""
        await user.refresh_from_db()
        if user.totp_enabled_at is not None:
            raise Conflict("Two-factor sign-in is already on.")
        if not user.totp_secret:
            raise Conflict("Start setting up two-factor sign-in first.")
        await self.check_code(user, code, recovery=False)
        codes = [
            "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10))
            for _ in range(RECOVERY_CODES)
        ]
        codes = [f"{c[:5]}-{c[5:]}" for c in codes]
        async with in_transaction():
            on = await User.filter(id=user.id, totp_enabled_at__isnull=True).update(
                totp_enabled_at=datetime.now(UTC)
            )
            if not on:
                raise Conflict("Two-factor sign-in is already on.")
            await RecoveryCode.filter(user_id=user.id).delete()
            await RecoveryCode.bulk_create(
                [RecoveryCode(user_id=user.id, code_hash=_recovery_hash(_clean_code(c)))
                 for c in codes]
            )  # fmt: skip
        await user.refresh_from_db()
        await events.publish(CHANGED, userId=user.id, enabled=True)
        return codes

    async def turn_off(self, user: User, password: object, code: object, auth: AuthBackend) -> None:
        """Turn two-factor off: the password and a code (or a recovery code) must be right."""
        await user.refresh_from_db()
        if user.totp_enabled_at is None:
            raise Conflict("Two-factor sign-in is not on.")
        if str(user.role) in self.settings.auth.require_mfa_for:
            raise Forbidden("Your role must use two-factor sign-in, so it cannot be turned off.")
        if not isinstance(password, str) or not password:
            raise ValidationFailed("Enter your password.", field="password")
        secret = password

        async def password_right() -> bool:
            return await asyncio.to_thread(auth.check_password, secret, user.password_hash)

        await self.check_code(user, code, also=password_right)
        await self.clear(user)
        await events.publish(CHANGED, userId=user.id, enabled=False)

    @staticmethod
    async def clear(user: User) -> None:
        """Forget the secret and the recovery codes (turning off, or an admin's reset)."""
        async with in_transaction():
            await User.filter(id=user.id).update(
                totp_secret=None, totp_enabled_at=None, totp_last_step=None
            )
            await RecoveryCode.filter(user_id=user.id).delete()
        await user.refresh_from_db()

    # --- checking a code ----------------------------------------------------------

    async def check_code(
        self,
        user: User,
        code: object,
        *,
        recovery: bool = True,
        also: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """Accept a TOTP code (or, when `recovery`, a recovery code) once, or refuse it.

        Every attempt counts against the account before it is checked and is taken
        back when right (rate_limit.py), so a burst of guesses waits like a series.
        `also` is a further check (the password) that must pass before the code is
        looked at, so a wrong password never uses a code up.
        """
        cleaned = _clean_code(code)
        key = f"two-factor {user.id}"
        reservation = await self.throttle.reserve(key, "account", datetime.now(UTC))
        if reservation.retry_after:
            raise TooManyRequests(TOO_MANY, retry_after=reservation.retry_after)
        if also is not None and not await also():
            raise Unauthorized("Password or code is incorrect.")
        if not await self._accept(user, cleaned, recovery):
            raise Unauthorized(WRONG_CODE if also is None else "Password or code is incorrect.")
        await self.throttle.clear(key, "account")

    async def _accept(self, user: User, code: str, recovery: bool) -> bool:
        if code.isdigit() and len(code) == 6 and user.totp_secret:
            try:
                secret = self._secrets()[0].decrypt(user.totp_secret.encode()).decode()
            except InvalidToken:
                return False  # sealed with another server's key: enrol again
            totp = pyotp.TOTP(secret)
            now_step = int(time.time()) // STEP_SECONDS
            for step in (now_step - 1, now_step, now_step + 1):
                if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
                    # Moves only forward, so this step and every earlier one are used up.
                    return bool(
                        await User.filter(
                            Q(totp_last_step__isnull=True) | Q(totp_last_step__lt=step),
                            id=user.id,
                        ).update(totp_last_step=step)
                    )
            return False
        if not recovery or len(code) != 10:
            return False
        return bool(
            await RecoveryCode.filter(
                user_id=user.id, code_hash=_recovery_hash(code), used_at__isnull=True
            ).update(used_at=datetime.now(UTC))
        )

    @staticmethod
    async def recovery_codes_left(user: User) -> int:
        return await RecoveryCode.filter(user_id=user.id, used_at__isnull=True).count()


async def reset_by_admin(accounts: AccountService, admin: User, user_id: int) -> User:
    """An administrator turns off someone's two-factor (a lost phone and lost codes).

    Audited, and every session of theirs ends: whoever signs in next must be them.
    """
    if admin.role != Role.ADMIN:
        raise Forbidden("Only administrators can reset two-factor sign-in.")
    user = await User.get_or_none(id=user_id)
    if user is None:
        raise NotFound("There is no such account.")
    was_on = user.totp_enabled_at is not None
    await accounts.two_factor.clear(user)
    await record(admin, "two_factor_reset", target=user, was_on=was_on)
    await accounts.end_all_sessions(user)
    await events.publish(CHANGED, userId=user.id, enabled=False)
    return user
