"""The services ClipSync depends on go away and come back: 503 meanwhile, then it just works.

Each test runs the app against a real service of its own, takes the service away
mid-session (PostgreSQL and ClickHouse stopped; the S3 endpoint cut off behind a TCP
proxy, because moto would forget its objects if stopped), and checks that requests
during the outage answer 503 with Retry-After and a message naming what is missing
(a friendly page for a browser), never 500, and that requests after the service is
back succeed with no restart of ClipSync. The Redis (job queue) outage is run
against a real `clipsync serve` in test_queue_outage.py; the mapping of each
client library's own errors is checked with real errors from real clients here.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis
from clickhouse_driver import Client
from clients import PASSWORD, bearer, register, upload
from clips import make_clip
from faults.processes import Timeline
from faults.tcp_proxy import TcpProxy
from services import ClickHouseServer, PostgresServer, S3Server, free_port

from clipsync import db
from clipsync.error_handler import as_clipsync_error
from clipsync.errors import (
    AnalyticsUnavailable,
    ClipSyncError,
    DatabaseUnavailable,
    InsufficientStorage,
    QueueUnavailable,
    StorageUnavailable,
)
from clipsync.models import Role, Video, VideoStatus
from clipsync.settings import Secret
from clipsync.storage import keys

pytestmark = pytest.mark.faults

PLAYLIST = b"#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-ENDLIST\n"


def assert_unavailable(response: httpx.Response, code: str, names: str) -> None:
    """A 503 that asks to come back later and says what is missing, as JSON."""
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    error = response.json()["error"]
    assert error["code"] == code
    assert names in error["message"]


def assert_unavailable_page(response: httpx.Response, names: str) -> None:
    """The same for a browser: the theme's page, not a stack trace."""
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["content-type"].startswith("text/html")
    assert "Temporarily unavailable" in response.text
    assert names in response.text
    assert "Traceback" not in response.text


async def eventually(what: str, check: Callable[[], bool], timeout: float = 90.0) -> None:
    """Wait for `check()` without blocking the app, which runs on this event loop."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.1)


# --- the one mapping, fed real errors of real clients ---------------------------------


async def test_each_client_library_s_lost_connection_maps_to_the_503_of_its_service() -> None:
    closed = free_port()  # nothing listens here
    errors: dict[type[ClipSyncError], BaseException] = {}
    try:
        await asyncpg.connect(f"postgres://postgres@127.0.0.1:{closed}/clipsync", timeout=5)
    except Exception as exc:
        errors[DatabaseUnavailable] = exc
    try:
        redis.Redis(host="127.0.0.1", port=closed, socket_connect_timeout=5).ping()
    except Exception as exc:
        errors[QueueUnavailable] = exc
    try:
        Client("127.0.0.1", port=closed, connect_timeout=5).execute("SELECT 1")
    except Exception as exc:
        errors[AnalyticsUnavailable] = exc
    from clipsync_storage_s3 import S3Settings, S3Storage

    config = S3Settings(
        endpoint=f"127.0.0.1:{closed}", secure=False, access_key=Secret("a"), secret_key=Secret("b")
    )
    try:
        await S3Storage(config, Path("/nonexistent")).size("videos/x/source.mp4")
    except Exception as exc:
        errors[StorageUnavailable] = exc
    assert set(errors) == {
        DatabaseUnavailable,
        QueueUnavailable,
        AnalyticsUnavailable,
        StorageUnavailable,
    }
    for expected, exc in errors.items():
        mapped = as_clipsync_error(exc)
        assert type(mapped) is expected, f"{exc!r} became {mapped!r}"
        assert mapped.status == 503 and int(mapped.headers["Retry-After"]) > 0

    # What is not an outage stays what it was: a bug is a 500, a full disk a 507.
    assert as_clipsync_error(ValueError("a bug")).status == 500
    assert isinstance(
        as_clipsync_error(OSError(28, "No space left on device")), InsufficientStorage
    )


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own: stopping it disturbs no other test."""
    with PostgresServer() as server:
        yield server


