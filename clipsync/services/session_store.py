"""Where sign-in sessions are kept: `[auth] session_store`, "database" or "redis".

services/auth_sessions.py decides what a session may do (the rules of refresh,
theft detection, expiry); a store only keeps sessions and answers for them, each
step atomic where two requests may meet:

- database (`session_store_database.py`, the default): the `AuthSession` and
  `UsedRefreshToken` tables; ended sessions are marked revoked.
- redis (`session_store_redis.py`): one hash per session whose TTL is its sliding
  expiry; shared by every worker and host like the database, and no write to the
  database on a refresh.

Both keep only SHA-256 digests of refresh tokens. Of two refreshes with one token
at once, the claim (`rotate`) lets one through and answers None to the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from clipsync.settings import Settings


@dataclass(frozen=True)
class StoredSession:
    """A sign-in session as a store keeps it (what `session_json` shows, and more)."""

    id: str
    user_id: int
    # SHA-256 of the refresh token that renews it now.
    refresh_hash: str
    created_at: datetime
    last_used_at: datetime
    # Sliding: `[auth] session_days` after the last refresh, capped by `ends_at`.
    expires_at: datetime
    # `[auth] session_max_days` after it started, whatever happens.
    ends_at: datetime
    device: str = ""
    address: str = ""
    revoked_at: datetime | None = None
    # The owner's token version when it started or was last renewed, for stores that
    # end a person's sessions by it (Redis); None where ended sessions are marked.
    token_version: int | None = None


class SessionStore(Protocol):
    """Keeps sign-in sessions; every method is one atomic step of the store."""

    name: str

    async def open(self) -> None:
        """Make sure the store answers (once per worker, at start); ConfigError if not."""

    async def close(self) -> None:
        """Let go of connections (once per worker, at stop)."""

    async def create(self, session: StoredSession) -> None:
        """Keep a new session (and forget the owner's sessions that have expired)."""

    async def get(self, session_id: str) -> StoredSession | None:
        """The session with this id, ended or not, while the store still has it."""

    async def by_refresh(self, digest: str) -> StoredSession | None:
        """The session whose current refresh token has this digest, ended or not."""

    async def used_by(self, digest: str) -> str | None:
        """The id of the session a refresh token with this digest was used up in."""

    async def rotate(
        self,
        session: StoredSession,
        new_digest: str,
        *,
        now: datetime,
        expires_at: datetime,
        address: str = "",
    ) -> StoredSession | None:
        """Swap `session`'s refresh token for `new_digest`, if it is still the current one
        and the session not ended; the old one is recorded as used. None: it was not
        (another refresh with the same token won, or the session ended meanwhile)."""

    async def replace_refresh(
        self, session: StoredSession, new_digest: str, token_version: int
    ) -> StoredSession:
        """Give a live session a new refresh token (the old one counts as used) and
        the owner's current token version."""

    async def live(self, user_id: int, token_version: int, now: datetime) -> list[StoredSession]:
        """The sessions of `user_id` that have not ended, the most recently used first."""

    async def live_ids(self, session_ids: Iterable[str], now: datetime) -> set[str]:
        """Which of these sessions are live: not ended, not expired."""

    async def end(self, session_id: str, user_id: int | None = None) -> int | None:
        """End one live session (of `user_id`, when given); its owner's id, or None
        when there was no such live session."""

    async def end_all(self, user_id: int, token_version: int, *, keep: str = "") -> int:
        """End every live session of `user_id` but `keep`; how many ended."""

    async def opened_from(self, address: str, since: datetime) -> list[tuple[int, datetime]]:
        """(user id, started at) of the sessions started from `address` after `since`,
        the oldest first, ended or not (the per-address registration quota)."""


def store_for(settings: Settings) -> SessionStore:
    """The store `[auth] session_store` names, on the Redis of `[queue] redis_url`."""
    if settings.auth.session_store == "redis":
        from clipsync.services.session_store_redis import RedisSessionStore

        return RedisSessionStore(settings.queue.redis_url.reveal())
    from clipsync.services.session_store_database import DatabaseSessionStore

    return DatabaseSessionStore()
