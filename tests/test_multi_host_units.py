"""No host assumes it is alone: each thing one host kept to itself, shared, one by one.

Two "hosts" here are two apps (or settings) with data directories of their own and
one database, one Redis, one S3 bucket between them, as two machines would have.
The whole layout (nginx, two `clipsync serve`, two `clipsync worker`) runs in
tests/test_multi_host.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import os
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from clients import register
from services import PostgresServer, RedisServer, S3Server

from clipsync import db, generated_keys
from clipsync.errors import ConfigError
from clipsync.host_sharing import kept_here, sharing_check
from clipsync.models import ResumableUpload, SiteAlert, Video
from clipsync.services import reaper
from clipsync.services.checksums import Sha256
from clipsync.services.rate_limit import AttemptWindow, SharedAttemptWindow, address_window
from clipsync.services.resumable_lease import UploadLease
from clipsync.settings import Settings

MiB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


def host_settings(make_settings: Callable[..., Settings], tmp_path: Path, name: str, **tables: Any):
    return make_settings(paths={"data_dir": str(tmp_path / name / "data")}, **tables)


@pytest.fixture
def database(postgres_server: PostgresServer) -> str:
    """A fresh, migrated PostgreSQL database: what the hosts share."""
    url = postgres_server.create_database(f"hosts_{uuid.uuid4().hex[:10]}")
    return url


async def migrated(settings: Settings) -> Settings:
    await db.migrate(settings)
    return settings


# --- resumable uploads: state in the database, bytes in the store ------------------------


class TusHost:
    """A tus client talking to one host."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.headers = {**TUS, "Authorization": f"Bearer {token}"}

    async def patch(self, url: str, offset: int, data: bytes) -> httpx.Response:
        headers = {
            **self.headers,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
        }
        return await self.client.patch(url, content=data, headers=headers)

    async def offset(self, url: str) -> int:
        answer = await self.client.head(url, headers=self.headers)
        assert answer.status_code == 200, answer.text
        return int(answer.headers["upload-offset"])


@pytest.fixture
async def two_web_hosts(
    make_settings, tmp_path: Path, start_app, database: str, s3_server: S3Server
) -> tuple[Any, TusHost, TusHost]:
    """Two apps on one PostgreSQL database and one bucket (5 MiB parts), one user."""
    bucket = f"hosts-{uuid.uuid4().hex[:12]}"
    tables = {
        "database": {"url": database},
        "storage": {"backend": "s3"},
        "plugins": {
            "storage_s3": s3_server.plugin_table(bucket=bucket, part_size=5 * MiB),
            # Configured, the same on both, as deploy/multi-host.md says.
            "auth_local": {"bcrypt_rounds": 4, "jwt_secret": "one secret for every host " * 2},
        },
    }
    first = await migrated(host_settings(make_settings, tmp_path, "web1", **tables))
    second = host_settings(make_settings, tmp_path, "web2", **tables)
    app, one = await start_app(first)
    _, two = await start_app(second)
    token = (await register(one, "tus@example.org"))["token"]
    return app, TusHost(one, token), TusHost(two, token)


