"""Finding 2: sign-ins sent all at once are counted like sign-ins sent one by one.

24 wrong passwords sent in parallel were all checked (24 bcrypts, 24 x 401) while the
account recorded one failure, so the lockout never came; the per-address limit was
passed the same way. Now every attempt is counted when it starts, before its
password is checked. Against a real `clipsync serve` (two workers), on SQLite and on
PostgreSQL, with a bcrypt cost that makes the checks overlap.

The cap on attempts checked at the same moment is per worker and in memory; it is
tested on the app itself, with a password check held open so the overlap is certain.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest
from clients import PASSWORD, register
from live_install import Install, attack_server, client_from, run_sql

from clipsync.context import ClipSyncApp

WRONG = "not the password"
# Defaults of [auth]: failures per email and address before waits, attempts per
# address in the window (counted by each worker on its own).
MAX_FAILED_LOGINS = 5
MAX_PER_ADDRESS = 20
# ...and attempts checked at once per email and per address, in each worker.
MAX_CONCURRENT = 4
WORKERS = 2


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def install(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Install]:
    postgres = request.getfixturevalue("postgres_server") if request.param == "postgres" else None
    workdir = tmp_path_factory.mktemp(f"signin-{request.param}") / "live"
    # A bcrypt cost of 10 (tens of milliseconds) keeps parallel checks in flight together.
    with attack_server(workdir, postgres=postgres, workers=WORKERS, bcrypt_rounds=10) as running:
        yield running


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def test_parallel_wrong_passwords_are_each_counted_and_then_held_back(
    install: Install,
) -> None:
    async with client_from(install, "127.0.0.1") as owner:
        await register(owner, "ann@example.org")
    checked: list[int] = []  # wrong passwords really checked (401), per burst
    async with client_from(install, "127.0.0.21") as attacker:
        # Bursts of 24 at once, until the address is held back. Each burst gets at
        # least one attempt checked (the first in), so this ends.
        while sum(checked) < MAX_FAILED_LOGINS and len(checked) <= MAX_FAILED_LOGINS:
            answers = await asyncio.gather(
                *(login(attacker, "ann@example.org", WRONG) for _ in range(24))
            )
            statuses = [answer.status_code for answer in answers]
            assert set(statuses) <= {401, 429}, statuses
            assert all(int(a.headers["Retry-After"]) > 0 for a in answers if a.status_code == 429)
            checked.append(statuses.count(401))
            # Every checked attempt was recorded: none lost to a concurrent write.
            counted = await run_sql(
                install, "SELECT failed_logins FROM users WHERE email = 'ann@example.org'"
            )
            assert counted[0]["failed_logins"] == sum(checked), checked
        # However they were sent, no more guesses were checked than one by one.
        assert sum(checked) == MAX_FAILED_LOGINS, checked

        # The right password from the same address now has to wait too.
        right = await login(attacker, "ann@example.org", PASSWORD)
        assert right.status_code == 429, right.text


async def test_parallel_attempts_from_one_address_are_counted_before_they_are_checked(
    install: Install,
) -> None:
    count = MAX_PER_ADDRESS * WORKERS + 20
    async with client_from(install, "127.0.0.22") as sprayer:
        answers = await asyncio.gather(
            *(login(sprayer, f"nobody{n}@example.org", WRONG) for n in range(count))
        )
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {401, 429}, statuses
    assert statuses.count(401) <= MAX_PER_ADDRESS * WORKERS, statuses


# --- attempts checked at the same moment (one worker, in memory) ---------------------


class HeldPasswordCheck:
    """Wraps the auth backend's `check_password` so checks wait until released."""

    def __init__(self, check) -> None:
        self.check = check
        self.entered = 0
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, password: str, password_hash: str) -> bool:
        with self._lock:
            self.entered += 1
        self.release.wait(60)
        return self.check(password, password_hash)


async def until(condition, task: asyncio.Task | None = None) -> None:
    """Yield to the app until `condition()` holds (or `task` has finished)."""
    for _ in range(6000):  # a guard against hanging for good, not a measurement
        if condition() or (task is not None and task.done()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the app never got there")


@pytest.mark.parametrize("same", ["email", "address"])
async def test_attempts_checked_at_once_are_capped_per_email_and_per_address(
    app: ClipSyncApp, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, same: str
) -> None:
    await register(client, "ann@example.org")
    cap = MAX_CONCURRENT
    held = HeldPasswordCheck(app.ctx.accounts.auth.check_password)
    monkeypatch.setattr(app.ctx.accounts.auth, "check_password", held)

    def attempt(n: int) -> asyncio.Task:
        email = "ann@example.org" if same == "email" else f"someone{n}@example.org"
        if same == "email":  # each from an address of its own
            transport = httpx.ASGITransport(app=app, client=(f"198.51.100.{n + 1}", 5000))
        else:
            transport = client._transport
        other = httpx.AsyncClient(transport=transport, base_url="http://clipsync.test")
        return asyncio.create_task(login(other, email, WRONG))

    in_flight = [attempt(n) for n in range(cap)]
    await until(lambda: held.entered == cap)
    one_more = attempt(cap)
    # It is answered at once, while the others are still being checked; had it been
    # let through, it would be waiting in the password check too.
    await until(lambda: held.entered > cap, one_more)
    try:
        assert one_more.done() and held.entered == cap
        refused = one_more.result()
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "1"
    finally:
        held.release.set()
    assert [(await task).status_code for task in in_flight] == [401] * cap
