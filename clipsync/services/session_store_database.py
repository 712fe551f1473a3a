"""Sign-in sessions in the database (`[auth] session_store = "database"`, the default).

One `AuthSession` row per sign-in; each refresh token it used up is a
`UsedRefreshToken` row. Ended sessions are marked revoked, not deleted, so their
refresh tokens answer "has ended"; a person's expired rows go when they next sign
in (with their used tokens, by cascade).

Of two refreshes with one token at once, the conditional UPDATE is the claim: only
one of them still matches the old hash.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from clipsync.models.auth_sessions import AuthSession, UsedRefreshToken
from clipsync.services.session_store import StoredSession


def stored(row: AuthSession) -> StoredSession:
    return StoredSession(
        id=row.id,
        user_id=row.user_id,  # type: ignore[attr-defined]
        refresh_hash=row.refresh_hash,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
        ends_at=row.ends_at,
        device=row.device,
        address=row.address,
        revoked_at=row.revoked_at,
    )


def live_session(session_id: str, user_id: int) -> QuerySet[AuthSession]:
    """The row of a live session of `user_id`: folded into the user query of each request."""
    return AuthSession.filter(id=session_id, user_id=user_id, revoked_at__isnull=True)


async def end_sessions(user_id: int, *, keep: str = "") -> int:
    """Revoke every live session row of `user_id` but `keep`; how many ended.

    Runs in the caller's transaction when there is one.
    """
    query = AuthSession.filter(user_id=user_id, revoked_at__isnull=True)
    if keep:
        query = query.exclude(id=keep)
    return await query.update(revoked_at=datetime.now(UTC))


class DatabaseSessionStore:
    name = "database"

    async def open(self) -> None:
        """The database is opened with the app."""

    async def close(self) -> None:
        """Closed with the app."""

    async def create(self, session: StoredSession) -> None:
        # Sessions past their expiry are of no use to anyone: the owner's go now.
        await AuthSession.filter(
            user_id=session.user_id, expires_at__lt=session.created_at
        ).delete()
        await AuthSession.create(
            id=session.id,
            user_id=session.user_id,
            refresh_hash=session.refresh_hash,
            created_at=session.created_at,
            last_used_at=session.last_used_at,
            expires_at=session.expires_at,
            ends_at=session.ends_at,
            device=session.device,
            address=session.address,
        )

    async def get(self, session_id: str) -> StoredSession | None:
        row = await AuthSession.get_or_none(id=session_id)
        return None if row is None else stored(row)

    async def by_refresh(self, digest: str) -> StoredSession | None:
        row = await AuthSession.get_or_none(refresh_hash=digest)
        return None if row is None else stored(row)

    async def used_by(self, digest: str) -> str | None:
        used = await UsedRefreshToken.get_or_none(token_hash=digest)
        return None if used is None else used.session_id  # type: ignore[attr-defined]

    async def rotate(
        self,
        session: StoredSession,
        new_digest: str,
        *,
        now: datetime,
        expires_at: datetime,
        address: str = "",
    ) -> StoredSession | None:
        changes: dict[str, object] = {
            "refresh_hash": new_digest,
            "last_used_at": now,
            "expires_at": expires_at,
        }
        if address:
            changes["address"] = address
        async with in_transaction():
            claimed = await AuthSession.filter(
                id=session.id, refresh_hash=session.refresh_hash, revoked_at__isnull=True
            ).update(**changes)
            if claimed:
                await UsedRefreshToken.create(
                    token_hash=session.refresh_hash, session_id=session.id, used_at=now
                )
        if not claimed:
            return None
        return stored(await AuthSession.get(id=session.id))

    async def replace_refresh(
        self, session: StoredSession, new_digest: str, token_version: int
    ) -> StoredSession:
        async with in_transaction():
            await AuthSession.filter(id=session.id).update(refresh_hash=new_digest)
            await UsedRefreshToken.create(token_hash=session.refresh_hash, session_id=session.id)
        return stored(await AuthSession.get(id=session.id))

    async def live(self, user_id: int, token_version: int, now: datetime) -> list[StoredSession]:
        rows = AuthSession.filter(user_id=user_id, revoked_at__isnull=True, expires_at__gt=now)
        return [stored(row) for row in await rows.order_by("-last_used_at", "-created_at")]

    async def live_ids(self, session_ids: Iterable[str], now: datetime) -> set[str]:
        ids = set(session_ids)
        if not ids:
            return set()
        live = AuthSession.filter(
            id__in=ids, revoked_at__isnull=True, expires_at__gt=now, ends_at__gt=now
        )
        return set(await live.values_list("id", flat=True))

    async def end(self, session_id: str, user_id: int | None = None) -> int | None:
        query = AuthSession.filter(id=session_id, revoked_at__isnull=True)
        if user_id is not None:
            query = query.filter(user_id=user_id)
        if not await query.update(revoked_at=datetime.now(UTC)):
            return None
        if user_id is not None:
            return user_id
        owners = await AuthSession.filter(id=session_id).values_list("user_id", flat=True)
        return owners[0] if owners else None

    async def end_all(self, user_id: int, token_version: int, *, keep: str = "") -> int:
        return await end_sessions(user_id, keep=keep)

    async def opened_from(self, address: str, since: datetime) -> list[tuple[int, datetime]]:
        made = AuthSession.filter(address=address, created_at__gt=since).order_by("created_at")
        return list(await made.values_list("user_id", "created_at"))