async def test_postgresql_down_answers_503_and_the_app_recovers_when_it_is_back(
    start_app, make_settings, own_postgres: PostgresServer
) -> None:
    timeline = Timeline("PostgreSQL down for a while")
    # The cache off: with it, answers it holds would still be served while the
    # database is down (up to [cache] ttl_seconds), and this is about the database.
    settings = make_settings(
        database={"url": own_postgres.create_database("clipsync")}, cache={"backend": "off"}
    )
    await db.migrate(settings)
    app, client = await start_app(settings)
    admin = await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    token = app.ctx.accounts.start_session(admin).token
    assert (await client.get("/api/videos/", headers=bearer(token))).status_code == 200

    own_postgres.stop(keep_data=True)
    timeline.mark("down")
    for _ in range(2):  # the first request finds its pooled connection dead, the next none
        timeline.mark("asked")
        answer = await client.get("/api/videos/", headers=bearer(token))
        timeline.mark("answered")
        assert_unavailable(answer, "database_unavailable", "The database is not reachable")
    signing_in = await client.post(
        "/api/auth/login", json={"email": "admin@example.org", "password": PASSWORD}
    )
    assert_unavailable(signing_in, "database_unavailable", "The database is not reachable")
    client.cookies.set("clipsync_session", token)
    assert_unavailable_page(await client.get("/"), "The database is not reachable")
    client.cookies.clear()

    own_postgres.start()
    timeline.mark("back")
    listed = await client.get("/api/videos/", headers=bearer(token))
    timeline.mark("first success")
    assert listed.status_code == 200, listed.text
    signed_in = await client.post(
        "/api/auth/login", json={"email": "admin@example.org", "password": PASSWORD}
    )
    assert signed_in.status_code == 200, signed_in.text
    client.cookies.set("clipsync_session", token)
    assert (await client.get("/")).status_code == 200
    timeline.report(
        outage_answer=timeline.between("asked", "answered"),
        back_to_first_success=timeline.between("back", "first success"),
    )


# --- the S3 store ----------------------------------------------------------------------------


async def test_the_s3_store_cut_off_answers_503_and_the_app_recovers_when_it_is_back(
    start_app, make_settings, migrated_sqlite: Path, s3_server: S3Server, tmp_path: Path
) -> None:
    timeline = Timeline("S3 store unreachable for a while")
    with TcpProxy(s3_server.host, s3_server.port) as proxy:
        bucket = f"outage-{uuid.uuid4().hex[:12]}"
        settings = make_settings(
            storage={"backend": "s3", "playback": "proxy"},
            plugins={"storage_s3": s3_server.plugin_table(endpoint=proxy.endpoint, bucket=bucket)},
            # The cache off: the master playlist it holds would still be served.
            cache={"backend": "off"},
        )
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated_sqlite, settings.data_dir / "clipsync.sqlite3")
        app, client = await start_app(settings)
        token = (await register(client, "owner@example.org"))["token"]
        owner = await app.ctx.accounts.user_for_token(token)
        video = await Video.create(
            owner=owner, title="Clip", category=owner.category, status=VideoStatus.APPROVED
        )
        playlist = tmp_path / "master.m3u8"
        playlist.write_bytes(PLAYLIST)
        await app.ctx.backends.storage.put_file(keys.hls_key(video.id, "master.m3u8"), playlist)
        url = f"/hls/{video.id}/master.m3u8"
        assert (await client.get(url, headers=bearer(token))).content == PLAYLIST
        clip = make_clip("landscape")
        assert (await upload(client, token, clip)).status_code == 201

        proxy.cut()
        timeline.mark("down")
        message = "The media store is not reachable"
        timeline.mark("asked")
        answer = await client.get(url, headers=bearer(token))
        timeline.mark("answered")
        assert_unavailable(answer, "storage_unavailable", message)
        assert_unavailable(await upload(client, token, clip), "storage_unavailable", message)
        assert await Video.filter(owner=owner).count() == 2  # the refused upload left no row

        proxy.restore()
        timeline.mark("back")
        played = await client.get(url, headers=bearer(token))
        timeline.mark("first success")
        assert played.status_code == 200 and played.content == PLAYLIST
        assert (await upload(client, token, clip)).status_code == 201
    timeline.report(
        outage_answer=timeline.between("asked", "answered"),
        back_to_first_success=timeline.between("back", "first success"),
    )


