"""A real `clipsync serve` set up for attack tests, and ways to reach it.

`attack_server()` starts a `browser.LiveServer` with the settings an attack needs
(Sanic workers, PostgreSQL instead of SQLite, a bcrypt cost that makes password
checks overlap). `client_from()` talks to it from a chosen loopback address (all of
127.0.0.0/8 reaches the server on Linux), so a test can be two people on two
networks. `run_sql()` reads and changes the server's database directly, as an
operator (or an attacker with a foot in the database) would.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from browser import LiveServer
from clients import PASSWORD
from services import PostgresServer

_databases = itertools.count()


@dataclass(frozen=True)
class Install:
    """A running `clipsync serve` and where its database is."""

    server: LiveServer
    # A postgres:// URL, or the path of the SQLite file.
    database: str


@contextlib.contextmanager
def attack_server(
    workdir: Path,
    *,
    postgres: PostgresServer | None = None,
    workers: int = 1,
    bcrypt_rounds: int = 4,
    extra_toml: str = "",
) -> Iterator[Install]:
    """A migrated, running install in `workdir`; on PostgreSQL when `postgres` is given."""
    toml = extra_toml
    database = str(workdir / "data" / "clipsync.sqlite3")
    if postgres is not None:
        database = postgres.create_database(f"attack_{next(_databases)}")
        toml = f'[database]\nurl = "{database}"\n{toml}'
    server = LiveServer(workdir, toml)
    server.write_config()
    config = server.config_path.read_text()
    config = config.replace("[server]\n", f"[server]\nworkers = {workers}\n", 1)
    config = config.replace("bcrypt_rounds = 4\n", f"bcrypt_rounds = {bcrypt_rounds}\n", 1)
    server.config_path.write_text(config)
    with server:
        yield Install(server, database)


def client_from(install: Install, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """An HTTP client whose connections come from `address` (a loopback address)."""
    return httpx.AsyncClient(
        base_url=install.server.base_url,
        transport=httpx.AsyncHTTPTransport(local_address=address),
        timeout=60,
    )


async def run_sql(install: Install, query: str, *args: Any) -> list[dict[str, Any]]:
    """Run one statement on the install's database (`?` placeholders); returns the rows."""
    url = install.database
    if url.startswith("postgres"):
        numbered = iter(range(1, query.count("?") + 1))
        pg_query = "".join(f"${next(numbered)}" if c == "?" else c for c in query)
        connection = await asyncpg.connect(url)
        try:
            return [dict(row) for row in await connection.fetch(pg_query, *args)]
        finally:
            await connection.close()
    with contextlib.closing(sqlite3.connect(url, timeout=10)) as connection:
        connection.row_factory = sqlite3.Row
        with connection:
            rows = connection.execute(query, args).fetchall()
        return [dict(row) for row in rows]


async def set_up_admin(install: Install, email: str) -> None:
    """Create the first administrator through the set-up form, in a browser of its own."""
    async with client_from(install) as browser:
        await browser.get("/setup")
        answer = await browser.post(
            "/setup",
            data={
                "csrf_token": browser.cookies["clipsync_csrf"],
                "email": email,
                "password": PASSWORD,
                "password_confirm": PASSWORD,
            },
        )
    assert answer.status_code == 303, answer.text


async def sign_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    """A bearer token for `email`."""
    answer = await client.post("/api/auth/login", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]
