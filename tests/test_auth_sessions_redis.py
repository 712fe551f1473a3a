"""The Redis session store's own ways: keys that expire with their sessions, and a
start refused while that Redis does not answer. What sessions do is the same in
both stores: test_auth_sessions.py runs it against each."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from clients import bearer, register
from conftest import AppFactory, SettingsFactory
from services import RedisServer, free_port
from stored_sessions import bend, installed, store_settings
from test_auth_sessions import CHROME, claims_of, login, me, refresh

from clipsync import doctor
from clipsync.context import ClipSyncApp
from clipsync.models.auth_sessions import AuthSession
from clipsync.services.session_store_redis import PREFIX


async def redis_app(
    start_app: AppFactory,
    make_settings: SettingsFactory,
    migrated_sqlite: Path,
    redis_server: RedisServer,
    **tables: dict,
) -> tuple[ClipSyncApp, httpx.AsyncClient]:
    return await start_app(
        installed(make_settings, migrated_sqlite, **store_settings("redis", redis_server), **tables)
    )


async def test_redis_keeps_each_session_as_keys_that_expire_with_it(
    start_app: AppFactory,
    make_settings: SettingsFactory,
    migrated_sqlite: Path,
    redis_server: RedisServer,
) -> None:
    app, client = await redis_app(start_app, make_settings, migrated_sqlite, redis_server)
    keys = app.ctx.accounts.sessions.store.redis  # type: ignore[attr-defined]
    await register(client, "ann@example.org")
    body = await login(client, "ann@example.org")
    sid = claims_of(body["token"])["sid"]
    digest = hashlib.sha256(body["refreshToken"].encode()).hexdigest()
    days = 24 * 3600
    # The sliding expiry ([auth] session_days = 30) is each key's TTL.
    for key in (f"{PREFIX}s:{sid}", f"{PREFIX}r:{digest}", f"{PREFIX}user:1"):
        assert 30 * days - 60 < await keys.ttl(key) <= 30 * days, key
    assert not await AuthSession.exists()  # nothing in the database

    pair = (await refresh(client, body["refreshToken"])).json()
    assert not await keys.exists(f"{PREFIX}r:{digest}")
    # The used token is remembered as long as the session could go on without a refresh.
    assert 30 * days - 60 < await keys.ttl(f"{PREFIX}u:{digest}") <= 30 * days
    # Near the 90-day cap ([auth] session_max_days) the TTL is what is left of it.
    await bend(app, sid, ends_at=datetime.now(UTC) + timedelta(minutes=5))
    last = (await refresh(client, pair["refreshToken"])).json()
    assert 240 < await keys.ttl(f"{PREFIX}s:{sid}") <= 300

    # When the TTL runs out the session is gone: no refresh, no access, not listed.
    other = await login(client, "ann@example.org", CHROME)
    await keys.pexpire(f"{PREFIX}s:{sid}", 1)
    await keys.pexpire(f"{PREFIX}r:{hashlib.sha256(last['refreshToken'].encode()).hexdigest()}", 1)
    await asyncio.sleep(0.05)
    assert (await refresh(client, last["refreshToken"])).status_code == 401
    assert await me(client, last["token"]) == 401
    listed = (await client.get("/api/auth/sessions", headers=bearer(other["token"]))).json()
    assert sid not in {s["id"] for s in listed["sessions"]} and len(listed["sessions"]) == 2
    assert not await keys.sismember(f"{PREFIX}user:1", sid)


async def test_a_redis_session_store_that_does_not_answer_stops_the_start(
    start_app: AppFactory, make_settings: SettingsFactory, migrated_sqlite: Path
) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    settings = installed(
        make_settings,
        migrated_sqlite,
        auth={"session_store": "redis"},
        queue={"redis_url": url},
    )
    with pytest.raises(RuntimeError, match='session_store = "redis"') as refused:
        await start_app(settings)
    assert "does not answer" in str(refused.value) and "hunter2" not in str(refused.value)
    check = await doctor.check_session_store(settings)
    assert not check.ok and "does not answer" in check.detail and "hunter2" not in check.detail


async def test_the_doctor_checks_the_session_store(
    make_settings: SettingsFactory, redis_server: RedisServer
) -> None:
    working = make_settings(**store_settings("redis", redis_server))
    assert (await doctor.check_session_store(working)).ok
    assert (await doctor.check_session_store(make_settings())).ok  # the database


async def test_a_redis_that_goes_away_is_a_503_that_names_the_sign_ins(
    start_app: AppFactory, make_settings: SettingsFactory, migrated_sqlite: Path
) -> None:
    with RedisServer() as server:
        _app, client = await redis_app(start_app, make_settings, migrated_sqlite, server)
        body = await register(client, "ann@example.org")
    # Stopped: nothing can say whether the session goes on.
    for answer in (
        await client.get("/api/auth/me", headers=bearer(body["token"])),
        await refresh(client, body["refreshToken"]),
    ):
        assert answer.status_code == 503, answer.text
        assert "Sign-ins cannot be checked right now" in answer.json()["error"]["message"]
        assert answer.headers["retry-after"]