# --- ClickHouse (analytics) -------------------------------------------------------------


@pytest.fixture
def own_clickhouse() -> Iterator[ClickHouseServer]:
    with ClickHouseServer() as server:
        yield server


def clickhouse_count(server: ClickHouseServer, database: str) -> tuple[int, int]:
    """(events, distinct event ids) in ClickHouse; (-1, -1) while it cannot answer."""
    client = Client(server.host, port=server.port, connect_timeout=2)
    try:
        [(count, unique)] = client.execute(
            f"SELECT count(), uniqExact(event_id) FROM {database}.events_raw"
        )
        return count, unique
    except Exception:
        return -1, -1
    finally:
        client.disconnect()


async def test_clickhouse_down_keeps_events_coming_dashboards_answer_503_then_recover(
    start_app, make_settings, migrated_sqlite: Path, own_clickhouse: ClickHouseServer
) -> None:
    timeline = Timeline("ClickHouse (analytics) down for a while")
    database = f"outage_{uuid.uuid4().hex[:8]}"
    settings = make_settings(
        analytics={"backend": "clickhouse"},
        plugins={
            "analytics_clickhouse": {
                "host": own_clickhouse.host,
                "port": own_clickhouse.port,
                "database": database,
                "flush_interval": 0.2,
            }
        },
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite, settings.data_dir / "clipsync.sqlite3")
    app, client = await start_app(settings)
    admin = await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    token = app.ctx.accounts.start_session(admin).token
    video = await Video.create(
        owner=admin, title="Clip", category=admin.category, status=VideoStatus.APPROVED,
        duration=100.0,
    )  # fmt: skip

    async def watch(seconds: int) -> int:
        batch = [
            {"type": "PROGRESS", "videoId": str(video.id), "sessionId": "s1",
             "position": t, "played": 5}
            for t in range(5, seconds + 1, 5)
        ]  # fmt: skip
        answer = await client.post("/api/analytics/event", json=batch, headers=bearer(token))
        assert answer.status_code == 200, answer.text
        return answer.json()["accepted"]

    overview = "/api/admin/analytics/overview"
    sent = await watch(50)
    assert (await client.get(overview, headers=bearer(token))).status_code == 200

    await app.ctx.backends.analytics.disconnect()  # ClickHouse waits for its clients to stop
    own_clickhouse.stop(keep_data=True)
    timeline.mark("down")
    for _ in range(3):
        sent += await watch(50)  # the player's events are taken as usual
    message = "Analytics are unavailable right now"
    timeline.mark("asked")
    answer = await client.get(overview, headers=bearer(token))
    timeline.mark("answered")
    assert_unavailable(answer, "analytics_unavailable", message)
    client.cookies.set("clipsync_session", token)
    assert_unavailable_page(await client.get("/analytics"), message)
    client.cookies.clear()

    own_clickhouse.start()
    timeline.mark("back")
    await eventually(
        "every event accepted to arrive in ClickHouse",
        lambda: clickhouse_count(own_clickhouse, database) == (sent, sent),
    )
    timeline.mark("all delivered")
    figures = await client.get(overview, headers=bearer(token))
    assert figures.status_code == 200, figures.text
    assert clickhouse_count(own_clickhouse, database) == (sent, sent)
    timeline.report(
        outage_answer=timeline.between("asked", "answered"),
        back_to_all_delivered=timeline.between("back", "all delivered"),
    )