async def test_a_tus_upload_whose_requests_alternate_between_hosts_arrives_whole(
    two_web_hosts,
) -> None:
    app, one, two = two_web_hosts
    data = os.urandom(12 * MiB + 321)
    created = await one.client.post(
        "/api/uploads/",
        headers={
            **one.headers,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": "filename " + base64.b64encode(b"clip.mp4").decode(),
        },
    )
    assert created.status_code == 201, created.text
    url = created.headers["location"]
    # Pieces that end inside parts and across them, each PATCH on the other host,
    # each HEAD on the host that did not take the bytes.
    cuts = [0, 3 * MiB, 3 * MiB + 1, 7 * MiB, 11 * MiB, len(data)]
    hosts = [one, two]
    for number, (start, end) in enumerate(itertools.pairwise(cuts)):
        sender, other = hosts[number % 2], hosts[(number + 1) % 2]
        answer = await sender.patch(url, start, data[start:end])
        assert answer.status_code == 204, answer.text
        assert int(answer.headers["upload-offset"]) == end
        assert await other.offset(url) == end
    video = await Video.get(id=url.rsplit("/", 1)[1])
    stored = b"".join([c async for c in app.ctx.backends.storage.read(video.source_key)])
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(data).hexdigest()
    assert video.checksum == hashlib.sha256(data).hexdigest()
    # Nothing is left behind: no tail in the bucket, no scratch folder on either host.
    assert await app.ctx.backends.storage.list(f"videos/{video.id}/upload-tail") == []
    for host in ("web1", "web2"):
        assert not (
            app.ctx.settings.data_dir.parent.parent / host / "data" / "uploads" / str(video.id)
        ).exists()


async def test_one_request_at_a_time_writes_to_an_upload_whichever_host_it_reaches(
    two_web_hosts,
) -> None:
    _, one, two = two_web_hosts
    data = os.urandom(6 * MiB)
    created = await one.client.post(
        "/api/uploads/",
        headers={
            **one.headers,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": "filename " + base64.b64encode(b"clip.mp4").decode(),
        },
    )
    url = created.headers["location"]
    release = asyncio.Event()

    async def slow_body():
        yield data[:MiB]
        await release.wait()
        yield data[MiB : 2 * MiB]

    headers = {
        **one.headers,
        "Content-Type": "application/offset+octet-stream",
        "Upload-Offset": "0",
    }
    first = asyncio.ensure_future(one.client.patch(url, content=slow_body(), headers=headers))
    upload_id = url.rsplit("/", 1)[1]
    for _ in range(100):
        if await SiteAlert.exists(name=f"tus:{upload_id}"):
            break
        await asyncio.sleep(0.05)
    # The other host sees the first request's lease.
    refused = await two.patch(url, 0, data[:MiB])
    assert refused.status_code == 409, refused.text
    release.set()
    assert (await first).status_code == 204
    assert await two.offset(url) == 2 * MiB
    assert (await two.patch(url, 2 * MiB, data[2 * MiB :])).status_code == 204
    assert await ResumableUpload.filter(id=upload_id, offset=len(data)).exists()


async def test_a_part_stored_mid_request_is_counted_with_the_hash_of_the_bytes_before_it(
    two_web_hosts,
) -> None:
    """What another host resumes from while a request still runs (or after its host
    died): the stored parts, and the SHA-256 of exactly their bytes."""
    _, one, _ = two_web_hosts
    data = os.urandom(8 * MiB)
    created = await one.client.post(
        "/api/uploads/",
        headers={
            **one.headers,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": "filename " + base64.b64encode(b"clip.mp4").decode(),
        },
    )
    url = created.headers["location"]
    upload_id = url.rsplit("/", 1)[1]
    release = asyncio.Event()

    async def body():
        for start in range(0, 7 * MiB, 256 * 1024):
            yield data[start : start + 256 * 1024]
        await release.wait()
        yield data[7 * MiB :]

    headers = {**one.headers, "Content-Type": "application/offset+octet-stream"}
    sending = asyncio.ensure_future(
        one.client.patch(url, content=body(), headers={**headers, "Upload-Offset": "0"})
    )
    for _ in range(200):
        row = await ResumableUpload.get(id=upload_id)
        if row.parts:
            break
        await asyncio.sleep(0.05)
    assert row.offset == 5 * MiB and len(row.parts) == 1, (row.offset, row.parts)
    assert (
        Sha256.resume(row.sha256_state).hexdigest() == hashlib.sha256(data[: 5 * MiB]).hexdigest()
    )
    release.set()
    assert (await sending).status_code == 204
    video = await Video.get(id=upload_id)
    assert video.checksum == hashlib.sha256(data).hexdigest()


