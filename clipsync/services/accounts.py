"""Accounts: registration, sign-in with lockout, session tokens, first admin set-up.

The auth backend (a plugin) hashes passwords and signs tokens; this service owns
the rules around them: what a valid email and password are, which categories a
person may pick, when an account locks, and when a token stops being honoured.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Subquery
from tortoise.transactions import in_transaction

from clipsync.backends import AuthBackend, TokenClaims
from clipsync.errors import (
    Conflict,
    Forbidden,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from clipsync.models import Invite, RevokedToken, Role, User
from clipsync.plugins import PluginHost
from clipsync.services.rate_limit import FailureWindow
from clipsync.settings import Settings

# Deliberately loose: the one real test of an address is mail reaching it.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
MAX_PASSWORD_LENGTH = 1024
WRONG_CREDENTIALS = "Email or password is incorrect."


@dataclass(frozen=True)
class Session:
    user: User
    token: str
    expires_at: int


def normalize_email(email: object) -> str:
    if not isinstance(email, str):
        raise ValidationFailed("Enter your email address.", field="email")
    cleaned = email.strip().casefold()
    if len(cleaned) > 254 or not EMAIL.match(cleaned):
        raise ValidationFailed("Enter a valid email address, like name@example.org.", field="email")
    return cleaned


class AccountService:
    def __init__(self, settings: Settings, auth: AuthBackend, plugins: PluginHost) -> None:
        self.settings = settings
        self.auth = auth
        self.plugins = plugins
        self.address_failures = FailureWindow(
            limit=settings.auth.max_failed_logins_per_address,
            window=settings.auth.address_window_minutes * 60,
        )
        # A hash to check wrong passwords against when the email is unknown, so a
        # sign-in takes as long whether or not the account exists.
        self._decoy_hash: str | None = None

    # --- rules ------------------------------------------------------------------

    def check_password_rules(self, password: object) -> str:
        minimum = self.settings.auth.password_min_length
        if not isinstance(password, str) or len(password) < minimum:
            raise ValidationFailed(
                f"Choose a password of at least {minimum} characters.", field="password"
            )
        if len(password) > MAX_PASSWORD_LENGTH:
            raise ValidationFailed(
                f"Passwords can be at most {MAX_PASSWORD_LENGTH} characters.", field="password"
            )
        return password

    def registrable_category(self, name: object) -> str:
        if name in (None, ""):
            return self.settings.default_category.name
        category = self.settings.category(name) if isinstance(name, str) else None
        if category is None or not category.self_select:
            choices = ", ".join(c.name for c in self.settings.categories if c.self_select)
            raise ValidationFailed(
                f"Choose one of these categories: {choices}."
                if choices
                else "Categories are assigned by an administrator; leave the category empty.",
                field="categoryRole",
            )
        return category.name

    # --- accounts ---------------------------------------------------------------

    async def create_user(
        self,
        email: object,
        password: object,
        *,
        role: Role = Role.USER,
        category: str | None = None,
    ) -> User:
        """Create an account after checking every rule; fires `user_registered`."""
        address = normalize_email(email)
        secret = self.check_password_rules(password)
        category_name = category or self.settings.default_category.name
        if self.settings.category(category_name) is None:
            raise ValidationFailed(
                f"There is no category called {category_name!r}.", field="category"
            )
        password_hash = await asyncio.to_thread(self.auth.hash_password, secret)
        try:
            user = await User.create(
                email=address, password_hash=password_hash, role=role, category=category_name
            )
        except IntegrityError:
            raise Conflict("An account with this email already exists. Try signing in.") from None
        await self.plugins.notify("user_registered", user=user)
        return user

    async def register(
        self, email: object, password: object, category: object = None, invite: object = None
    ) -> Session:
        """Self-service registration, as `[auth] registration` allows.

        An invite (from an administrator) sets the category and role and is used up;
        it is required when registration is `invite` and refused when `closed`.
        """
        mode = self.settings.auth.registration
        if mode == "closed":
            raise Forbidden("Registration is closed. Ask an administrator for an account.")
        if not invite:
            if mode == "invite":
                raise Forbidden("Registration needs an invite link. Ask an administrator for one.")
            user = await self.create_user(
                email, password, category=self.registrable_category(category)
            )
            return self.start_session(user)
        async with in_transaction():
            found = await self._open_invite(invite)
            user = await self.create_user(email, password, role=found.role, category=found.category)
            # Only one registration can use the invite, even when two race for it.
            used = await Invite.filter(id=found.id, used_at__isnull=True).update(
                used_at=datetime.now(UTC), used_by_id=user.id
            )
            if not used:
                raise Conflict("This invite has just been used. Ask for a new one.")
        return self.start_session(user)

    @staticmethod
    async def _open_invite(token: object) -> Invite:
        digest = hashlib.sha256(str(token).encode()).hexdigest()
        found = await Invite.get_or_none(token_hash=digest)
        if found is None or found.used_at is not None:
            raise Forbidden("This invite link is not valid, or has been used. Ask for a new one.")
        if found.expires_at <= datetime.now(UTC):
            raise Forbidden("This invite link has expired. Ask an administrator for a new one.")
        return found

    async def admin_exists(self) -> bool:
        return await User.filter(role=Role.ADMIN, is_active=True).exists()

    async def set_up_first_admin(self, email: object, password: object) -> Session:
        """Create the first administrator; refused once any administrator exists."""
        async with in_transaction():
            if await self.admin_exists():
                raise Conflict("This ClipSync is already set up. Sign in instead.")
            user = await self.create_user(email, password, role=Role.ADMIN)
        return self.start_session(user)

    # --- signing in -------------------------------------------------------------

    async def login(self, email: object, password: object, address: str) -> Session:
        wait = self.address_failures.retry_after(address)
        if wait:
            raise TooManyRequests(
                "Too many failed sign-ins from your network. Please wait and try again.",
                retry_after=wait,
            )
        if not isinstance(email, str) or not isinstance(password, str) or not password:
            raise ValidationFailed("Enter your email and password.")
        user = await User.get_or_none(email=email.strip().casefold())
        now = datetime.now(UTC)
        if user is not None and user.locked_until and user.locked_until > now:
            raise TooManyRequests(
                "This account is locked after too many failed sign-ins. Please try again later.",
                retry_after=int((user.locked_until - now).total_seconds()) + 1,
            )
        if user is None:
            await asyncio.to_thread(self.auth.check_password, password, await self._decoy())
            self.address_failures.record(address)
            raise Unauthorized(WRONG_CREDENTIALS)
        if not await asyncio.to_thread(self.auth.check_password, password, user.password_hash):
            self.address_failures.record(address)
            await self._record_failure(user, now)
            raise Unauthorized(WRONG_CREDENTIALS)
        if not user.is_active:
            raise Forbidden("This account has been deactivated. Ask an administrator.")
        user.failed_logins = 0
        user.locked_until = None
        user.last_login_at = now
        await user.save(update_fields=["failed_logins", "locked_until", "last_login_at"])
        return self.start_session(user)

    async def _record_failure(self, user: User, now: datetime) -> None:
        user.failed_logins += 1
        fields = ["failed_logins"]
        if user.failed_logins >= self.settings.auth.max_failed_logins:
            user.failed_logins = 0
            user.locked_until = now + timedelta(minutes=self.settings.auth.lockout_minutes)
            fields.append("locked_until")
        await user.save(update_fields=fields)

    async def _decoy(self) -> str:
        if self._decoy_hash is None:
            self._decoy_hash = await asyncio.to_thread(self.auth.hash_password, "not a password")
        return self._decoy_hash

    # --- tokens -----------------------------------------------------------------

    def start_session(self, user: User) -> Session:
        now = int(time.time())
        expires_at = now + self.settings.auth.token_lifetime_hours * 3600
        claims = TokenClaims(
            id=user.id,
            email=user.email,
            role=str(user.role),
            category_role=user.category,
            token_version=user.token_version,
            issued_at=now,
            expires_at=expires_at,
        )
        return Session(user=user, token=self.auth.issue_token(claims), expires_at=expires_at)

    async def user_for_token(self, token: str) -> User:
        """The user a token belongs to, if the token is still honoured."""
        claims = self.auth.read_token(token)
        # One query for the user and the revocation: it runs on every request.
        users = User.filter(id=claims.id)
        if claims.token_id:
            revoked = RevokedToken.filter(token_id=claims.token_id).values("token_id")
            users = users.annotate(revoked_token=Subquery(revoked))
        user = await users.first()
        if user is None or not user.is_active:
            raise Unauthorized("Your account is no longer active.")
        if claims.token_version != user.token_version:
            raise Unauthorized(
                "Your session has ended because your account changed. Please sign in again."
            )
        if claims.token_id and getattr(user, "revoked_token", None) is not None:
            raise Unauthorized("You have signed out. Please sign in again.")
        return user

    async def logout(self, token: str) -> None:
        """Refuse this token from now on; other sessions of the user go on."""
        claims = self.auth.read_token(token)
        now = datetime.now(UTC)
        await RevokedToken.filter(expires_at__lt=now).delete()
        await RevokedToken.update_or_create(
            token_id=claims.token_id,
            defaults={"expires_at": datetime.fromtimestamp(claims.expires_at, UTC)},
        )

    async def end_all_sessions(self, user: User) -> None:
        """Invalidate every token issued to `user` (role or category change)."""
        await User.filter(id=user.id).update(token_version=F("token_version") + 1)
        await user.refresh_from_db(fields=["token_version"])
