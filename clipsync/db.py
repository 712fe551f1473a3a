"""The database: Tortoise configuration, opening and closing, and migrations.

Tortoise is initialised once per process that uses it (each server worker, each job
worker) and closed when that process stops. The schema is owned by the aerich
migrations in `migrations/` (installed as the `clipsync_migrations` package); each
migration carries SQL for SQLite and for PostgreSQL.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

from aerich import Command
from tortoise import Tortoise

from clipsync.settings import Settings

MODEL_MODULES = ["clipsync.models", "aerich.models"]
APP = "models"


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": database_url},
        "apps": {APP: {"models": MODEL_MODULES, "default_connection": "default"}},
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


async def close_database() -> None:
    await Tortoise.close_connections()


async def migrate(settings: Settings) -> list[str]:
    """Apply every migration not yet applied; return the names of those applied."""
    url = _prepare(settings)
    command = Command(
        tortoise_config=tortoise_config(url), app=APP, location=str(migrations_location())
    )
    async with command:
        await command.init()
        return await command.upgrade(run_in_transaction=True)


async def pending_migrations(settings: Settings) -> list[str]:
    url = _prepare(settings)
    command = Command(
        tortoise_config=tortoise_config(url), app=APP, location=str(migrations_location())
    )
    async with command:
        await command.init()
        return await command.heads()


async def ping() -> None:
    """Run a trivial query; raises when the database cannot answer."""
    await Tortoise.get_connection("default").execute_query("SELECT 1")
