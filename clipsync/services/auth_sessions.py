"""Sign-in sessions: short access tokens renewed by rotating refresh tokens.

Named for its models (`models/auth_sessions.py`); `clipsync/sessions.py` is another
concern, who makes a request (cookie or bearer, CSRF).

A sign-in makes one `AuthSession` row. Its access tokens are JWTs naming it (`sid`)
that live `[auth] access_token_minutes`; its refresh token is 256 random bits of
which only the SHA-256 is kept. Each refresh hands out a new pair and records the
old refresh token as used: presenting a used one again means two parties hold it,
so the whole session ends (theft detection). The session lives `session_days`
after its last refresh and never past `session_max_days` after the sign-in.

Every request checks that its session is not revoked (one lookup, folded into the
user query of `AccountService.user_for_token`); a shared cache (`clipsync/cache.py`,
to come) could later save it. `last_used_at` moves on each refresh, not on each
request, so it is exact to within one access-token lifetime and costs no write.

Ending sessions (`end_sessions`) is called wherever the token version is bumped
(password change or reset, role, category or active changes): the bump ends the
access tokens, the revoked rows stop their refresh tokens from making new ones.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tortoise.transactions import in_transaction

from clipsync import devices, events
from clipsync.backends import AuthBackend, TokenClaims
from clipsync.errors import NotFound, Unauthorized
from clipsync.models import User
from clipsync.models.auth_sessions import AuthSession, UsedRefreshToken
from clipsync.settings import Settings

if TYPE_CHECKING:
    from clipsync.services.accounts import Session

# A refresh token from `secrets.token_urlsafe(32)` is 43 characters: anything far
# longer is no token and is not hashed.
MAX_REFRESH_LENGTH = 128
MAX_ADDRESS_LENGTH = 64
SESSION_ENDED = "This sign-in has ended. Please sign in again."
REFRESH_UNKNOWN = "This sign-in is not valid. Please sign in again."
REFRESH_REUSED = (
    "This sign-in was used from somewhere else, so it has been ended to keep your "
    "account safe. Please sign in again."
)
REFRESH_RACED = "This sign-in was renewed at the same moment elsewhere. Please try again."


def hash_refresh(token: str) -> str:
    """What is stored of a refresh token: 256 random bits need no slow hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def session_json(session: AuthSession, current: str = "") -> dict[str, Any]:
    return {
        "id": session.id,
        "device": session.device,
        "address": session.address,
        "createdAt": session.created_at.isoformat(),
        "lastUsedAt": session.last_used_at.isoformat(),
        "expiresAt": session.expires_at.isoformat(),
        "current": session.id == current,
    }


async def end_sessions(user_id: int, *, keep: str = "") -> int:
    """Revoke every live session of `user_id` but `keep`; how many ended.

    Runs in the caller's transaction when there is one, so it commits with the
    change that ends them. The caller publishes `account.sessions_ended`.
    """
    query = AuthSession.filter(user_id=user_id, revoked_at__isnull=True)
    if keep:
        query = query.exclude(id=keep)
    return await query.update(revoked_at=datetime.now(UTC))


