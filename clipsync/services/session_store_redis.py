"""Sign-in sessions in Redis (`[auth] session_store = "redis"`), on `[queue] redis_url`.

Keys, all under `clipsync:session:`:

- `s:<id>`: a hash per session (owner, refresh digest, times, device, address,
  token version, `revoked` once ended). Its TTL is the sliding expiry
  (`session_days` after the last refresh, never past `session_max_days`), so an
  abandoned session goes by itself.
- `r:<digest>`: the session the current refresh token renews, with the same TTL.
- `u:<digest>`: a used-up refresh token's session, kept while that session could
  still be renewed without it (its sliding expiry at the time): presenting it again
  means a copy exists, and the session ends.
- `user:<id>`: the set of a person's session ids (listing, ending them all).
- `a:<address>`: sessions started from a client address in the last day, for the
  per-address registration quota.

Ending one session marks it `revoked` and leaves it to its TTL, so its refresh
token answers "has ended" as in the database. Ending all of a person's sessions on
an account change needs no write here: the callers bump the token version, and a
session started under an older version is over (`AuthSessions` checks it).

Reads and swaps that two requests may race for are Lua scripts, atomic in Redis:
finding a session by its refresh token, and the rotation, which only swaps the
token that is still current, so of two refreshes with one token one wins, as the
conditional UPDATE does in the database. One Redis, not a cluster: a script
touches keys it finds as it goes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from clipsync.errors import ConfigError, ServiceUnavailable
from clipsync.services.session_store import StoredSession

PREFIX = "clipsync:session:"
# How long sessions started from an address are remembered for the registration
# quota (which looks back an hour).
ADDRESS_SECONDS = 24 * 3600
OPEN_TIMEOUT_SECONDS = 5.0
AWAY = (
    "Sign-ins cannot be checked right now (their store does not answer). "
    "Please try again in a moment."
)

# KEYS[1] r:<digest>; ARGV[1] the prefix. The session, as HGETALL's flat list, or nil.
BY_REFRESH = """
local id = redis.call('GET', KEYS[1])
if not id then return nil end
local fields = redis.call('HGETALL', ARGV[1] .. 's:' .. id)
if #fields == 0 then return nil end
table.insert(fields, 'id')
table.insert(fields, id)
return fields
"""

# KEYS: s:<id>, r:<old>, r:<new>, u:<old>, user:<owner>
# ARGV: old digest, new digest, now, new expiry (s), new expiry (ms), id, address
ROTATE = """
local s = KEYS[1]
if redis.call('HGET', s, 'refresh') ~= ARGV[1] or redis.call('HEXISTS', s, 'revoked') == 1 then
  return 0
end
redis.call('HSET', s, 'refresh', ARGV[2], 'used', ARGV[3], 'expires', ARGV[4])
if ARGV[7] ~= '' then redis.call('HSET', s, 'address', ARGV[7]) end
redis.call('PEXPIREAT', s, ARGV[5])
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[3], ARGV[6], 'PXAT', ARGV[5])
redis.call('SET', KEYS[4], ARGV[6], 'PXAT', ARGV[5])
redis.call('PEXPIREAT', KEYS[5], ARGV[5], 'GT')
return 1
"""

# KEYS: s:<id>, r:<new>; ARGV: prefix, new digest, id, token version.
REPLACE = """
local s = KEYS[1]
local old = redis.call('HGET', s, 'refresh')
if not old then return 0 end
local until_ms = redis.call('PEXPIRETIME', s)
redis.call('HSET', s, 'refresh', ARGV[2], 'version', ARGV[4])
redis.call('DEL', ARGV[1] .. 'r:' .. old)
redis.call('SET', KEYS[2], ARGV[3], 'PXAT', until_ms)
redis.call('SET', ARGV[1] .. 'u:' .. old, ARGV[3], 'PXAT', until_ms)
return 1
"""

# KEYS: s:<id>; ARGV: now, owner ("" for anyone's). The owner's id, or nil.
END = """
local s = KEYS[1]
local owner = redis.call('HGET', s, 'user')
if not owner or redis.call('HEXISTS', s, 'revoked') == 1 then return nil end
if ARGV[2] ~= '' and owner ~= ARGV[2] then return nil end
redis.call('HSET', s, 'revoked', ARGV[1])
return owner
"""

# KEYS: user:<owner>; ARGV: prefix, now, token version, id to keep. How many ended.
END_ALL = """
local ended = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local s = ARGV[1] .. 's:' .. id
  if id ~= ARGV[4] and redis.call('EXISTS', s) == 1 and redis.call('HEXISTS', s, 'revoked') == 0
      and redis.call('HGET', s, 'version') == ARGV[3] then
    redis.call('HSET', s, 'revoked', ARGV[2])
    ended = ended + 1
  end
