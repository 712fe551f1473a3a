"""Finding 1: no race leaves a ClipSync without administrators, and set-up never reopens.

Two admins demoting each other at the same moment both got 200 on PostgreSQL (each
counted two admins); with no admin left, anyone could `POST /setup` and become one.
Here a real `clipsync serve` (two Sanic workers, PostgreSQL) takes the two demotions
at once, round after round, and set-up is tried again after every administrator was
removed behind the server's back.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from clients import PASSWORD, bearer, register
from live_install import Install, attack_server, client_from, run_sql, set_up_admin, sign_in
from services import PostgresServer
from tortoise import connections

from clipsync import db
from clipsync.errors import Conflict
from clipsync.models import Role, User
from clipsync.settings import parse_settings

# Each round is one chance for the race: the old code lost it in about one round of
# four (rounds 4 to 10 in five runs), so 40 rounds leave it no real chance to pass.
ROUNDS = 40


@pytest.fixture
def install(tmp_path: Path, postgres_server: PostgresServer) -> Iterator[Install]:
    # Forty newcomers register from one address: more than [quotas] allows an hour.
    unlimited = "[quotas]\nregistrations_per_address_per_hour = 0\n"
    with attack_server(
        tmp_path / "live", postgres=postgres_server, workers=2, extra_toml=unlimited
    ) as running:
        yield running


async def promoted_newcomer(
    client: httpx.AsyncClient, admin_token: str, email: str
) -> tuple[int, str]:
    """Register `email`, make it an admin with `admin_token`; its id and a fresh token."""
    user_id = (await register(client, email))["user"]["id"]
    promoted = await client.patch(
        f"/api/admin/users/{user_id}", json={"role": "admin"}, headers=bearer(admin_token)
    )
    assert promoted.status_code == 200, promoted.text
    return user_id, await sign_in(client, email)


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(install: Install) -> None:
    await set_up_admin(install, "admin0@example.org")
    first = await run_sql(install, "SELECT id FROM users WHERE email = 'admin0@example.org'")
    async with client_from(install) as client:
        survivor = (first[0]["id"], await sign_in(client, "admin0@example.org"))
        for round_ in range(1, ROUNDS + 1):
            newcomer = await promoted_newcomer(client, survivor[1], f"admin{round_}@example.org")
            pair = (survivor, newcomer)
            answers = await asyncio.gather(
                *(
                    client.patch(
                        f"/api/admin/users/{other[0]}",
                        json={"role": "user"},
                        headers=bearer(me[1]),
                    )
                    for me, other in (pair, pair[::-1])
                )
            )
            statuses = [answer.status_code for answer in answers]
            admins = await run_sql(
                install, "SELECT id FROM users WHERE role = 'admin' AND is_active"
            )
            assert statuses.count(200) == 1 and len(admins) == 1, (
                f"round {round_}: the two demotions answered {statuses}, "
                f"{len(admins)} admin(s) left"
            )
            # The loser was refused: 409 (last admin), 403 or 401 (demoted before its turn).
            assert set(statuses) - {200} <= {401, 403, 409}, statuses
            survivor = pair[statuses.index(200)]


async def test_set_up_stays_closed_after_every_admin_is_removed(install: Install) -> None:
    await set_up_admin(install, "boss@example.org")
    await run_sql(install, "UPDATE users SET role = 'user'")

    async with client_from(install, "127.0.0.2") as stranger:
        form = await stranger.get("/setup")
        assert form.status_code == 303 and form.headers["location"] == "/login"
        await stranger.get("/login")  # a page with a form, for the CSRF cookie
        taken = await stranger.post(
            "/setup",
            data={
                "csrf_token": stranger.cookies["clipsync_csrf"],
                "email": "intruder@example.org",
                "password": PASSWORD,
                "password_confirm": PASSWORD,
            },
        )
        assert taken.status_code == 409, taken.text
        assert "already set up" in taken.text
    assert not await run_sql(install, "SELECT id FROM users WHERE email = 'intruder@example.org'")
    assert not await run_sql(install, "SELECT id FROM users WHERE role = 'admin'")

    # The way back in is the shell of the server's owner.
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "clipsync",
            "--config",
            str(install.server.config_path),
            "user",
            "create",
            "--email",
            "rescue@example.org",
            "--role",
            "admin",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    async with client_from(install) as client:
        token = await sign_in(client, "rescue@example.org")
        assert (await client.get("/api/admin/users", headers=bearer(token))).status_code == 200


async def test_the_service_refuses_set_up_once_done_even_with_no_admin_left(
    app, client: httpx.AsyncClient
) -> None:
    await app.ctx.accounts.set_up_first_admin("first@example.org", PASSWORD)
    await User.filter(role=Role.ADMIN).update(role=Role.USER)
    with pytest.raises(Conflict, match="already set up"):
        await app.ctx.accounts.set_up_first_admin("second@example.org", PASSWORD)
    assert not await User.exists(email="second@example.org")


@pytest.fixture(params=["sqlite", "postgres"])
def database_settings(request: pytest.FixtureRequest, tmp_path: Path):
    tables: dict = {"paths": {"data_dir": str(tmp_path / "data")}}
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        tables["database"] = {"url": server.create_database(f"setup_flag_{tmp_path.name}")}
    return parse_settings(tables, where="test")


@pytest.mark.parametrize("had_admin", [True, False])
async def test_the_migration_marks_installs_with_an_admin_as_set_up(
    database_settings, tmp_path: Path, had_admin: bool
) -> None:
    # An install as it was before the set-up flag: every migration up to number 3.
    before = tmp_path / "migrations"
    (before / "models").mkdir(parents=True)
    for migration in sorted((db.migrations_location() / "models").glob("[0-3]_*.py")):
        shutil.copy(migration, before / "models" / migration.name)
    async with db.migration_command(database_settings, before) as command:
        await command.upgrade(run_in_transaction=True)
    if had_admin:
        await db.open_database(database_settings)
        try:
            # Even an admin who was since deactivated shows the install was set up. Raw
            # SQL: the model has columns later migrations add, this table has not.
            await connections.all()[0].execute_query(
                "INSERT INTO users (email, password_hash, role, category, token_version, "
                "is_active, failed_logins, created_at) VALUES ('old@example.org', 'x', "
                f"'{Role.ADMIN}', 'general', 1, FALSE, 0, CURRENT_TIMESTAMP)"
            )
        finally:
            await db.close_database()

    assert await db.migrate(database_settings)
    await db.open_database(database_settings)
    try:
        rows = await connections.all()[0].execute_query_dict("SELECT id, set_up FROM site_state")
        assert [(row["id"], bool(row["set_up"])) for row in rows] == [(1, had_admin)]
    finally:
        await db.close_database()
