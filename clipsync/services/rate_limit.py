"""Holding back password guessing: attempts per address, per account and address, at once.

Three limits, each counted when an attempt *starts*, before its password is checked,
so that many attempts sent at the same moment are counted like the same attempts
sent one after the other:

- `AttemptWindow`: sign-in attempts per client address in a sliding window. With a
  Redis queue (`[queue] backend = "redis"`) in Redis (`SharedAttemptWindow`), so
  every worker of every host counts one address together, atomically (a script);
  otherwise in memory, each worker on its own, checking and counting without an
  `await` in between. When Redis does not answer, the worker counts in memory.
  `address_window` picks.
- `InFlight`: attempts being checked right now, per key (an address, an email). Per
  worker and in memory on purpose: it bounds the bcrypt work a burst can cost that
  worker's CPU, not the number of guesses.
- `SignInThrottle`: failures per email and client address, in the database so every
  worker and host shares them. After `max_failed_logins` failures that address must
  wait between tries, longer after each further failure; the same email from another
  address is not held up, so a stranger cannot lock the owner out.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from tortoise.transactions import in_transaction

from clipsync.models import SignInFailures
from clipsync.settings import AuthSettings, Settings

log = logging.getLogger(__name__)


class AttemptWindow:
    """Attempts per key (a client address) within the last `window` seconds."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._attempts: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self.clock()
        attempts = self._attempts.get(key)
        if attempts is None:
            return deque()
        while attempts and attempts[0] <= now - self.window:
            attempts.popleft()
        if not attempts:
            del self._attempts[key]
        return attempts

    def reserve(self, key: str) -> int:
        """Count an attempt for `key` now; 0, or the seconds to wait when at the limit.

        An attempt refused here is not counted.
        """
        wait = self.retry_after(key)
        if not wait:
            self._attempts.setdefault(key, deque()).append(self.clock())
        return wait

    def release(self, key: str) -> None:
        """Take back one attempt of `key`: it succeeded, so it was no guess."""
        attempts = self._recent(key)
        if attempts:
            attempts.pop()

    async def take(self, key: str) -> int:
        """`reserve`, with the interface of `SharedAttemptWindow`."""
        return self.reserve(key)

    async def give_back(self, key: str) -> None:
        """`release`, with the interface of `SharedAttemptWindow`."""
        self.release(key)

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again; 0 when it may now."""
        attempts = self._recent(key)
        if len(attempts) < self.limit:
            return 0
        return max(1, int(attempts[-self.limit] + self.window - self.clock()) + 1)


class SharedAttemptWindow:
    """`AttemptWindow` in Redis: one count per address for every process and host.

    Each address is a sorted set of its attempts (scored by Redis's clock in ms, so
    hosts whose clocks drift still agree), trimmed, counted and added to in one
    script. Redis errors fall back to `local`, this worker's own count.
    """

    PREFIX = "clipsync:sign-in:address:"
    RESERVE = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
        if redis.call('ZCARD', KEYS[1]) < limit then
            redis.call('ZADD', KEYS[1], now, ARGV[3])
            redis.call('PEXPIRE', KEYS[1], window)
            return 0
        end
        local oldest = redis.call('ZRANGE', KEYS[1], -limit, -limit, 'WITHSCORES')
        return math.max(1, math.floor((tonumber(oldest[2]) + window - now) / 1000) + 1)
    """

    def __init__(self, url: str, limit: int, window: float, prefix: str = PREFIX) -> None:
        self.limit = limit
        self.window = window
        # What is counted: sign-ins per address by default (share links name their own).
        self.prefix = prefix
        self.local = AttemptWindow(limit, window)
        self._redis = aioredis.Redis.from_url(url)
        self._reserve = self._redis.register_script(self.RESERVE)

    async def take(self, key: str) -> int:
        """Count an attempt for `key` now; 0, or the seconds to wait when at the limit."""
        try:
            wait = await self._reserve(
                keys=[self.prefix + key],
                args=[self.limit, int(self.window * 1000), uuid.uuid4().hex],
            )
        except RedisError as exc:
            log.warning("sign-in attempts counted in this worker only: Redis: %s", exc)
            return self.local.reserve(key)
        return int(wait)

    async def give_back(self, key: str) -> None:
        """Take back the latest attempt of `key`: it succeeded, so it was no guess."""
        try:
            await self._redis.zpopmax(self.prefix + key)
        except RedisError:
            self.local.release(key)