class AuthSessions:
    """Starts, renews, lists and ends the sign-in sessions of people."""

    def __init__(self, settings: Settings, auth: AuthBackend) -> None:
        self.settings = settings
        self.auth = auth

    # --- tokens -------------------------------------------------------------------

    @property
    def access_seconds(self) -> int:
        return max(1, round(self.settings.auth.access_token_minutes * 60))

    def access_token(self, user: User, session_id: str = "", until: int = 0) -> tuple[str, int]:
        """A signed access token for `user` and its expiry (Unix seconds).

        Never outlives `until` (the session's end) when that is given.
        """
        now = int(time.time())
        expires_at = now + self.access_seconds
        if until:
            expires_at = max(now + 1, min(expires_at, until))
        claims = TokenClaims(
            id=user.id,
            email=user.email,
            role=str(user.role),
            category_role=user.category,
            token_version=user.token_version,
            issued_at=now,
            expires_at=expires_at,
            session_id=session_id,
        )
        return self.auth.issue_token(claims), expires_at

    def _pair(self, user: User, row: AuthSession, refresh: str) -> Session:
        from clipsync.services.accounts import Session

        until = int(row.ends_at.timestamp())
        token, expires_at = self.access_token(user, row.id, until)
        return Session(
            user=user,
            token=token,
            expires_at=expires_at,
            refresh_token=refresh,
            session_id=row.id,
            session_expires_at=int(row.expires_at.timestamp()),
        )

    def _sliding_expiry(self, now: datetime, ends_at: datetime) -> datetime:
        return min(now + timedelta(days=self.settings.auth.session_days), ends_at)

    # --- life of a session -----------------------------------------------------------

    async def start(self, user: User, *, user_agent: str = "", address: str = "") -> Session:
        """A new session for `user` (who just proved who they are) and its first pair."""
        now = datetime.now(UTC)
        # Sessions past their expiry are of no use to anyone: the owner's go now.
        await AuthSession.filter(user_id=user.id, expires_at__lt=now).delete()
        refresh = secrets.token_urlsafe(32)
        ends_at = now + timedelta(days=self.settings.auth.session_max_days)
        row = await AuthSession.create(
            id=secrets.token_urlsafe(32),
            user_id=user.id,
            refresh_hash=hash_refresh(refresh),
            created_at=now,
            last_used_at=now,
            expires_at=self._sliding_expiry(now, ends_at),
            ends_at=ends_at,
            device=devices.describe(user_agent)[:120],
            address=address[:MAX_ADDRESS_LENGTH],
        )
        return self._pair(user, row, refresh)

    async def refresh(self, token: object, *, address: str = "") -> Session:
        """Exchange a refresh token for a new pair; the old one is used up.

        A used one presented again ends its session (see the module docstring). Of
        two refreshes with the same token at once, one wins: the other is refused
        without ending the session, since the winner's holder is the one who raced.
        """
        if not isinstance(token, str) or not token or len(token) > MAX_REFRESH_LENGTH:
            raise Unauthorized(REFRESH_UNKNOWN)
        digest = hash_refresh(token)
        now = datetime.now(UTC)
        row = await AuthSession.get_or_none(refresh_hash=digest)
        if row is None:
            used = await UsedRefreshToken.get_or_none(token_hash=digest)
            if used is None:
                raise Unauthorized(REFRESH_UNKNOWN)
            ended = await AuthSession.filter(id=used.session_id, revoked_at__isnull=True).update(
                revoked_at=now
            )
            if ended:
                user_id = await AuthSession.filter(id=used.session_id).values_list(
                    "user_id", flat=True
                )
                await events.publish("account.sessions_ended", userId=user_id[0])
            raise Unauthorized(REFRESH_REUSED)
        if row.revoked_at is not None or row.expires_at <= now or row.ends_at <= now:
            raise Unauthorized(SESSION_ENDED)
        user = await User.get_or_none(id=row.user_id)
        if user is None or not user.is_active:
            raise Unauthorized("Your account is no longer active.")
        refresh = secrets.token_urlsafe(32)
        changes: dict[str, Any] = {
            "refresh_hash": hash_refresh(refresh),
            "last_used_at": now,
            "expires_at": self._sliding_expiry(now, row.ends_at),
        }
        if address:
            changes["address"] = address[:MAX_ADDRESS_LENGTH]
        async with in_transaction():
            # The conditional UPDATE is the claim: of two refreshes with this token at
            # once only one matches the old hash.
            claimed = await AuthSession.filter(
                id=row.id, refresh_hash=digest, revoked_at__isnull=True
            ).update(**changes)
            if claimed:
                await UsedRefreshToken.create(token_hash=digest, session_id=row.id, used_at=now)
        if not claimed:
            raise Unauthorized(REFRESH_RACED)
        await row.refresh_from_db()
        return self._pair(user, row, refresh)

    async def renew(self, user: User, session_id: str) -> Session:
        """A new pair for a live session of `user` (after their password changed)."""
        row = await AuthSession.get_or_none(id=session_id, user_id=user.id, revoked_at__isnull=True)
        if row is None:
            raise Unauthorized(SESSION_ENDED)
        refresh = secrets.token_urlsafe(32)
        async with in_transaction():
            await AuthSession.filter(id=row.id).update(refresh_hash=hash_refresh(refresh))
            await UsedRefreshToken.create(token_hash=row.refresh_hash, session_id=row.id)
        return self._pair(user, row, refresh)

    async def is_live(self, session_id: str) -> bool:
        return await AuthSession.filter(id=session_id, revoked_at__isnull=True).exists()

    # --- seeing and ending them ------------------------------------------------------

    async def list(self, user: User) -> list[AuthSession]:
        """The live sessions of `user`, the most recently used first."""
        now = datetime.now(UTC)
        rows = AuthSession.filter(user_id=user.id, revoked_at__isnull=True, expires_at__gt=now)
        return list(await rows.order_by("-last_used_at", "-created_at"))

    async def end(self, user: User, session_id: object) -> None:
        """End one of `user`'s sessions; someone else's is as unknown as a missing one."""
        ended = 0
        if isinstance(session_id, str) and session_id:
            ended = await AuthSession.filter(
                id=session_id, user_id=user.id, revoked_at__isnull=True
            ).update(revoked_at=datetime.now(UTC))
        if not ended:
            raise NotFound("There is no such session: it may have ended already.")
        await events.publish("account.sessions_ended", userId=user.id)

    async def end_others(self, user: User, current: str) -> int:
        """End every session of `user` but `current`; how many ended."""
        ended = await end_sessions(user.id, keep=current)
        if ended:
            await events.publish("account.sessions_ended", userId=user.id)
        return ended
