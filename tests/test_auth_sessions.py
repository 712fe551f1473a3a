"""Sign-in sessions through the API: short access tokens, rotating refresh tokens,
theft detection, expiry, and the sessions a person can list and end.

Every test that starts an app runs once per session store (`store`: the database,
and a real Redis); the Redis store's own keys and TTLs are test_auth_sessions_redis.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from clients import PASSWORD, bearer, register
from conftest import AppFactory, SettingsFactory
from stored_sessions import STORES, bend, everything_stored, installed, store_settings, stored

from clipsync import db
from clipsync.context import ClipSyncApp
from clipsync.errors import ConfigError, Unauthorized
from clipsync.models import PasswordReset, Role, User
from clipsync.services import passwords
from clipsync.settings import Settings, parse_settings

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


async def login(client: httpx.AsyncClient, email: str, agent: str = FIREFOX) -> dict:
    response = await client.post(
        "/api/auth/login",
        json={"email": email, "password": PASSWORD},
        headers={"User-Agent": agent},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/auth/refresh", json={"refreshToken": token})


async def me(client: httpx.AsyncClient, token: str) -> int:
    return (await client.get("/api/auth/me", headers=bearer(token))).status_code


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> str:
    """Where the app under test keeps sessions: `[auth] session_store`."""
    return request.param


@pytest.fixture
def store_tables(request: pytest.FixtureRequest, store: str) -> dict:
    server = request.getfixturevalue("redis_server") if store == "redis" else None
    return store_settings(store, server)


@pytest.fixture
def settings(make_settings: SettingsFactory, migrated_sqlite: Path, store_tables: dict) -> Settings:
    """conftest's settings, with the session store of this run."""
    return installed(make_settings, migrated_sqlite, **store_tables)


@pytest.fixture
async def short_lived(
    start_app: AppFactory, make_settings: SettingsFactory, migrated_sqlite: Path, store_tables: dict
) -> tuple[ClipSyncApp, httpx.AsyncClient]:
    """An app whose access tokens live one second."""
    auth = {**store_tables.get("auth", {}), "access_token_minutes": 1 / 60}
    return await start_app(
        installed(make_settings, migrated_sqlite, **{**store_tables, "auth": auth})
    )


# --- signing in ----------------------------------------------------------------------


