"""Shared fixtures: settings, a migrated database, a running app, real services.

Every app under test runs its real lifecycle (ASGI lifespan: database opened in
`before_server_start`, closed in `after_server_stop`) and is called through httpx
over ASGI, so tests can also use the ORM directly while the app is up.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sanic import Sanic
from services import ClickHouseServer, PostgresServer, RedisServer

from clipsync import db
from clipsync.app import create_app
from clipsync.context import ClipSyncApp
from clipsync.settings import Settings, parse_settings

# The live-server and Chromium fixtures of the browser tests.
pytest_plugins = ["browser"]

Sanic.test_mode = True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `gpu` run only where a GPU or /dev/dri exists."""
    if Path("/dev/dri").exists() or Path("/dev/nvidia0").exists():
        return
    skip = pytest.mark.skip(reason="needs a GPU or /dev/dri, and this machine has neither")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# --- real services (started once per session, only when a test asks) ----------------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def clickhouse_server() -> Iterator[ClickHouseServer]:
    with ClickHouseServer() as server:
        yield server


# --- settings and database ------------------------------------------------------------


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Settings for a throwaway install in `tmp_path`; keyword arguments are TOML tables."""

    def make(**tables: Any) -> Settings:
        base = {
            "paths": {"data_dir": str(tmp_path / "data")},
            # The name the test client sends as Host (see `start_app`).
            "server": {"public_url": "http://clipsync.test"},
            # The lowest bcrypt cost keeps the suite fast; a test checks the default is 12.
            "plugins": {"auth_local": {"bcrypt_rounds": 4}},
        }
        return parse_settings(
            merge(base, tables), where="test config", source=tmp_path / "config.toml"
        )

    return make


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database with every migration applied, copied by each test that needs one."""
    folder = tmp_path_factory.mktemp("template")
    settings = parse_settings({"paths": {"data_dir": str(folder)}}, where="template")
    asyncio.run(db.migrate(settings))
    return folder / "clipsync.sqlite3"


@pytest.fixture
def settings(make_settings: SettingsFactory, migrated_sqlite: Path) -> Settings:
    settings = make_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite, settings.data_dir / "clipsync.sqlite3")
    return settings


# --- a running app ------------------------------------------------------------------------


class Lifespan:
    """Drive an ASGI app's lifespan protocol: startup on enter, shutdown on exit."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()

    async def _expect(self, kind: str) -> None:
        message = await asyncio.wait_for(self.outbox.get(), 30)
        if message["type"] != f"lifespan.{kind}.complete":
            raise RuntimeError(f"app {kind} failed: {message.get('message', message)}")

    async def __aenter__(self) -> Lifespan:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
        self.task = asyncio.create_task(self.app(scope, self.inbox.get, self.outbox.put))
        await self.inbox.put({"type": "lifespan.startup"})
        await self._expect("startup")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self._expect("shutdown")
        await self.task


AppFactory = Callable[..., Awaitable[tuple[ClipSyncApp, httpx.AsyncClient]]]


@pytest.fixture
async def start_app() -> AsyncIterator[AppFactory]:
    """Start apps from settings; each is stopped when the test ends."""
    running: list[tuple[Lifespan, httpx.AsyncClient]] = []

    async def start(settings: Settings, **kwargs: Any) -> tuple[ClipSyncApp, httpx.AsyncClient]:
        app = create_app(settings, load_entry_points=kwargs.pop("load_entry_points", False))
        lifespan = Lifespan(app)
        await lifespan.__aenter__()
        # A visitor from elsewhere, unless the test asks for another address.
        address = kwargs.pop("client_address", "203.0.113.7")
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 5000)),
            base_url="http://clipsync.test",
        )
        running.append((lifespan, client))
        return app, client

    yield start
    for lifespan, client in reversed(running):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def app_client(
    start_app: AppFactory, settings: Settings
) -> tuple[ClipSyncApp, httpx.AsyncClient]:
    return await start_app(settings)


@pytest.fixture
def app(app_client: tuple[ClipSyncApp, httpx.AsyncClient]) -> ClipSyncApp:
    return app_client[0]


@pytest.fixture
def client(app_client: tuple[ClipSyncApp, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_client[1]


from services import S3Server  # noqa: E402  (appended with the S3 storage plugin)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server, enforcing signatures; see `services.S3Server`."""
    with S3Server() as server:
        yield server


from services import RadosGwServer  # noqa: E402  (appended with the radosgw tests)


@pytest.fixture(scope="session")
def rgw_server() -> Iterator[RadosGwServer]:
    """Ceph's radosgw on a one-node cluster (about 20 s to start); see `services.RadosGwServer`."""
    with RadosGwServer() as server:
        yield server
