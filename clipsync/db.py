"""The database: Tortoise configuration, opening and closing, and migrations.

Tortoise is initialised once per process that uses it (each server worker, each job
worker) and closed when that process stops. The schema is owned by the aerich
migrations in `migrations/` (installed as the `clipsync_migrations` package); each
migration carries SQL for SQLite and for PostgreSQL.
"""

from __future__ import annotations

import asyncio
import fcntl
import importlib.resources
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from aerich import Command
from tortoise import Tortoise, connections
from tortoise.exceptions import OperationalError

from clipsync import tracing
from clipsync.settings import Settings

MODEL_MODULES = ["clipsync.models", "aerich.models"]
APP = "models"


def connection_name(database_url: str) -> str:
    """The Tortoise connection name: the dialect, e.g. `sqlite` or `postgres`.

    Tortoise caches prepared SQL per connection name and table; naming connections
    by dialect keeps a process that talks to both (the test suite, the migration
    tooling) from reusing SQLite's SQL on PostgreSQL.
    """
    return dialect(database_url)


def tortoise_config(database_url: str) -> dict[str, Any]:
    name = connection_name(database_url)
    return {
        "connections": {name: database_url},
        "apps": {APP: {"models": MODEL_MODULES, "default_connection": name}},
        "use_tz": True,
        "timezone": "UTC",
    }


def migrations_location() -> Path:
    """The folder aerich reads migrations from (`<location>/models/*.py`)."""
    return Path(str(importlib.resources.files("clipsync_migrations")))


def dialect(database_url: str) -> str:
    scheme = database_url.split(":", 1)[0]
    return {"sqlite": "sqlite", "postgres": "postgres", "psql": "postgres"}.get(scheme, scheme)


def _prepare(settings: Settings) -> str:
    url = settings.database_url
    if dialect(url) == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return url


async def open_database(settings: Settings) -> None:
    """Connect this process to the database (once per worker process)."""
    url = _prepare(settings)
    # Sanic runs listeners and request handlers in different tasks, so the ORM's
    # context must be visible process-wide, not only in the task that opened it.
    await Tortoise.init(config=tortoise_config(url), _enable_global_fallback=True)
    # With tracing on, a span per query (the dialect's client is loaded by now).
    tracing.trace_database()
    # Connect now rather than on the first query: Tortoise connects lazily under a
    # lock that a request cancelled mid-connect never releases, which would leave
    # this worker waiting on the database for good.
    await ping()


async def close_database() -> None:
    await Tortoise.close_connections()


@asynccontextmanager
async def migration_command(
    settings: Settings, location: Path | None = None
) -> AsyncIterator[Command]:
    """An initialised aerich `Command` for this database, closed afterwards."""
    config = tortoise_config(_prepare(settings))
    # Initialise explicitly every time: aerich skips it when an earlier, already
    # closed session in this process left Tortoise looking initialised.
    await Tortoise.init(config=config)
    try:
        command = Command(
            tortoise_config=config, app=APP, location=str(location or migrations_location())
        )
        await command.init()
        yield command
    finally:
        await Tortoise.close_connections()


# The PostgreSQL advisory lock `clipsync migrate` holds ("ClipSync migrate").
MIGRATION_LOCK = 0x436C6970_4D696772


async def migrate(settings: Settings, waiting: Callable[[], None] | None = None) -> list[str]:
    """Apply every migration not yet applied; return the names of those applied.

    One process migrates at a time (`migration_lock`): another host's `clipsync
    migrate` waits for it (`waiting` is called first), then finds nothing left to do.
    """
    async with migration_lock(settings, waiting), migration_command(settings) as command:
        return await command.upgrade(run_in_transaction=True)


@asynccontextmanager
async def migration_lock(
    settings: Settings, waiting: Callable[[], None] | None = None
) -> AsyncIterator[None]:
    """Hold the database's migration lock: a PostgreSQL advisory lock, which every host
    sharing the database sees and which ends with the connection (a killed migration
    never leaves it held), or an `flock` beside an SQLite file."""
    url = _prepare(settings)
    if dialect(url) == "postgres":
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK):
                if waiting:
                    waiting()
                await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            yield
        finally:
            await connection.close()
        return
    path = settings.data_dir / "migrate.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                waiting()
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def asyncpg_dsn(database_url: str) -> str:
    """A Tortoise PostgreSQL URL as asyncpg takes it (its scheme; no pool options)."""
    rest = database_url.split("://", 1)[1].split("?", 1)[0]
    return f"postgresql://{rest}"


async def pending_migrations(settings: Settings) -> list[str]:
    """The migrations not yet applied (all of them on a database never migrated)."""
    async with migration_command(settings) as command:
        try:
            return await command.heads()
        except OperationalError:  # no aerich table yet: nothing was ever applied
            return await command.history()


async def ping() -> None:
    """Run a trivial query; raises when the database cannot answer."""
    for connection in connections.all():
        await connection.execute_query("SELECT 1")
