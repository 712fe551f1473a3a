"""Accounts: registration, sign-in and its limits, session tokens, first admin set-up.

The auth backend (a plugin) hashes passwords and signs tokens; this service owns
the rules around them: what a valid email is (a new password's rules are
password_rules.py), which categories a person may pick, when a client address must
wait before trying again (see rate_limit.py), when a token stops being honoured,
and that set-up happens once. Sign-in sessions and their refresh tokens are
auth_sessions.py (`AccountService.sessions`).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Subquery
from tortoise.transactions import in_transaction

from clipsync import cache, devices, events, metrics
from clipsync.backends import AuthBackend, TokenClaims
from clipsync.cache import rows
from clipsync.errors import (
    Conflict,
    Forbidden,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from clipsync.models import Invite, KnownDevice, RevokedToken, Role, SiteState, User
from clipsync.models.site import SITE_STATE_ID
from clipsync.plugins import PluginHost
from clipsync.services.auth_sessions import AuthSessions, end_sessions
from clipsync.services.password_rules import check_new_password
from clipsync.services.rate_limit import InFlight, Reservation, SignInThrottle, address_window
from clipsync.services.two_factor import ENROL, VERIFY, TwoFactor
from clipsync.settings import Settings
from clipsync.text_rules import clean_field

# Deliberately loose: the one real test of an address is mail reaching it.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
MAX_EMAIL_LENGTH = 254
# The column that keys failures by client address (an IPv6 address with a zone fits).
MAX_ADDRESS_LENGTH = 64
WRONG_CREDENTIALS = "Email or password is incorrect."
# None of these says whether the email has an account: they are answered alike.
TOO_MANY_FOR_EMAIL = (
    "Too many failed sign-ins with this email from your network. Please wait and try again."
)
TOO_MANY_FROM_ADDRESS = "Too many failed sign-ins from your network. Please wait and try again."
TOO_MANY_AT_ONCE = "Too many sign-ins at the same time. Please wait a moment and try again."


@dataclass(frozen=True)
class Session:
    """What a sign-in (or a refresh) hands out.

    `token` is the access token, expiring at `expires_at` (Unix seconds). A session
    kept in the database (`services/auth_sessions.py`) also has its id, its refresh
    token and when it ends unless refreshed; `start_session` makes one without.
    """

    user: User
    token: str
    expires_at: int
    refresh_token: str = ""
    session_id: str = ""
    session_expires_at: int = 0

    @property
    def expires_in(self) -> int:
        """Seconds the access token has left."""
        return max(0, self.expires_at - int(time.time()))


@dataclass(frozen=True)
class MfaChallenge:
    """A right password when a second step is due: a code (`verify`) or enrolling (`enrol`).

    `token` (the `mfaToken`) is all the person holds until that step is done; see
    services/two_factor.py.
    """

    user: User
    purpose: str
    token: str


def fold_email(email: str) -> str:
    """The form an email is stored and looked up in: trimmed, NFKC, case-folded."""
    # Case folding can undo NFKC (e.g. U+0130), so normalise on both sides of it.
    folded = unicodedata.normalize("NFKC", email.strip()).casefold()
    return unicodedata.normalize("NFKC", folded)


def normalize_email(email: object) -> str:
    """A new account's email, folded; refused when invalid or holding invisible characters."""
    if not isinstance(email, str):
        raise ValidationFailed("Enter your email address.", field="email")
    cleaned = fold_email(
        clean_field(email.strip(), field="email", what="Email addresses", identifier=True)
    )
    if len(cleaned) > MAX_EMAIL_LENGTH or not EMAIL.match(cleaned):
        raise ValidationFailed("Enter a valid email address, like name@example.org.", field="email")
    return cleaned