async def test_a_lease_whose_holder_stopped_renewing_lapses(database, make_settings) -> None:
    settings = await migrated(make_settings(database={"url": database}))
    await db.open_database(settings)
    try:
        upload_id = uuid.uuid4()
        held = await UploadLease.take(upload_id)
        with pytest.raises(Exception, match="Another request"):
            await UploadLease.take(upload_id)
        # As if its process died on another host: no renewals, an old time.
        await held.release()
        await SiteAlert.create(
            name=f"tus:{upload_id}", last_sent_at=datetime.now(UTC) - timedelta(minutes=1)
        )
        again = await UploadLease.take(upload_id)
        await again.release()
        assert not await SiteAlert.exists(name=f"tus:{upload_id}")
    finally:
        await db.close_database()


# --- generated keys: a second host with its own refuses to start --------------------------


async def test_a_second_host_with_a_generated_key_of_its_own_refuses_to_start(
    database: str, make_settings, tmp_path: Path
) -> None:
    first = await migrated(host_settings(make_settings, tmp_path, "a", database={"url": database}))
    second = host_settings(make_settings, tmp_path, "b", database={"url": database})
    for settings in (first, second):
        generated_keys.load_or_create(settings.data_dir / "secrets" / "jwt.key", 64)
    # Host b shares a's two-factor key (copied, as the refusal would say).
    (second.data_dir / "secrets").mkdir(parents=True, exist_ok=True)
    await db.open_database(first)
    try:
        await generated_keys.check_shared(first)
        await generated_keys.check_shared(first)  # a restart of a is fine
        (second.data_dir / "secrets" / "two_factor.key").write_bytes(
            (first.data_dir / "secrets" / "two_factor.key").read_bytes()
        )
        with pytest.raises(ConfigError) as refused:
            await generated_keys.check_shared(second)
        message = str(refused.value)
        assert "[plugins.auth_local] jwt_secret" in message
        assert (
            generated_keys.load_or_create(second.data_dir / "secrets" / "jwt.key", 64)
            not in message
        )
        # The same key copied to b: both start.
        (second.data_dir / "secrets" / "jwt.key").write_bytes(
            (first.data_dir / "secrets" / "jwt.key").read_bytes()
        )
        generated_keys.load_or_create(second.data_dir / "secrets" / "jwt.key", 64)
        await generated_keys.check_shared(second)
        await generated_keys.check_shared(first)
    finally:
        await db.close_database()


async def test_a_host_may_rotate_its_own_generated_key(
    database: str, make_settings, tmp_path: Path
) -> None:
    settings = await migrated(
        host_settings(make_settings, tmp_path, "a", database={"url": database})
    )
    path = settings.data_dir / "secrets" / "jwt.key"
    await db.open_database(settings)
    try:
        generated_keys.load_or_create(path, 64)
        await generated_keys.check_shared(settings)
        path.unlink()
        generated_keys.load_or_create(path, 64)
        await generated_keys.check_shared(settings)
    finally:
        await db.close_database()


async def test_two_factor_keys_differing_between_hosts_say_to_copy_the_file(
    database: str, make_settings, tmp_path: Path
) -> None:
    first = await migrated(host_settings(make_settings, tmp_path, "a", database={"url": database}))
    second = host_settings(make_settings, tmp_path, "b", database={"url": database})
    await db.open_database(first)
    try:
        await generated_keys.check_shared(first)
        with pytest.raises(ConfigError, match=r"copy two_factor\.key from the first host"):
            await generated_keys.check_shared(second)
    finally:
        await db.close_database()


# --- sign-in attempts per address: counted by every host together ------------------------


async def test_attempts_from_one_address_are_counted_across_hosts(
    redis_server: RedisServer,
) -> None:
    key = f"203.0.113.{uuid.uuid4().int % 250}"
    hosts = [SharedAttemptWindow(redis_server.url, limit=3, window=60) for _ in range(2)]
    assert await hosts[0].take(key) == 0
    assert await hosts[1].take(key) == 0
    assert await hosts[0].take(key) == 0
    wait = await hosts[1].take(key)
    assert 1 <= wait <= 61
    # A success gives its attempt back, on whichever host.
    await hosts[0].give_back(key)
    assert await hosts[1].take(key) == 0