async def test_login_answers_a_short_token_naming_its_session_and_a_refresh_token(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    await register(client, "ann@example.org")
    body = await login(client, "ann@example.org")
    assert {"user", "token", "refreshToken", "expiresIn", "expiresAt"} <= set(body)
    assert 14 * 60 < body["expiresIn"] <= 15 * 60  # [auth] access_token_minutes = 15
    claims = claims_of(body["token"])
    assert claims["exp"] - claims["iat"] == 15 * 60
    row = await stored(app, claims["sid"])
    assert row is not None
    # 256 random bits, and only their SHA-256 is kept.
    assert len(body["refreshToken"]) == 43
    assert row.refresh_hash == hashlib.sha256(body["refreshToken"].encode()).hexdigest()
    assert body["refreshToken"] not in await everything_stored(app)
    assert row.device == "Firefox 133 on Windows" and row.address == "203.0.113.7"
    now = datetime.now(UTC)
    assert abs(row.expires_at - (now + timedelta(days=30))) < timedelta(minutes=1)
    assert abs(row.ends_at - (now + timedelta(days=90))) < timedelta(minutes=1)
    assert await me(client, body["token"]) == 200


async def test_registering_starts_a_session_too(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    body = await register(client, "ann@example.org")
    assert await stored(app, claims_of(body["token"])["sid"]) is not None
    assert (await refresh(client, body["refreshToken"])).status_code == 200


async def test_a_token_made_for_tools_names_no_session_and_still_works(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    await register(client, "ann@example.org")
    session = app.ctx.accounts.start_session(await User.get(email="ann@example.org"))
    assert "sid" not in claims_of(session.token) and session.refresh_token == ""
    assert await me(client, session.token) == 200


# --- refreshing ----------------------------------------------------------------------


async def test_a_refresh_hands_out_a_new_pair_and_uses_up_the_old_refresh_token(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    await register(client, "ann@example.org")
    first = await login(client, "ann@example.org")
    renewed = await refresh(client, first["refreshToken"])
    assert renewed.status_code == 200, renewed.text
    pair = renewed.json()
    assert pair["refreshToken"] != first["refreshToken"] and pair["token"] != first["token"]
    assert claims_of(pair["token"])["sid"] == claims_of(first["token"])["sid"]
    assert pair["user"]["email"] == "ann@example.org" and pair["expiresIn"] > 0
    used = hashlib.sha256(first["refreshToken"].encode()).hexdigest()
    assert await app.ctx.accounts.sessions.store.used_by(used) == claims_of(first["token"])["sid"]
    assert await me(client, pair["token"]) == 200
    again = await refresh(client, pair["refreshToken"])
    assert again.status_code == 200


async def test_a_replayed_refresh_token_ends_the_whole_session(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    await register(client, "ann@example.org")
    first = await login(client, "ann@example.org")
    other = await login(client, "ann@example.org", CHROME)
    pair = (await refresh(client, first["refreshToken"])).json()

    replay = await refresh(client, first["refreshToken"])
    assert replay.status_code == 401
    assert "used from somewhere else" in replay.json()["error"]["message"]
    session = await stored(app, claims_of(first["token"])["sid"])
    assert session is not None and session.revoked_at is not None
    # Both holders are out: the access token at once, and the newer refresh token.
    assert await me(client, pair["token"]) == 401
    assert (await refresh(client, pair["refreshToken"])).status_code == 401
    # Other sign-ins of the account go on.
    assert await me(client, other["token"]) == 200


@pytest.mark.parametrize("token", ["", "not-a-token", "x" * 5000, None, 42])
async def test_an_unknown_refresh_token_is_401(client: httpx.AsyncClient, token: object) -> None:
    response = await client.post("/api/auth/refresh", json={"refreshToken": token})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_an_expired_access_token_is_refused_and_a_refresh_brings_a_working_one(
    short_lived: tuple[ClipSyncApp, httpx.AsyncClient],
) -> None:
    _app, client = short_lived
    await register(client, "ann@example.org")
    body = await login(client, "ann@example.org")
    assert body["expiresIn"] <= 1
    await asyncio.sleep(2.1)
    response = await client.get("/api/auth/me", headers=bearer(body["token"]))
    assert response.status_code == 401 and "expired" in response.json()["error"]["message"]
    pair = (await refresh(client, body["refreshToken"])).json()
    assert await me(client, pair["token"]) == 200


async def test_an_expired_or_revoked_session_cannot_be_refreshed(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    await register(client, "ann@example.org")
    past = datetime.now(UTC) - timedelta(seconds=1)
    for field in ("expires_at", "ends_at", "revoked_at"):
        body = await login(client, "ann@example.org")
        await bend(app, claims_of(body["token"])["sid"], **{field: past})
        response = await refresh(client, body["refreshToken"])
        assert response.status_code == 401, field
        assert "has ended" in response.json()["error"]["message"]


async def test_a_refresh_slides_the_session_forward_up_to_its_end(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    await register(client, "ann@example.org")
    body = await login(client, "ann@example.org")
    sid = claims_of(body["token"])["sid"]
    # As if signed in 20 days ago and last renewed 10 days ago.
    await bend(app, sid, expires_at=datetime.now(UTC) + timedelta(days=20))
    pair = (await refresh(client, body["refreshToken"])).json()
    row = await stored(app, sid)
    assert row is not None
    assert abs(row.expires_at - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    assert abs(row.last_used_at - datetime.now(UTC)) < timedelta(minutes=1)
    # Near the 90-day cap the session slides no further than its end, nor its tokens.
    ends_at = datetime.now(UTC) + timedelta(minutes=5)
    await bend(app, sid, ends_at=ends_at)
    last = (await refresh(client, pair["refreshToken"])).json()
    row = await stored(app, sid)
    assert row is not None
    assert abs(row.expires_at - ends_at) < timedelta(seconds=1)
    assert claims_of(last["token"])["exp"] <= ends_at.timestamp() + 1


async def test_settings_refuse_a_cap_shorter_than_the_sliding_window() -> None:
    with pytest.raises(ConfigError, match="session_max_days"):
        parse_settings({"auth": {"session_days": 30, "session_max_days": 7}}, where="test")


async def test_of_two_refreshes_with_one_token_at_once_at_most_one_succeeds(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "ann@example.org")
    body = await login(client, "ann@example.org")
    answers = await asyncio.gather(*(refresh(client, body["refreshToken"]) for _ in range(5)))
    assert sum(a.status_code == 200 for a in answers) == 1
    assert all(a.status_code in (200, 401) for a in answers)


async def test_the_refresh_race_on_postgresql(
    start_app: AppFactory, make_settings: SettingsFactory, postgres_server, tmp_path: Path
) -> None:
    url = postgres_server.create_database(f"refresh_race_{tmp_path.name}")
    settings = make_settings(database={"url": url})
    await db.migrate(settings)
    _app, client = await start_app(settings)
    await register(client, "ann@example.org")
    for _ in range(3):
        body = await login(client, "ann@example.org")
        answers = await asyncio.gather(*(refresh(client, body["refreshToken"]) for _ in range(8)))
        assert sum(a.status_code == 200 for a in answers) == 1
        winner = next(a for a in answers if a.status_code == 200).json()
        assert await me(client, winner["token"]) == 200


async def test_of_two_refreshes_that_read_one_token_only_one_swaps_it(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    """The claim at the heart of a refresh, in each store: of two refreshes that both
    found the token current, one swaps it and the other learns it lost (answered as
    raced, the session going on), however close together they run."""
    store = app.ctx.accounts.sessions.store
    body = await register(client, "ann@example.org")
    digest = hashlib.sha256(body["refreshToken"].encode()).hexdigest()
    first, second = [await store.by_refresh(digest) for _ in range(2)]
    assert first is not None and second is not None
    now = datetime.now(UTC)
    later = now + timedelta(days=30)
    swaps = await asyncio.gather(
        store.rotate(first, "a" * 64, now=now, expires_at=later),
        store.rotate(second, "b" * 64, now=now, expires_at=later),
    )
    won = [s for s in swaps if s is not None]
    assert len(won) == 1 and won[0].refresh_hash in {"a" * 64, "b" * 64}
    current = await store.by_refresh(won[0].refresh_hash)
    assert current is not None and current.id == first.id and current.revoked_at is None
    assert (
        await store.by_refresh({"a" * 64, "b" * 64}.difference({won[0].refresh_hash}).pop()) is None
    )
    assert await store.by_refresh(digest) is None
    assert await store.used_by(digest) == first.id


# --- ending sessions -----------------------------------------------------------------


async def test_signing_out_ends_the_session_and_its_refresh_token(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "ann@example.org")
    body = await login(client, "ann@example.org")
    other = await login(client, "ann@example.org", CHROME)
    assert (await client.post("/api/auth/logout", headers=bearer(body["token"]))).status_code == 204
    assert await me(client, body["token"]) == 401
    assert (await refresh(client, body["refreshToken"])).status_code == 401
    assert await me(client, other["token"]) == 200


async def test_the_sessions_list_shows_each_sign_in_and_which_is_this_one(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "ann@example.org")
    firefox = await login(client, "ann@example.org", FIREFOX)
    chrome = await login(client, "ann@example.org", CHROME)
    response = await client.get("/api/auth/sessions", headers=bearer(chrome["token"]))
    assert response.status_code == 200
    sessions = response.json()["sessions"]
    by_id = {s["id"]: s for s in sessions}
    mine = by_id[claims_of(chrome["token"])["sid"]]
    assert set(mine) >= {"id", "device", "address", "createdAt", "lastUsedAt", "current"}
    assert mine["current"] is True and mine["device"] == "Chrome 131 on Linux"
    assert mine["address"] == "203.0.113.7"
    datetime.fromisoformat(mine["createdAt"]), datetime.fromisoformat(mine["lastUsedAt"])
    theirs = by_id[claims_of(firefox["token"])["sid"]]
    assert theirs["current"] is False and theirs["device"] == "Firefox 133 on Windows"
    # The registration's session is listed too; nothing secret is.
    assert len(sessions) == 3
    assert "refreshToken" not in response.text and "refresh_hash" not in response.text
    assert "refreshHash" not in response.text


async def test_ending_one_session_stops_its_tokens_at_once(client: httpx.AsyncClient) -> None:
    await register(client, "ann@example.org")
    mine = await login(client, "ann@example.org")
    lost = await login(client, "ann@example.org", CHROME)
    sid = claims_of(lost["token"])["sid"]
    ended = await client.delete(f"/api/auth/sessions/{sid}", headers=bearer(mine["token"]))
    assert ended.status_code == 204
    assert await me(client, lost["token"]) == 401
    assert (await refresh(client, lost["refreshToken"])).status_code == 401
    assert await me(client, mine["token"]) == 200
    listed = (await client.get("/api/auth/sessions", headers=bearer(mine["token"]))).json()
    assert sid not in {s["id"] for s in listed["sessions"]}
    again = await client.delete(f"/api/auth/sessions/{sid}", headers=bearer(mine["token"]))
    assert again.status_code == 404


async def test_another_persons_session_is_not_found(client: httpx.AsyncClient) -> None:
    await register(client, "ann@example.org")
    await register(client, "bob@example.org")
    ann = await login(client, "ann@example.org")
    bob = await login(client, "bob@example.org")
    sid = claims_of(bob["token"])["sid"]
    response = await client.delete(f"/api/auth/sessions/{sid}", headers=bearer(ann["token"]))
    assert response.status_code == 404
    assert await me(client, bob["token"]) == 200
    listed = (await client.get("/api/auth/sessions", headers=bearer(ann["token"]))).json()
    assert sid not in {s["id"] for s in listed["sessions"]}


async def test_revoking_the_others_keeps_only_this_session(client: httpx.AsyncClient) -> None:
    await register(client, "ann@example.org")
    others = [await login(client, "ann@example.org", CHROME) for _ in range(2)]
    mine = await login(client, "ann@example.org")
    response = await client.post("/api/auth/sessions/revoke-others", headers=bearer(mine["token"]))
    assert response.status_code == 200 and response.json() == {"ended": 3}
    for other in others:
        assert await me(client, other["token"]) == 401
        assert (await refresh(client, other["refreshToken"])).status_code == 401
    assert await me(client, mine["token"]) == 200
    assert (await refresh(client, mine["refreshToken"])).status_code == 200


async def sign_in_admin(app: ClipSyncApp, client: httpx.AsyncClient) -> str:
    await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    return (await login(client, "admin@example.org"))["token"]


@pytest.mark.parametrize(
    "change", [{"role": "editor"}, {"active": False}], ids=["role", "deactivation"]
)
async def test_an_account_change_by_an_admin_ends_every_session_at_once(
    app: ClipSyncApp, client: httpx.AsyncClient, change: dict
) -> None:
    admin = await sign_in_admin(app, client)
    await register(client, "ann@example.org")
    sessions = [await login(client, "ann@example.org") for _ in range(2)]
    user = await User.get(email="ann@example.org")
    response = await client.patch(f"/api/admin/users/{user.id}", json=change, headers=bearer(admin))
    assert response.status_code == 200, response.text
    for body in sessions:
        assert await me(client, body["token"]) == 401
        assert (await refresh(client, body["refreshToken"])).status_code == 401
    await user.refresh_from_db()
    assert await app.ctx.accounts.sessions.list(user) == []


async def test_ending_all_sessions_stops_refresh_tokens_too(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    body = await register(client, "ann@example.org")
    await app.ctx.accounts.end_all_sessions(await User.get(email="ann@example.org"))
    assert await me(client, body["token"]) == 401
    assert (await refresh(client, body["refreshToken"])).status_code == 401


async def test_a_password_change_keeps_this_session_and_ends_the_others(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "ann@example.org")
    other = await login(client, "ann@example.org", CHROME)
    mine = await login(client, "ann@example.org")
    response = await client.post(
        "/api/auth/password",
        json={"currentPassword": PASSWORD, "newPassword": "a brand new passphrase"},
        headers=bearer(mine["token"]),
    )
    assert response.status_code == 200, response.text
    fresh = response.json()
    assert claims_of(fresh["token"])["sid"] == claims_of(mine["token"])["sid"]
    assert await me(client, fresh["token"]) == 200
    assert await me(client, mine["token"]) == 401  # the token version moved on
    assert (await refresh(client, fresh["refreshToken"])).status_code == 200
    assert await me(client, other["token"]) == 401
    assert (await refresh(client, other["refreshToken"])).status_code == 401


async def test_a_password_reset_ends_every_session(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    await register(client, "ann@example.org")
    sessions = [await login(client, "ann@example.org") for _ in range(2)]
    user = await User.get(email="ann@example.org")
    await PasswordReset.create(
        token_hash=passwords.hash_token("the-link"),
        user=user,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    response = await client.post(
        "/api/auth/password/reset", json={"token": "the-link", "password": "a new passphrase"}
    )
    assert response.status_code == 204, response.text
    for body in sessions:
        assert await me(client, body["token"]) == 401
        assert (await refresh(client, body["refreshToken"])).status_code == 401


# --- long-lived connections -------------------------------------------------------------


async def test_a_live_stream_outlives_its_access_token_but_not_its_session(
    short_lived: tuple[ClipSyncApp, httpx.AsyncClient],
) -> None:
    app, client = short_lived
    await register(client, "ann@example.org")
    body = await login(client, "ann@example.org")
    accounts = app.ctx.accounts
    claims = accounts.auth.read_token(body["token"])
    await asyncio.sleep(2.1)
    assert (await accounts.still_signed_in(claims)).email == "ann@example.org"
    await app.ctx.accounts.sessions.store.end(claims.session_id)
    with pytest.raises(Unauthorized):
        await accounts.still_signed_in(claims)
    # A token with no session ends the stream when the token expires.
    tool = accounts.start_session(await User.get(email="ann@example.org"))
    tool_claims = accounts.auth.read_token(tool.token)
    await asyncio.sleep(2.1)
    with pytest.raises(Unauthorized, match="expired"):
        await accounts.still_signed_in(tool_claims)
    assert time.time() > tool_claims.expires_at


async def test_the_live_streams_of_a_process_are_checked_together(
    app: ClipSyncApp, client: httpx.AsyncClient, monkeypatch
) -> None:
    """However many streams are open, one check asks about all their sessions at once,
    and ends exactly the streams whose session is over."""
    from clipsync.api.live_stream import SessionWatch, Watched

    accounts = app.ctx.accounts
    for email in ("ann@example.org", "bob@example.org"):
        await register(client, email)
    streams = []
    for email in ("ann@example.org", "ann@example.org", "bob@example.org"):
        claims = accounts.auth.read_token((await login(client, email))["token"])
        streams.append(Watched(claims, accounts, await User.get(id=claims.id)))
    asked = []
    ask = accounts.still_signed_in_all

    async def counted(all_claims):
        asked.append(len(all_claims))
        return await ask(all_claims)

    monkeypatch.setattr(accounts, "still_signed_in_all", counted)
    watch = SessionWatch()
    watch.streams.update(streams)
    await watch.check()
    assert asked == [3] and all(s.ended is None for s in streams)
    # Ann signs out of her second sign-in; nothing is published about it here.
    await app.ctx.accounts.sessions.store.end(streams[1].claims.session_id)
    await watch.check()
    assert asked == [3, 3]
    assert [s.ended is not None for s in streams] == [False, True, False]
    assert streams[1].wake.is_set() and "ended" in streams[1].ended.message


# --- limits --------------------------------------------------------------------------------


async def test_registrations_per_address_are_counted_in_either_store(
    start_app: AppFactory, make_settings: SettingsFactory, migrated_sqlite: Path, store_tables: dict
) -> None:
    settings = installed(
        make_settings,
        migrated_sqlite,
        quotas={"registrations_per_address_per_hour": 2},
        **store_tables,
    )
    _app, client = await start_app(settings)
    await register(client, "one@example.org")
    await login(client, "one@example.org")  # signing in again is no registration
    await register(client, "two@example.org")
    refused = await client.post(
        "/api/auth/register", json={"email": "three@example.org", "password": PASSWORD}
    )
    assert refused.status_code == 429, refused.text
    assert not await User.filter(email="three@example.org").exists()