def refusal(
    claims: TokenClaims, user: User | None, *, revoked: bool, live: bool
) -> Unauthorized | None:
    """Why a token is no longer honoured, or None: the one rule, for requests and streams.

    `revoked`: the token was signed out; `live`: its session (when it names one) has
    not ended.
    """
    if user is None or not user.is_active:
        return Unauthorized("Your account is no longer active.")
    if claims.token_version != user.token_version:
        return Unauthorized(
            "Your session has ended because your account changed. Please sign in again."
        )
    if claims.token_id and revoked:
        return Unauthorized("You have signed out. Please sign in again.")
    if claims.session_id and not live:
        return Unauthorized("This sign-in has ended. Please sign in again.")
    return None


class AccountService:
    def __init__(self, settings: Settings, auth: AuthBackend, plugins: PluginHost) -> None:
        self.settings = settings
        self.auth = auth
        self.plugins = plugins
        # In Redis when the queue is there, so every worker and host counts together.
        self.address_attempts = address_window(settings)
        self.in_flight = InFlight(settings.auth.max_concurrent_logins)
        self.throttle = SignInThrottle(settings.auth)
        self.sessions = AuthSessions(settings, auth)
        self.two_factor = TwoFactor(settings)
        # A hash to check wrong passwords against when the email is unknown, so a
        # sign-in takes as long whether or not the account exists.
        self._decoy_hash: str | None = None

    # --- rules ------------------------------------------------------------------

    def check_password_rules(self, password: object) -> str:
        return check_new_password(self.settings, password)

    async def check_password_allowed(self, user: User | None, action: str) -> None:
        """Refuse (403) a use of a ClipSync password that a plugin's
        `local_password_refused` forbids: single sign-on keeping passwords for admins.

        `action`: "sign_in", "register", "change" or "reset"; `user` is None when
        registering.
        """
        message = await self.plugins.decide(
            "local_password_refused", user=user, action=action, plugins=self.plugins
        )
        if message:
            raise Forbidden(message)

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
        if role == Role.ADMIN:
            # However the first administrator comes (set-up, `clipsync user create`),
            # from then on /setup is closed.
            await self._mark_set_up()
        await self.plugins.notify("user_registered", user=user)
        return user

    async def register(
        self,
        email: object,
        password: object,
        category: object = None,
        invite: object = None,
        *,
        user_agent: str = "",
        address: str = "",
    ) -> Session:
        """Self-service registration, as `[auth] registration` allows.

        An invite (from an administrator) sets the category and role and is used up;
        it is required when registration is `invite` and refused when `closed`.
        """
        mode = self.settings.auth.registration
        if mode == "closed":
            raise Forbidden("Registration is closed. Ask an administrator for an account.")
        await self.check_password_allowed(None, "register")
        if not invite:
            if mode == "invite":
                raise Forbidden("Registration needs an invite link. Ask an administrator for one.")
            user = await self.create_user(
                email, password, category=self.registrable_category(category)
            )
            return await self.signed_in(user, user_agent=user_agent, address=address)
        async with in_transaction():
            found = await self._open_invite(invite)
            user = await self.create_user(email, password, role=found.role, category=found.category)
            # Only one registration can use the invite, even when two race for it.
            used = await Invite.filter(id=found.id, used_at__isnull=True).update(
                used_at=datetime.now(UTC), used_by_id=user.id
            )
            if not used:
                raise Conflict("This invite has just been used. Ask for a new one.")
        return await self.signed_in(user, user_agent=user_agent, address=address)

    @staticmethod
    async def _open_invite(token: object) -> Invite:
        digest = hashlib.sha256(str(token).encode()).hexdigest()
        found = await Invite.get_or_none(token_hash=digest)
        if found is None or found.used_at is not None:
            raise Forbidden("This invite link is not valid, or has been used. Ask for a new one.")
        if found.expires_at <= datetime.now(UTC):
            raise Forbidden("This invite link has expired. Ask an administrator for a new one.")
        return found

    # --- first-run set-up -------------------------------------------------------

    async def is_set_up(self) -> bool:
        """Whether a first administrator was ever created; then `/setup` stays closed.

        Only the stored flag and the existence of an administrator count: removing
        every administrator later does not open set-up again.
        """
        if await SiteState.filter(id=SITE_STATE_ID, set_up=True).exists():
            return True
        if await User.filter(role=Role.ADMIN).exists():
            await self._mark_set_up()
            return True
        return False

    @staticmethod
    async def _mark_set_up() -> bool:
        """Set the set-up flag; True when this call set it (false before)."""
        # The migration inserted the row; a database restored without it gets it back.
        await SiteState.bulk_create(
            [SiteState(id=SITE_STATE_ID, set_up=False)], ignore_conflicts=True
        )
        return bool(await SiteState.filter(id=SITE_STATE_ID, set_up=False).update(set_up=True))

    async def set_up_first_admin(
        self, email: object, password: object, *, user_agent: str = "", address: str = ""
    ) -> Session:
        """Create the first administrator; refused once set-up was ever done."""
        normalize_email(email)
        self.check_password_rules(password)
        async with in_transaction():
            # Claiming the flag is one conditional UPDATE, so of two set-ups at once
            # one wins; a failure below rolls the claim back.
            if not await self._mark_set_up() or await User.filter(role=Role.ADMIN).exists():
                raise Conflict("This ClipSync is already set up. Sign in instead.")
            user = await self.create_user(email, password, role=Role.ADMIN)
        return await self.signed_in(user, user_agent=user_agent, address=address)

    # --- signing in -------------------------------------------------------------

    async def login(
        self, email: object, password: object, address: str, user_agent: str = ""
    ) -> Session | MfaChallenge:
        """Check a password, within the limits of rate_limit.py, and start a session.

        With two-factor on (or required of the account's role and not yet set up),
        a right password gives an `MfaChallenge` instead; `finish_sign_in` starts
        the session once that step is done.

        Every limit is taken before the password is checked (bcrypt is the slow
        part), so attempts sent at the same moment are counted one by one. A sign-in
        from a device (User-Agent) the account never used tells its owner.
        """
        if not isinstance(email, str) or not isinstance(password, str) or not password:
            raise ValidationFailed("Enter your email and password.")
        key = fold_email(email)[:MAX_EMAIL_LENGTH]
        address = address[:MAX_ADDRESS_LENGTH]
        places = (f"address {address}", f"email {key}")
        if not self.in_flight.enter(*places):
            raise TooManyRequests(TOO_MANY_AT_ONCE, retry_after=1)
        try:
            session = await self._login(key, password, address, user_agent)
        finally:
            self.in_flight.leave(*places)
        if isinstance(session, MfaChallenge):
            return session
        await self._note_device(session.user, user_agent, address)
        return session

    async def finish_sign_in(
        self, user: User, *, user_agent: str = "", address: str = ""
    ) -> Session:
        """Start the session of a sign-in whose second step (services/two_factor.py) is done."""
        session = await self.signed_in(user, user_agent=user_agent, address=address)
        await self._note_device(user, user_agent, address[:MAX_ADDRESS_LENGTH])
        return session

    async def _login(
        self, email: str, password: str, address: str, user_agent: str
    ) -> Session | MfaChallenge:
        wait = await self.address_attempts.take(address)
        if wait:
            metrics.sign_in_failed("throttled_address")
            raise TooManyRequests(TOO_MANY_FROM_ADDRESS, retry_after=wait)
        reservation = await self.throttle.reserve(email, address, datetime.now(UTC))
        if reservation.retry_after:
            await self.address_attempts.give_back(address)  # refused unchecked: no guess
            metrics.sign_in_failed("throttled_email")
            raise TooManyRequests(TOO_MANY_FOR_EMAIL, retry_after=reservation.retry_after)
        user = await User.get_or_none(email=email)
        # An unknown email costs a bcrypt too, so timing does not tell them apart.
        password_hash = user.password_hash if user is not None else await self._decoy()
        right = await asyncio.to_thread(self.auth.check_password, password, password_hash)
        if user is None or not right:
            metrics.sign_in_failed("wrong_credentials", lockout=reservation.wait_until is not None)
            if user is not None:
                await self._note_failure(user, reservation)
            raise Unauthorized(WRONG_CREDENTIALS)
        # The attempt was counted as a failure when it started: take that back.
        await self.address_attempts.give_back(address)
        await self.throttle.clear(email, address)
        # Look again after the slow check: the account may have changed meanwhile.
        await user.refresh_from_db()
        if not user.is_active:
            raise Forbidden("This account has been deactivated. Ask an administrator.")
        # Only now: a refusal must not tell a guesser whether the password was right.
        await self.check_password_allowed(user, "sign_in")
        await User.filter(id=user.id).update(failed_logins=0, locked_until=None)
        if user.totp_enabled_at is not None:
            return MfaChallenge(user, VERIFY, self.two_factor.issue_token(user, VERIFY))
        if self.two_factor.required_for(user):
            return MfaChallenge(user, ENROL, self.two_factor.issue_token(user, ENROL))
        return await self.signed_in(user, user_agent=user_agent, address=address)

    @staticmethod
    async def _note_device(user: User, user_agent: str, address: str) -> None:
        """Remember the device; the first sign-in from a new one (not the account's
        very first) sends `account.new_sign_in`, a security notification."""
        mark = devices.fingerprint(user_agent)
        now = datetime.now(UTC)
        if await KnownDevice.filter(user_id=user.id, fingerprint=mark).update(last_seen_at=now):
            return
        first = not await KnownDevice.filter(user_id=user.id).exists()
        try:
            await KnownDevice.create(user_id=user.id, fingerprint=mark)
        except IntegrityError:
            return  # the same device signed in twice at once: one notice is enough
        if not first:
            await events.publish(
                "account.new_sign_in",
                userId=user.id,
                device=devices.describe(user_agent),
                address=address,
            )

    @staticmethod
    async def _note_failure(user: User, reservation: Reservation) -> None:
        """Keep the account's counters for administrators, atomically."""
        changes: dict[str, object] = {"failed_logins": F("failed_logins") + 1}
        if reservation.wait_until is not None:
            changes["locked_until"] = reservation.wait_until
        await User.filter(id=user.id).update(**changes)

    async def _decoy(self) -> str:
        if self._decoy_hash is None:
            self._decoy_hash = await asyncio.to_thread(self.auth.hash_password, "not a password")
        return self._decoy_hash

    # --- tokens -----------------------------------------------------------------

    async def signed_in(self, user: User, *, user_agent: str = "", address: str = "") -> Session:
        """Start a sign-in session for `user` and note it as their last sign-in."""
        now = datetime.now(UTC)
        await User.filter(id=user.id).update(last_login_at=now)
        user.last_login_at = now
        return await self.sessions.start(user, user_agent=user_agent, address=address)

    def start_session(self, user: User) -> Session:
        """An access token tied to no sign-in session, so it has no refresh token.

        For tools and tests that act as a person for a moment. It lives
        `[auth] access_token_minutes`; the token version and sign-out still end it.
        """
        token, expires_at = self.sessions.access_token(user)
        return Session(user=user, token=token, expires_at=expires_at)

    async def user_for_token(self, token: str) -> User:
        """The user a token belongs to, if the token is still honoured."""
        user, _claims = await self.identify(token)
        return user

    async def identify(self, token: str) -> tuple[User, TokenClaims]:
        """The user a token belongs to and its claims, if the token is still honoured.

        A token naming a session is honoured only while that session is not revoked.
        """
        claims = self.auth.read_token(token)
        return await self._honoured(claims), claims

    async def still_signed_in(self, claims: TokenClaims) -> User:
        """The user of a long-lived connection opened with `claims`, if it may go on.

        A live stream outlives its access token: while the token's session goes on
        (refreshed by the page), so does the stream. A token tied to no session
        ends it when the token expires.
        """
        [answer] = (await self.still_signed_in_all([claims])).values()
        if isinstance(answer, Unauthorized):
            raise answer
        return answer

    async def still_signed_in_all(
        self, all_claims: list[TokenClaims]
    ) -> dict[TokenClaims, User | Unauthorized]:
        """`still_signed_in` for many connections at once, in three queries whatever their
        number: each process checks all its live streams together."""
        now = datetime.now(UTC)
        users = {
            u.id: u for u in await User.filter(id__in={c.id for c in all_claims})
        }  # fmt: skip
        token_ids = {c.token_id for c in all_claims if c.token_id}
        revoked = set(
            await RevokedToken.filter(token_id__in=token_ids).values_list("token_id", flat=True)
        ) if token_ids else set()  # fmt: skip
        live = await self.sessions.live_ids({c.session_id for c in all_claims if c.session_id})
        answers: dict[TokenClaims, User | Unauthorized] = {}
        for claims in all_claims:
            if not claims.session_id and claims.expires_at <= now.timestamp():
                answers[claims] = Unauthorized("Your session has expired. Please sign in again.")
                continue
            user = users.get(claims.id)
            problem = refusal(
                claims,
                user,
                revoked=claims.token_id in revoked,
                live=claims.session_id in live,
            )
            answers[claims] = problem if problem is not None else user  # type: ignore[assignment]
        return answers

    async def _honoured(self, claims: TokenClaims) -> User:
        """The user of `claims`, unless the token or its session no longer counts.

        Through the cache: the answer is kept per user, token and session, tagged
        `user:<id>`, which every change of the account drops (a role or category,
        deactivation, the token version, a sign-out, an ended session: all publish an
        `account.*` event). The rule (`refusal`) is applied to it on every request.
        """
        key = f"identity:{rows.shape(User)}:{claims.id}:{claims.token_id}:{claims.session_id}"
        found = await cache.current().get_or_fill(
            key, [cache.user_tag(claims.id)], lambda: self._read_identity(claims)
        )
        user = rows.load(User, found["user"]) if found["user"] is not None else None
        problem = refusal(claims, user, revoked=found["revoked"], live=found["live"])
        if problem is not None:
            raise problem
        assert user is not None
        return user

    async def _read_identity(self, claims: TokenClaims) -> dict[str, Any]:
        # One query for the user, the revocation and the session (in the database; see
        # services/auth_sessions.py): it runs on every miss.
        users = User.filter(id=claims.id)
        if claims.token_id:
            revoked = RevokedToken.filter(token_id=claims.token_id).values("token_id")
            users = users.annotate(revoked_token=Subquery(revoked))
        user = await self.sessions.fold_live_check(users, claims).first()
        return {
            "user": rows.dump(user) if user is not None else None,
            "revoked": getattr(user, "revoked_token", None) is not None,
            "live": await self.sessions.was_live(user, claims),
        }

    async def logout(self, token: str) -> None:
        """End this token's session (and the token itself); other sessions go on."""
        claims = self.auth.read_token(token)
        now = datetime.now(UTC)
        if claims.session_id:
            await self.sessions.sign_out(claims.id, claims.session_id)
        await RevokedToken.filter(expires_at__lt=now).delete()
        await RevokedToken.update_or_create(
            token_id=claims.token_id,
            defaults={"expires_at": datetime.fromtimestamp(claims.expires_at, UTC)},
        )
        await events.publish("account.signed_out", userId=claims.id)

    async def end_all_sessions(self, user: User) -> None:
        """Invalidate every token and sign-in session of `user`."""
        async with in_transaction():
            await User.filter(id=user.id).update(token_version=F("token_version") + 1)
            await end_sessions(user.id)
        await user.refresh_from_db(fields=["token_version"])
        await events.publish("account.sessions_ended", userId=user.id)