end
return ended
"""


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _when(value: Any) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse(session_id: str, raw: dict[str, str]) -> StoredSession:
    """A session from its hash (see the module docstring for the fields)."""
    return StoredSession(
        id=session_id,
        user_id=int(raw["user"]),
        refresh_hash=raw["refresh"],
        created_at=_when(raw["created"]),
        last_used_at=_when(raw["used"]),
        expires_at=_when(raw["expires"]),
        ends_at=_when(raw["ends"]),
        device=raw.get("device", ""),
        address=raw.get("address", ""),
        revoked_at=_when(raw["revoked"]) if raw.get("revoked") else None,
        token_version=int(raw["version"]),
    )


@contextmanager
def answering() -> Iterator[None]:
    """A Redis that went away mid-request is a 503 that says what is missing (not the
    job queue, which the error handler would guess from the package)."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError) as exc:
        raise ServiceUnavailable(AWAY) from exc


def where(url: str) -> str:
    """The Redis a URL names, without its password: safe for errors and logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"


class RedisSessionStore:
    name = "redis"

    def __init__(self, url: str) -> None:
        self.url = url
        self.redis = aioredis.Redis.from_url(url, decode_responses=True)
        self._by_refresh = self.redis.register_script(BY_REFRESH)
        self._rotate = self.redis.register_script(ROTATE)
        self._replace = self.redis.register_script(REPLACE)
        self._end = self.redis.register_script(END)
        self._end_all = self.redis.register_script(END_ALL)

    async def open(self) -> None:
        try:
            await asyncio.wait_for(self.redis.ping(), OPEN_TIMEOUT_SECONDS)
        except Exception as exc:
            raise ConfigError(
                f'[auth] session_store = "redis", but the Redis of [queue] redis_url '
                f"({where(self.url)}) does not answer: {exc or type(exc).__name__}. "
                'Start Redis, correct redis_url, or set session_store = "database".'
            ) from None

    async def close(self) -> None:
        await self.redis.aclose()

    async def create(self, session: StoredSession) -> None:
        with answering():
            key = f"{PREFIX}s:{session.id}"
            until = _ms(session.expires_at)
            fields = {
                "user": session.user_id,
                "refresh": session.refresh_hash,
                "created": session.created_at.timestamp(),
                "used": session.last_used_at.timestamp(),
                "expires": session.expires_at.timestamp(),
                "ends": session.ends_at.timestamp(),
                "device": session.device,
                "address": session.address,
                "version": session.token_version or 0,
            }
            owner = f"{PREFIX}user:{session.user_id}"
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=fields)
                pipe.pexpireat(key, until)
                pipe.set(f"{PREFIX}r:{session.refresh_hash}", session.id, pxat=until)
                pipe.sadd(owner, session.id)
                # NX gives a new set its first expiry, GT only ever pushes it later.
                pipe.pexpireat(owner, until, nx=True)
                pipe.pexpireat(owner, until, gt=True)
                if session.address:
                    place = f"{PREFIX}a:{session.address}"
                    started = session.created_at.timestamp()
                    pipe.zadd(place, {f"{session.user_id}:{session.id}": started})
                    pipe.zremrangebyscore(place, "-inf", started - ADDRESS_SECONDS)
                    pipe.expire(place, ADDRESS_SECONDS)
                await pipe.execute()

    async def get(self, session_id: str) -> StoredSession | None:
        with answering():
            raw = await self.redis.hgetall(f"{PREFIX}s:{session_id}")
            return parse(session_id, raw) if raw else None

    async def by_refresh(self, digest: str) -> StoredSession | None:
        with answering():
            flat = await self._by_refresh(keys=[f"{PREFIX}r:{digest}"], args=[PREFIX])
            if not flat:
                return None
            raw = dict(zip(flat[::2], flat[1::2], strict=True))
            return parse(raw.pop("id"), raw)

    async def used_by(self, digest: str) -> str | None:
        with answering():
            return await self.redis.get(f"{PREFIX}u:{digest}")

    async def rotate(
        self,
        session: StoredSession,
        new_digest: str,
        *,
        now: datetime,
        expires_at: datetime,
        address: str = "",
    ) -> StoredSession | None:
        with answering():
            old = session.refresh_hash
            claimed = await self._rotate(
                keys=[
                    f"{PREFIX}s:{session.id}",
                    f"{PREFIX}r:{old}",
                    f"{PREFIX}r:{new_digest}",
                    f"{PREFIX}u:{old}",
                    f"{PREFIX}user:{session.user_id}",
                ],
                args=[old, new_digest, now.timestamp(), expires_at.timestamp(), _ms(expires_at),
                      session.id, address],
            )  # fmt: skip
            if not claimed:
                return None
            return replace(
                session,
                refresh_hash=new_digest,
                last_used_at=now,
                expires_at=expires_at,
                address=address or session.address,
            )

    async def replace_refresh(
        self, session: StoredSession, new_digest: str, token_version: int
    ) -> StoredSession:
        with answering():
            await self._replace(
                keys=[f"{PREFIX}s:{session.id}", f"{PREFIX}r:{new_digest}"],
                args=[PREFIX, new_digest, session.id, token_version],
            )
            return replace(session, refresh_hash=new_digest, token_version=token_version)

    async def _sessions(self, user_id: int) -> list[StoredSession]:
        """Every session of `user_id` Redis still has; ids whose hash expired are dropped."""
        with answering():
            owner = f"{PREFIX}user:{user_id}"
            ids = sorted(await self.redis.smembers(owner))
            async with self.redis.pipeline(transaction=False) as pipe:
                for session_id in ids:
                    pipe.hgetall(f"{PREFIX}s:{session_id}")
                found = await pipe.execute()
            gone = [session_id for session_id, raw in zip(ids, found, strict=True) if not raw]
            if gone:
                await self.redis.srem(owner, *gone)
            return [parse(i, raw) for i, raw in zip(ids, found, strict=True) if raw]

    async def live(self, user_id: int, token_version: int, now: datetime) -> list[StoredSession]:
        with answering():
            live = [
                s
                for s in await self._sessions(user_id)
                if s.revoked_at is None and s.token_version == token_version and s.expires_at > now
            ]
            live.sort(key=lambda s: (s.last_used_at, s.created_at), reverse=True)
            return live

    async def live_ids(self, session_ids: Iterable[str], now: datetime) -> set[str]:
        with answering():
            ids = sorted(set(session_ids))
            if not ids:
                return set()
            async with self.redis.pipeline(transaction=False) as pipe:
                for session_id in ids:
                    pipe.hmget(f"{PREFIX}s:{session_id}", ["expires", "ends", "revoked"])
                found = await pipe.execute()
            stamp = now.timestamp()
            return {
                session_id
                for session_id, (expires, ends, revoked) in zip(ids, found, strict=True)
                if expires and float(expires) > stamp and float(ends) > stamp and not revoked
            }

    async def end(self, session_id: str, user_id: int | None = None) -> int | None:
        with answering():
            owner = await self._end(
                keys=[f"{PREFIX}s:{session_id}"],
                args=[datetime.now(UTC).timestamp(), "" if user_id is None else user_id],
            )
            return None if owner is None else int(owner)

    async def end_all(self, user_id: int, token_version: int, *, keep: str = "") -> int:
        with answering():
            return int(
                await self._end_all(
                    keys=[f"{PREFIX}user:{user_id}"],
                    args=[PREFIX, datetime.now(UTC).timestamp(), token_version, keep],
                )
            )

    async def opened_from(self, address: str, since: datetime) -> list[tuple[int, datetime]]:
        found = await self.redis.zrangebyscore(
            f"{PREFIX}a:{address}", f"({since.timestamp()}", "+inf", withscores=True
        )
        return [(int(_text(member).split(":", 1)[0]), _when(score)) for member, score in found]
