"""Backups of a whole install and their restore (`clipsync backup`, `clipsync restore`).

- `targets`: where backups go, a folder or `s3://bucket/prefix`;
- `database`: SQLite online-backup copies, pg_dump and pg_restore;
- `config`: config.toml with its secrets masked;
- `manifest`: what a backup holds, every media object with its size and sha256;
- `snapshot`: making one backup; `restore`: putting one back and verifying it;
- `schedule`: the backups the job consumer makes every `[backup] schedule_hours`.

`open_install` gives the command line what the job consumer already has: the
active storage backend, the SQLite analytics file, and each plugin's settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clipsync.backends import choose, gather
from clipsync.backup.schedule import analytics_path
from clipsync.backup.snapshot import Sources
from clipsync.settings import Settings


@dataclass(frozen=True)
class Install:
    sources: Sources
    # The validated [plugins.storage_s3] settings: an S3 target's fallback credentials.
    s3_settings: Any


def open_install(settings: Settings) -> Install:
    """The storage and analytics backends of this install, chosen as at start-up."""
    from clipsync.plugins import create_plugin_host

    host = create_plugin_host(settings)
    registries = gather(host)
    storage = choose("storage", registries["storage"], host, settings, settings.storage.backend)
    analytics = choose(
        "analytics", registries["analytics"], host, settings, settings.analytics.backend
    )
    sources = Sources(
        settings,
        storage.instance,
        analytics_db=analytics_path(analytics.instance),
        analytics_backend=analytics.chosen.name,
        plugin_configs=dict(host.configs),
    )
    return Install(sources, host.plugin_config("storage_s3"))


def failures() -> tuple[type[BaseException], ...]:
    """The errors of what a backup talks to, which the command reports in one line.

    Disk, S3, PostgreSQL and SQLite errors: a person can act on their message, and
    none of them holds a secret.
    """
    import sqlite3

    import asyncpg
    from minio.error import MinioException

    return (OSError, MinioException, asyncpg.PostgresError, sqlite3.Error)
