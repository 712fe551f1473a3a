"""Sign-in sessions: short access tokens renewed by rotating refresh tokens.

Named for its models (`models/auth_sessions.py`); `clipsync/sessions.py` is another
concern, who makes a request (cookie or bearer, CSRF).

A sign-in makes one session, kept where `[auth] session_store` says (the database
by default, or Redis: services/session_store.py); this module holds the rules, the
store keeps them. Its access tokens are JWTs naming it (`sid`) that live
`[auth] access_token_minutes`; its refresh token is 256 random bits of which only
the SHA-256 is kept. Each refresh hands out a new pair and records the old refresh
token as used: presenting a used one again means two parties hold it, so the whole
session ends (theft detection). The session lives `session_days` after its last
refresh and never past `session_max_days` after the sign-in.

Every request checks that its session is not revoked: in the database one lookup,
folded into the user query of `AccountService.identify` (`fold_live_check`); in
Redis one more round trip. `last_used_at` moves on each refresh, not on each
request, so it is exact to within one access-token lifetime and costs no write.

Ending every session of a person (`end_sessions`) is called wherever the token
version is bumped (password change or reset, role, category or active changes):
the bump ends the access tokens; the revoked rows stop their refresh tokens from
making new ones, and a session kept in Redis, which remembers the token version it
started under, is over once that version is old.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from clipsync import devices, events
from clipsync.backends import AuthBackend, TokenClaims
from clipsync.errors import NotFound, Unauthorized
from clipsync.models import User
from clipsync.services import session_store_database as database_store
from clipsync.services.session_store import SessionStore, StoredSession, store_for
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


def session_json(session: StoredSession, current: str = "") -> dict[str, Any]:
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
    """Revoke every live session of `user_id` kept in the database but `keep`; how
    many ended.

    Runs in the caller's transaction when there is one, so it commits with the
    change that ends them. That change bumps the token version, which is what ends
    sessions kept in Redis (see the module docstring). The caller publishes
    `account.sessions_ended`.
    """
    return await database_store.end_sessions(user_id, keep=keep)


class AuthSessions:
    """Starts, renews, lists and ends the sign-in sessions of people."""

    def __init__(
        self, settings: Settings, auth: AuthBackend, store: SessionStore | None = None
    ) -> None:
        self.settings = settings
        self.auth = auth
        self.store = store if store is not None else store_for(settings)

    async def open(self) -> None:
        """Once per worker, at start: a store that does not answer stops the start."""
        await self.store.open()

    async def close(self) -> None:
        await self.store.close()

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

    def _pair(self, user: User, row: StoredSession, refresh: str) -> Session:
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

    @staticmethod
    def is_over(row: StoredSession, now: datetime, token_version: int | None) -> bool:
        """Whether `row` has ended: revoked, expired, or started under an older token
        version (stores that remember it: an account change ended it)."""
        if row.revoked_at is not None or row.expires_at <= now or row.ends_at <= now:
            return True
        return row.token_version is not None and row.token_version != token_version

    # --- life of a session -----------------------------------------------------------

    async def start(self, user: User, *, user_agent: str = "", address: str = "") -> Session:
        """A new session for `user` (who just proved who they are) and its first pair."""
        now = datetime.now(UTC)
        refresh = secrets.token_urlsafe(32)
        ends_at = now + timedelta(days=self.settings.auth.session_max_days)
        row = StoredSession(
            id=secrets.token_urlsafe(32),
            user_id=user.id,
            refresh_hash=hash_refresh(refresh),
            created_at=now,
            last_used_at=now,
            expires_at=self._sliding_expiry(now, ends_at),
            ends_at=ends_at,
            device=devices.describe(user_agent)[:120],
            address=address[:MAX_ADDRESS_LENGTH],
            token_version=user.token_version,
        )
        await self.store.create(row)
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
        row = await self.store.by_refresh(digest)
        if row is None:
            session_id = await self.store.used_by(digest)
            if session_id is None:
                raise Unauthorized(REFRESH_UNKNOWN)
            owner = await self.store.end(session_id)
            if owner is not None:
                await events.publish("account.sessions_ended", userId=owner)
            raise Unauthorized(REFRESH_REUSED)
        user = await User.get_or_none(id=row.user_id)
        if self.is_over(row, now, user.token_version if user else None):
            raise Unauthorized(SESSION_ENDED)
        if user is None or not user.is_active:
            raise Unauthorized("Your account is no longer active.")
        refresh = secrets.token_urlsafe(32)
        renewed = await self.store.rotate(
            row,
            hash_refresh(refresh),
            now=now,
            expires_at=self._sliding_expiry(now, row.ends_at),
            address=address[:MAX_ADDRESS_LENGTH],
        )
        if renewed is None:
            raise Unauthorized(REFRESH_RACED)
        return self._pair(user, renewed, refresh)

    async def renew(self, user: User, session_id: str) -> Session:
        """A new pair for a live session of `user` (after their password changed)."""
        row = await self.store.get(session_id)
        if row is None or row.user_id != user.id or row.revoked_at is not None:
            raise Unauthorized(SESSION_ENDED)
        refresh = secrets.token_urlsafe(32)
        row = await self.store.replace_refresh(row, hash_refresh(refresh), user.token_version)
        return self._pair(user, row, refresh)

    async def is_live(self, session_id: str) -> bool:
        return bool(await self.store.live_ids([session_id], datetime.now(UTC)))

    # --- checking requests and streams -------------------------------------------------

    def fold_live_check(self, users: QuerySet[User], claims: TokenClaims) -> QuerySet[User]:
        """The user query of a request, also answering whether its session is live when
        the store is the database (one query per request): see `was_live`."""
        if not claims.session_id or not isinstance(self.store, database_store.DatabaseSessionStore):
            return users
        live = database_store.live_session(claims.session_id, claims.id)
        return users.annotate(live_session=Subquery(live.values("id")))

    async def was_live(self, user: User | None, claims: TokenClaims) -> bool:
        """Whether the session `claims` names is live, for a `user` read by the query
        `fold_live_check` made."""
        if not claims.session_id:
            return True
        if isinstance(self.store, database_store.DatabaseSessionStore):
            return getattr(user, "live_session", None) is not None
        row = await self.store.get(claims.session_id)
        return row is not None and row.user_id == claims.id and row.revoked_at is None

    async def live_ids(self, session_ids: set[str]) -> set[str]:
        """Which of these sessions go on (the live streams of a process, together)."""
        return await self.store.live_ids(session_ids, datetime.now(UTC))

    async def sign_out(self, user_id: int, session_id: str) -> None:
        """End the session a signing-out token names (if it is theirs and live)."""
        await self.store.end(session_id, user_id)

    # --- seeing and ending them ------------------------------------------------------

    async def list(self, user: User) -> list[StoredSession]:
        """The live sessions of `user`, the most recently used first."""
        return await self.store.live(user.id, user.token_version, datetime.now(UTC))

    async def end(self, user: User, session_id: object) -> None:
        """End one of `user`'s sessions; someone else's is as unknown as a missing one."""
        ended = None
        if isinstance(session_id, str) and session_id:
            ended = await self.store.end(session_id, user.id)
        if ended is None:
            raise NotFound("There is no such session: it may have ended already.")
        await events.publish("account.sessions_ended", userId=user.id)

    async def end_others(self, user: User, current: str) -> int:
        """End every session of `user` but `current`; how many ended."""
        ended = await self.store.end_all(user.id, user.token_version, keep=current)
        if ended:
            await events.publish("account.sessions_ended", userId=user.id)
        return ended

    async def opened_from(self, address: str, since: datetime) -> list[tuple[int, datetime]]:
        """(user id, started at) of the sessions started from `address` since `since`."""
        return await self.store.opened_from(address, since)
