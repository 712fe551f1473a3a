"""The migrations build the schema the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from services import PostgresServer

from clipsync import db
from clipsync.models import User
from clipsync.settings import Settings, parse_settings

_databases = itertools.count()


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    tables: dict = {"paths": {"data_dir": str(tmp_path / "data")}}
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        tables["database"] = {"url": server.create_database(f"migrations_{next(_databases)}")}
    return parse_settings(tables, where="test")


async def test_migrations_apply_to_a_fresh_database_and_leave_nothing_to_migrate(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    applied = await db.migrate(fresh_settings)
    assert applied, "no migration was applied to a fresh database"
    assert await db.pending_migrations(fresh_settings) == []
    assert await db.migrate(fresh_settings) == [], "migrating twice must change nothing"

    # Ask aerich to write the next migration from the models: there must be none.
    location = tmp_path / "migrations"
    shutil.copytree(
        db.migrations_location(), location, ignore=shutil.ignore_patterns("__pycache__")
    )
    async with db.migration_command(fresh_settings, location) as command:
        written = await command.migrate("leftover", no_input=True)
    assert not written, f"the models differ from the migrations: aerich wrote {written}"


async def test_the_migrated_schema_stores_and_reads_models(fresh_settings: Settings) -> None:
    await db.migrate(fresh_settings)
    await db.open_database(fresh_settings)
    try:
        await User.create(email="a@example.org", password_hash="x", category="general")
        user = await User.get(email="a@example.org")
        assert user.token_version == 1 and user.is_active
        await db.ping()
    finally:
        await db.close_database()


def test_clipsync_migrate_command(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[paths]\ndata_dir = "data"\n')
    first = subprocess.run(
        [sys.executable, "-m", "clipsync", "--config", str(config), "migrate"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "applied 0_" in first.stdout
    again = subprocess.run(
        [sys.executable, "-m", "clipsync", "--config", str(config), "migrate"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "up to date" in again.stdout
    assert (tmp_path / "data" / "clipsync.sqlite3").exists()
