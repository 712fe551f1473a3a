"""Copying the databases out and back: SQLite files and PostgreSQL dumps.

SQLite is copied with its online backup API, which gives a consistent copy while
the server and the job consumer keep writing. PostgreSQL is dumped with `pg_dump
--format=custom` (one consistent snapshot) and loaded with `pg_restore`; pg_dump
must be at least as new as the server, so the newest installed one is used and an
older one is refused with what to install.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlsplit

from clipsync.db import dialect
from clipsync.errors import ClipSyncError


class BackupError(ClipSyncError):
    status = 500
    code = "backup_failed"


def sqlite_path(database_url: str) -> Path:
    """The file of a `sqlite://` database URL (Tortoise's form, query dropped)."""
    path = database_url.split("://", 1)[1].split("?", 1)[0]
    if not path or path == ":memory:":
        raise BackupError(f"{database_url}: an in-memory database cannot be backed up")
    return Path(path)


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of the SQLite database `source` at `target` (online backup)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    if not source.is_file():
        raise BackupError(f"{source}: no such database file")
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def put_sqlite(copy: Path, target: Path) -> None:
    """Make the SQLite file `target` the database in `copy` (ClipSync stopped)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    draft = target.with_name(f".{target.name}.restoring")
    copy_sqlite(copy, draft)
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(draft, target)


# -- PostgreSQL ------------------------------------------------------------------------------


def _libpq_env(database_url: str) -> dict[str, str]:
    """libpq's variables for the URL: no password on a command line (`ps` shows those)."""
    parts = urlsplit(database_url)
    env = dict(os.environ)
    values = {
        "PGHOST": parts.hostname or "",
        "PGPORT": str(parts.port or ""),
        "PGUSER": unquote(parts.username or ""),
        "PGPASSWORD": unquote(parts.password or ""),
        "PGDATABASE": unquote(parts.path.lstrip("/")),
    }
    env.update({name: value for name, value in values.items() if value})
    return env


def _major(version: str) -> int:
    match = re.search(r"(\d+)", version)
    return int(match.group(1)) if match else 0


def client_candidates(program: str) -> list[Path]:
    """Every `program` installed: Debian's versioned folders (newest first), then PATH."""
    found = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{program}"),
        key=lambda p: _major(p.parent.parent.name),
        reverse=True,
    )
    on_path = shutil.which(program)
    if on_path:
        found.append(Path(on_path))
    return found


async def _run(args: list[str], env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        message = err.decode(errors="replace").strip() or f"exit status {process.returncode}"
        raise BackupError(f"{Path(args[0]).name} failed: {message}")
    return out.decode(errors="replace")


async def server_major(database_url: str) -> int:
    import asyncpg

    parts = urlsplit(database_url)
    conn = await asyncpg.connect(parts._replace(query="", scheme="postgres").geturl())
    try:
        return int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()


async def pg_program(program: str, database_url: str) -> Path:
    """The newest `program` (pg_dump, pg_restore) able to handle this server."""
    wanted = await server_major(database_url)
    seen = []
    for candidate in client_candidates(program):
        version = await _run([str(candidate), "--version"], dict(os.environ))
        major = _major(version.rsplit(" ", 1)[-1])
        if major >= wanted:
            return candidate
        seen.append(f"{candidate} ({version.strip()})")
    have = "; found " + ", ".join(seen) if seen else f"; no {program} is installed"
    raise BackupError(
        f"the database server is PostgreSQL {wanted} and {program} must be version {wanted} "
        f"or newer{have}. Install postgresql-client-{wanted} (Debian) or a newer one."
    )


async def dump_postgres(database_url: str, target: Path) -> None:
    program = await pg_program("pg_dump", database_url)
    await _run(
        [str(program), "--format=custom", "--no-owner", f"--file={target}"],
        _libpq_env(database_url),
    )


async def restore_postgres(database_url: str, dump: Path) -> None:
    """Load a dump into the configured database, replacing the empty schema there."""
    program = await pg_program("pg_restore", database_url)
    env = _libpq_env(database_url)
    await _run(
        [
            str(program),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={env.get('PGDATABASE', '')}",
            str(dump),
        ],
        env,
    )


# -- what is in a database -----------------------------------------------------------------


async def _scalar(database_url: str, sql: str) -> object | None:
    """The first value `sql` gives, or None when its table does not exist (yet)."""
    if dialect(database_url) == "sqlite":
        path = sqlite_path(database_url)
        if not path.exists():
            return None

        def ask() -> object | None:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            try:
                row = conn.execute(sql).fetchone()
            except sqlite3.OperationalError:  # no such table
                return None
            finally:
                conn.close()
            return row[0] if row else None

        return await asyncio.to_thread(ask)
    import asyncpg

    parts = urlsplit(database_url)
    conn = await asyncpg.connect(parts._replace(query="", scheme="postgres").geturl())
    try:
        return await conn.fetchval(sql)
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()


async def migration_level(database_url: str) -> str:
    """The name of the last migration applied ("" on a database never migrated)."""
    found = await _scalar(database_url, "SELECT version FROM aerich ORDER BY id DESC LIMIT 1")
    return str(found or "")


async def people_and_videos(database_url: str) -> tuple[int, int]:
    """How many users and videos the database holds (0 where it has no tables)."""
    users = await _scalar(database_url, "SELECT count(*) FROM users")
    videos = await _scalar(database_url, "SELECT count(*) FROM videos")
    return int(users or 0), int(videos or 0)