async def test_attempts_are_counted_in_the_worker_when_redis_does_not_answer() -> None:
    from services import free_port

    window = SharedAttemptWindow(f"redis://127.0.0.1:{free_port()}/0", limit=2, window=60)
    assert await window.take("a") == 0
    assert await window.take("a") == 0
    assert await window.take("a") > 0


def test_the_address_window_is_shared_when_the_queue_is_on_redis(make_settings) -> None:
    assert isinstance(address_window(make_settings()), AttemptWindow)
    shared = address_window(make_settings(queue={"backend": "redis"}))
    assert isinstance(shared, SharedAttemptWindow)


# --- housekeeping: once per install per round, not once per host --------------------------


async def test_one_consumer_of_the_install_takes_each_rounds_install_wide_duties(
    database: str, make_settings
) -> None:
    settings = await migrated(
        make_settings(database={"url": database}, queue={"reaper_interval_seconds": 60})
    )
    await db.open_database(settings)
    try:
        now = datetime.now(UTC)
        turns = await asyncio.gather(*(reaper.cluster_turn(settings, now) for _ in range(6)))
        assert sorted(turns) == [False] * 5 + [True]
        assert not await reaper.cluster_turn(settings, now + timedelta(seconds=30))
        assert await reaper.cluster_turn(settings, now + timedelta(seconds=60))
    finally:
        await db.close_database()


# --- migrations: one host migrates, the others wait -------------------------------------


async def test_two_hosts_migrating_one_database_at_once_take_turns(
    database: str, tmp_path: Path
) -> None:
    """Both wait while a migration (here: the test) holds the lock; then one migrates
    and the other finds nothing left to do."""
    holder = await asyncpg.connect(db.asyncpg_dsn(database))
    await holder.execute("SELECT pg_advisory_lock($1)", db.MIGRATION_LOCK)
    processes = []
    try:
        for name in ("a", "b"):
            folder = tmp_path / name
            folder.mkdir()
            config = folder / "config.toml"
            config.write_text(
                f'[paths]\ndata_dir = "{folder / "data"}"\n[database]\nurl = "{database}"\n'
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPSYNC_")}
            processes.append(
                await asyncio.create_subprocess_exec(
                    *(sys.executable, "-m", "clipsync", "--config", str(config), "migrate"),
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                    cwd=folder,
                    env=env,
                )
            )
        for process in processes:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            assert b"waiting" in line, line
        tables = await holder.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'aerich'"
        )
        assert tables == 0, "a migration ran while another held the lock"
    finally:
        await holder.close()  # the lock goes with the connection
    outputs = [await asyncio.wait_for(p.communicate(), 120) for p in processes]
    texts = [out.decode() for out, _ in outputs]
    assert [p.returncode for p in processes] == [0, 0], texts
    assert len([t for t in texts if "applied" in t]) == 1, texts
    assert len([t for t in texts if "up to date" in t]) == 1, texts


# --- clipsync doctor: what several hosts need, shared -------------------------------------


def test_what_a_host_keeps_to_itself_is_named(make_settings) -> None:
    local = kept_here(make_settings())
    assert any("[queue] backend" in line for line in local)
    assert any("[storage] backend" in line for line in local)
    shared = make_settings(
        queue={"backend": "redis"},
        storage={"backend": "s3"},
        analytics={"backend": "clickhouse"},
    )
    assert kept_here(shared) == []


