from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from services import RedisServer, free_port

from clipsync.api import health

# The details of /healthz are for admins and the host itself (tests/security covers
# what others see), so these checks ask from loopback.
LOOPBACK = "127.0.0.1"


def with_database(settings, migrated_sqlite: Path):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    return settings


async def test_healthz_checks_the_database_and_the_sqlite_queue(start_app, settings) -> None:
    _, client = await start_app(settings, client_address=LOOPBACK)
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {
            "database": {"ok": True},
            "queue": {"ok": True, "backend": "sqlite", "pending": 0},
            # No consumer runs under the test client, and none is expected there.
            "jobs": {
                "ok": True,
                "consumers": 0,
                "oldestWaitingSeconds": None,
                "lastReaperRunSecondsAgo": None,
            },
        },
    }


async def test_healthz_checks_a_redis_queue(
    start_app, make_settings, migrated_sqlite: Path, redis_server: RedisServer
) -> None:
    settings = with_database(
        make_settings(queue={"backend": "redis", "redis_url": redis_server.url}), migrated_sqlite
    )
    _, client = await start_app(settings, client_address=LOOPBACK)
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["checks"]["queue"] == {"ok": True, "backend": "redis", "pending": 0}


async def test_healthz_fails_when_the_queue_is_unreachable(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    settings = with_database(
        make_settings(queue={"backend": "redis", "redis_url": url}), migrated_sqlite
    )
    _, client = await start_app(settings, client_address=LOOPBACK)
    response = await client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["queue"]["ok"] is False
    assert url not in response.text  # connection strings may hold passwords


async def test_healthz_fails_when_the_database_is_unreachable(
    start_app, make_settings, postgres_server
) -> None:
    url = postgres_server.create_database("health_gone")
    settings = make_settings(database={"url": url})
    _, client = await start_app(settings, client_address=LOOPBACK)
    assert (await client.get("/healthz")).status_code == 200
    conn = await asyncpg.connect(postgres_server.dsn())
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'health_gone'"
        )
        await conn.execute("ALTER DATABASE health_gone ALLOW_CONNECTIONS false")
    finally:
        await conn.close()
    response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["ok"] is False


# --- /healthz/live and /healthz/ready (issue 18, item 4) -----------------------------------


async def test_live_answers_while_the_database_does_not(start_app, settings, monkeypatch) -> None:
    """Liveness asks nothing the process depends on: a restart mends no database."""
    _, client = await start_app(settings, client_address=LOOPBACK)

    async def unreachable() -> None:
        raise ConnectionError("database down")

    monkeypatch.setattr(health.db, "ping", unreachable)
    assert (await client.get("/healthz")).status_code == 503
    live = await client.get("/healthz/live")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}


async def test_ready_checks_the_database_queue_storage_analytics_and_disk(
    start_app, settings
) -> None:
    _, client = await start_app(settings, client_address=LOOPBACK)
    response = await client.get("/healthz/ready")
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert set(checks) == {"database", "queue", "jobs", "storage", "analytics", "disk"}
    assert all(check["ok"] for check in checks.values()), checks


@pytest.mark.parametrize(
    ("backend", "method", "check", "error"),
    [
        ("storage", "size", "storage", "the media store does not answer"),
        ("analytics", "video_stats", "analytics", "the analytics store does not answer"),
    ],
)
async def test_ready_fails_when_a_store_does_not_answer(
    start_app, settings, monkeypatch, backend: str, method: str, check: str, error: str
) -> None:
    app, client = await start_app(settings, client_address=LOOPBACK)

    async def unreachable(*args: object, **kwargs: object) -> None:
        raise ConnectionError("secret-host:9000 refused")

    monkeypatch.setattr(getattr(app.ctx.backends, backend), method, unreachable)
    response = await client.get("/healthz/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert body["checks"][check] == {"ok": False, "error": error}
    assert "secret-host" not in response.text
    # Not a reason to restart the process: /healthz (and /healthz/live) stay up.
    assert (await client.get("/healthz")).status_code == 200


async def test_ready_shows_its_details_only_to_admins_and_the_host_itself(
    start_app, settings
) -> None:
    _, client = await start_app(settings)  # a visitor from elsewhere
    response = await client.get("/healthz/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