def address_window(settings: Settings) -> AttemptWindow | SharedAttemptWindow:
    """Attempts per client address: shared in Redis when the queue is there, else per worker."""
    limit = settings.auth.max_failed_logins_per_address
    window = settings.auth.address_window_minutes * 60
    return attempt_window(settings, limit, window)


def attempt_window(
    settings: Settings, limit: int, window: float, prefix: str = SharedAttemptWindow.PREFIX
) -> AttemptWindow | SharedAttemptWindow:
    """Attempts per key: in Redis under `prefix` when the queue is there, else per worker."""
    if settings.queue.backend == "redis":
        return SharedAttemptWindow(settings.queue.redis_url.reveal(), limit, window, prefix)
    return AttemptWindow(limit, window)


class InFlight:
    """How many attempts per key are being checked at this moment (in this worker)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._count: Counter[str] = Counter()

    def enter(self, *keys: str) -> bool:
        """Take a place for every key, or none and return False when one is full."""
        if any(self._count[key] >= self.limit for key in keys):
            return False
        for key in keys:
            self._count[key] += 1
        return True

    def leave(self, *keys: str) -> None:
        for key in keys:
            self._count[key] -= 1
            if self._count[key] <= 0:
                del self._count[key]


def wait_after(failures: int, auth: AuthSettings) -> int:
    """Seconds an address waits after its `failures`-th failure on one email.

    Nothing before `max_failed_logins`; then `login_delay_seconds`, doubled by each
    further failure, up to `lockout_minutes`.
    """
    beyond = failures - auth.max_failed_logins
    if beyond < 0:
        return 0
    longest = auth.lockout_minutes * 60
    # Capping the exponent keeps a long-running attacker from building huge numbers.
    return min(auth.login_delay_seconds * 2 ** min(beyond, 32), longest)


@dataclass(frozen=True)
class Reservation:
    """The outcome of `SignInThrottle.reserve`."""

    # Seconds the address must still wait; 0 when the attempt may go ahead.
    retry_after: int
    # Until when the address waits should this attempt fail (None: no wait).
    wait_until: datetime | None = None


class SignInThrottle:
    """Failures per email and client address, counted in the database."""

    def __init__(self, auth: AuthSettings) -> None:
        self.auth = auth
        self._last_sweep = 0.0

    async def reserve(self, email: str, address: str, now: datetime) -> Reservation:
        """Count this attempt as a failure before its password is checked.

        Returns a wait instead, counting nothing, while the address must wait. The
        count and the wait are read and written in one transaction holding the row's
        lock (PostgreSQL) or the database's write lock (SQLite), so concurrent
        attempts are admitted one by one and none goes uncounted.
        """
        await self._forget_old(now)
        forget_before = now - timedelta(hours=self.auth.forget_failed_logins_hours)
        async with in_transaction():
            # Insert first: on SQLite this write also takes the write lock, so the
            # read below sees every attempt committed before it.
            await SignInFailures.bulk_create(
                [SignInFailures(email=email, address=address, failures=0, last_failed_at=now)],
                ignore_conflicts=True,
            )
            row = (
                await SignInFailures.filter(email=email, address=address).select_for_update().get()
            )
            if row.wait_until is not None and row.wait_until > now:
                return Reservation(retry_after=_seconds(row.wait_until - now))
            failures = 1 if row.last_failed_at < forget_before else row.failures + 1
            wait = wait_after(failures, self.auth)
            wait_until = now + timedelta(seconds=wait) if wait else None
            await SignInFailures.filter(id=row.id).update(
                failures=failures, last_failed_at=now, wait_until=wait_until
            )
        return Reservation(retry_after=0, wait_until=wait_until)

    async def clear(self, email: str, address: str) -> None:
        """The password was right: forget this address's failures on this email."""
        await SignInFailures.filter(email=email, address=address).delete()

    async def _forget_old(self, now: datetime) -> None:
        # Sweep at most once a minute per worker: rows of addresses that gave up.
        if time.monotonic() - self._last_sweep < 60:
            return
        self._last_sweep = time.monotonic()
        cutoff = now - timedelta(hours=self.auth.forget_failed_logins_hours)
        await SignInFailures.filter(last_failed_at__lt=cutoff).delete()


def _seconds(delta: timedelta) -> int:
    return max(1, int(delta.total_seconds()) + 1)