async def test_doctor_fails_a_second_host_that_keeps_the_queue_and_media_to_itself(
    database: str, make_settings, tmp_path: Path
) -> None:
    first = await migrated(host_settings(make_settings, tmp_path, "a", database={"url": database}))
    second = host_settings(make_settings, tmp_path, "b", database={"url": database})
    assert await sharing_check(first) == (
        True,
        False,
        "one host so far; before adding another, share " + "; ".join(kept_here(first)),
    )
    for settings in (first, second):
        (settings.data_dir / "secrets").mkdir(parents=True, exist_ok=True)
        (settings.data_dir / "secrets" / "two_factor.key").write_text("shared\n")
        await db.open_database(settings)
        try:
            await generated_keys.check_shared(settings)
        finally:
            await db.close_database()
    ok, required, detail = await sharing_check(second)
    assert (ok, required) == (False, True), detail
    assert detail.startswith("2 hosts share this database")
    assert "[queue] backend" in detail


# --- deploy/: the compose layout hangs together ----------------------------------------


def test_the_compose_layout_builds_clipsync_from_the_containerfile_with_a_valid_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import yaml

    from clipsync.plugins import create_plugin_host
    from clipsync.settings import load_settings

    deploy = Path(__file__).resolve().parent.parent / "deploy"
    services = yaml.safe_load((deploy / "compose.yaml").read_text())["services"]
    hosts = [name for name, service in services.items() if "build" in service]
    assert {"migrate", "web1", "web2", "worker1", "worker2"} <= set(hosts)
    for name in hosts:
        build = services[name]["build"]
        assert (deploy / build["context"] / build["dockerfile"]).is_file()
    assert (
        "./nginx/multi-host.conf:/etc/nginx/conf.d/default.conf:ro"
        in (services["nginx"]["volumes"])
    )
    # Each ClipSync host has a data volume of its own.
    data = [v for name in hosts for v in services[name].get("volumes", []) if "/var/lib" in v]
    assert len(data) == len(set(data)) == 4, data
    for line in (deploy / "multi-host.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            monkeypatch.setenv(*line.split("=", 1))
    settings = load_settings(deploy / "multi-host.toml")
    assert kept_here(settings) == []
    create_plugin_host(settings)  # every plugin table is valid


async def test_a_host_that_generated_its_token_key_beside_one_that_set_it_is_refused(
    database: str, make_settings, tmp_path: Path
) -> None:
    """Host a sets `[plugins.auth_local] jwt_secret`; host b forgot and would generate
    its own: b refuses to start (each backend records the key it uses, set or made)."""
    from clipsync_auth_local import AuthLocalSettings, LocalAuth

    from clipsync.backends import BackendContext
    from clipsync.settings import Secret

    secret = "one token key for every host, long and random enough"
    first = await migrated(host_settings(make_settings, tmp_path, "a", database={"url": database}))
    second = host_settings(make_settings, tmp_path, "b", database={"url": database})
    configured = AuthLocalSettings(bcrypt_rounds=4, jwt_secret=Secret(secret))
    LocalAuth.create(BackendContext(first, configured))
    LocalAuth.create(BackendContext(second, AuthLocalSettings(bcrypt_rounds=4)))
    assert not (first.data_dir / "secrets" / "jwt.key").exists()
    assert (second.data_dir / "secrets" / "jwt.key").exists()
    # Both share the two-factor key (as a refusal of it would say): only jwt differs.
    (second.data_dir / "secrets").mkdir(parents=True, exist_ok=True)
    await db.open_database(first)
    try:
        await generated_keys.check_shared(first)
        (second.data_dir / "secrets" / "two_factor.key").write_bytes(
            (first.data_dir / "secrets" / "two_factor.key").read_bytes()
        )
        with pytest.raises(ConfigError) as refused:
            await generated_keys.check_shared(second)
        assert "jwt.key was generated on this host" in str(refused.value)
        assert "set [plugins.auth_local] jwt_secret to the same secret" in str(refused.value)
        # b sets the same secret: it starts.
        LocalAuth.create(BackendContext(second, configured))
        await generated_keys.check_shared(second)
    finally:
        await db.close_database()
