"""`clipsync backup` and `clipsync restore`: whole round trips, run as the command.

An install gets users, a transcoded video and watch events; it is backed up while
it runs, then restored into a new empty install, where the users sign in, the HLS
files are read back with equal checksums and the analytics are there. SQLite with
local storage and a folder target; PostgreSQL with S3 storage (moto, signatures
enforced) and an S3 target.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from clients import PASSWORD, bearer, register, upload_and_register
from clips import make_clip
from conftest import Lifespan
from services import PostgresServer, S3Server

from clipsync import db
from clipsync.analytics.events import WatchEvent
from clipsync.app import create_app
from clipsync.backup import database, open_install
from clipsync.backup.manifest import MANIFEST, blob_name
from clipsync.context import ClipSyncApp
from clipsync.services.transcoding import JobContext, run_transcode
from clipsync.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
JWT_SECRET = "not-for-backups-4f1d9c-0123456789abcdef"


def write_config(
    folder: Path,
    *,
    database_url: str = "",
    s3: dict[str, Any] | None = None,
) -> Path:
    """A config.toml for an install in `folder`, on local storage or the S3 table `s3`."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "# a test install",
        "[paths]",
        'data_dir = "data"',
        "[server]",
        'public_url = "http://clipsync.test"',
        "[database]",
        f"url = {json.dumps(database_url)}",
        "[storage]",
        f'backend = "{"s3" if s3 else "local"}"',
        # Every byte through ClipSync: moto (signatures enforced) cannot serve presigned URLs.
        'playback = "proxy"',
        "[transcoder]",
        "ladder = [{ height = 144, bitrate = 150 }, { height = 240, bitrate = 300 }]",
        "[plugins.auth_local]",
        "bcrypt_rounds = 4",
        f'jwt_secret = "{JWT_SECRET}"  # a secret a backup must not keep',
    ]
    if s3:
        lines.append("[plugins.storage_s3]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in s3.items()]
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def settings_of(config: Path) -> Settings:
    return load_settings(config, environ={})


def clipsync(config: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run the `clipsync` command as an operator would, in its own process."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CLIPSYNC_")}
    return subprocess.run(
        [sys.executable, "-m", "clipsync", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=300,
    )


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[ClipSyncApp, httpx.AsyncClient]]:
    app = create_app(settings, load_entry_points=False)
    async with Lifespan(app):
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 5000)),
            base_url="http://clipsync.test",
        )
        async with client:
            yield app, client


async def populate(app: ClipSyncApp, client: httpx.AsyncClient) -> str:
    """Two people, one transcoded video of the first, three watch events; the video id."""
    token = (await register(client, "owner@example.org"))["token"]
    await register(client, "viewer@example.org")
    response = await upload_and_register(client, token, make_clip("landscape"))
    assert response.status_code == 201, response.text
    video_id = response.json()["video"]["id"]
    ctx = JobContext(app.ctx.settings, app.ctx.plugins, app.ctx.backends)
    await run_transcode(ctx, video_id, final_attempt=True)
    now = datetime.now(UTC)
    events = [
        WatchEvent(uuid.uuid4().hex, now, kind, video_id, 1, "general", "s1", 0.0, 2.0)
        for kind in ("PLAY", "PAUSE", "PROGRESS")
    ]
    await app.ctx.backends.analytics.record(events)
    await app.ctx.backends.analytics.flush()
    return video_id


async def checksums(settings: Settings) -> dict[str, str]:
    """sha256 of every media object in the install's store, read through its backend."""
    storage = open_install(settings).sources.storage
    found = {}
    for key in sorted(k for k in await storage.list("videos")):
        hasher = hashlib.sha256()
        async for chunk in storage.read(key):
            hasher.update(chunk)
        found[key] = hasher.hexdigest()
    return found


def analytics_events(settings: Settings, video_id: str) -> int:
    conn = sqlite3.connect(settings.data_dir / "analytics.sqlite3")
    try:
        return conn.execute(
            "SELECT count(*) FROM events WHERE video_id = ?", (video_id,)
        ).fetchone()[0]
    finally:
        conn.close()


async def check_restored(settings: Settings, video_id: str, media: dict[str, str]) -> None:
    """Both people sign in, the video plays from the restored store, analytics are there."""
    assert await checksums(settings) == media
    assert any("/hls/" in key for key in media)
    assert analytics_events(settings, video_id) == 3
    async with running(settings) as (_, client):
        for email in ("owner@example.org", "viewer@example.org"):
            login = await client.post(
                "/api/auth/login", json={"email": email, "password": PASSWORD}
            )
            assert login.status_code == 200, login.text
        login = await client.post(
            "/api/auth/login", json={"email": "owner@example.org", "password": PASSWORD}
        )
        token = login.json()["token"]
        master = await client.get(f"/hls/{video_id}/master.m3u8", headers=bearer(token))
        assert master.status_code == 200 and "#EXTM3U" in master.text
        poster = await client.get(f"/hls/{video_id}/poster.jpg", headers=bearer(token))
        assert poster.status_code == 200
        assert hashlib.sha256(poster.content).hexdigest() in media.values()


def backups_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if (p / MANIFEST).is_file())


# --- SQLite, local storage, a folder target -------------------------------------------------


async def test_round_trip_on_sqlite_and_local_storage_through_a_folder(
    tmp_path: Path, migrated_sqlite: Path
) -> None:
    site = write_config(tmp_path / "site")
    settings = settings_of(site)
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    target = tmp_path / "backups"

    async with running(settings) as (app, client):
        video_id = await populate(app, client)
        # While the site runs: the online backup API gives a consistent copy.
        first = await asyncio.to_thread(clipsync, site, "backup", "--to", str(target), "--media")
        assert first.returncode == 0, first.stderr
    media = await checksums(settings)
    assert f"{len(media)} copied" in first.stdout
    assert "━" not in first.stderr  # no progress bar drawn into a pipe

    stored = {p: p.stat().st_mtime_ns for p in (target / "media").rglob("*")}
    again = await asyncio.to_thread(clipsync, site, "backup", "--to", str(target), "--media")
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in (target / "media").rglob("*")} == stored
    assert f"0 copied (0 bytes), {len(media)} already in the target" in again.stdout
    latest = backups_in(target)[-1]
    manifest = json.loads((latest / MANIFEST).read_text())
    assert {m["key"]: m["sha256"] for m in manifest["media"]} == media
    newest_migration = max(
        (p.name for p in (ROOT / "migrations" / "models").glob("*.py") if p.name[0].isdigit()),
        key=lambda name: int(name.split("_", 1)[0]),
    )
    assert manifest["dialect"] == "sqlite" and manifest["migration"] == newest_migration
    assert JWT_SECRET not in (latest / "config.toml").read_text()
    assert "# a test install" in (latest / "config.toml").read_text()

    secrets = tmp_path / "with-secrets"
    kept = await asyncio.to_thread(
        clipsync, site, "backup", "--to", str(secrets), "--include-secrets"
    )
    assert kept.returncode == 0, kept.stderr
    assert "not copied (pass --media to copy them)" in kept.stdout
    (whole,) = backups_in(secrets)
    assert JWT_SECRET in (whole / "config.toml").read_text()
    assert json.loads((whole / MANIFEST).read_text())["secrets_included"] is True

    refused = await asyncio.to_thread(clipsync, site, "restore", "--from", str(target), "--media")
    assert refused.returncode == 1 and "not empty" in refused.stderr
    assert "2 user(s) and 1 video(s)" in refused.stderr

    fresh = write_config(tmp_path / "fresh")
    restored = await asyncio.to_thread(clipsync, fresh, "restore", "--from", str(target), "--media")
    assert restored.returncode == 0, restored.stderr
    assert f"{len(media)} of {len(media)} verified" in restored.stdout
    await check_restored(settings_of(fresh), video_id, media)

    # A media object corrupted in the backup: the restore names it and fails.
    key = next(k for k in sorted(media) if k.endswith(".m4s"))
    blob = target / blob_name(media[key])
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    broken = write_config(tmp_path / "broken")
    failed = await asyncio.to_thread(clipsync, broken, "restore", "--from", str(latest), "--media")
    assert failed.returncode == 1
    assert key in failed.stderr and "corrupted" in failed.stderr
    # Nothing of the database was restored: the install is still empty.
    assert await database.people_and_videos(settings_of(broken).database_url) == (0, 0)

    # Without --media the store must already hold every object: here it holds none.
    bare = write_config(tmp_path / "bare")
    unverified = await asyncio.to_thread(clipsync, bare, "restore", "--from", str(latest))
    assert unverified.returncode == 1
    assert f"{key}: missing from the store" in unverified.stderr


# --- PostgreSQL, S3 storage, an S3 target ---------------------------------------------------


async def test_round_trip_on_postgres_and_s3_through_a_bucket(
    tmp_path: Path, postgres_server: PostgresServer, s3_server: S3Server
) -> None:
    run = uuid.uuid4().hex[:8]
    site = write_config(
        tmp_path / "site",
        database_url=postgres_server.create_database(f"site_{run}"),
        s3=s3_server.plugin_table(bucket=f"site-{run}", prefix="media"),
    )
    settings = settings_of(site)
    await db.migrate(settings)
    # The target's keys come from the environment, not from [plugins.storage_s3].
    env = {
        "CLIPSYNC_BACKUP_S3_ENDPOINT": s3_server.endpoint,
        "CLIPSYNC_BACKUP_S3_ACCESS_KEY": s3_server.access_key,
        "CLIPSYNC_BACKUP_S3_SECRET_KEY": s3_server.secret_key,
        "CLIPSYNC_BACKUP_S3_SECURE": "false",
    }
    target = f"s3://backups-{run}/nightly"

    async with running(settings) as (app, client):
        video_id = await populate(app, client)
    media = await checksums(settings)
    first = await asyncio.to_thread(clipsync, site, "backup", "--to", target, "--media", env=env)
    assert first.returncode == 0, first.stderr
    assert "database: postgres" in first.stdout and f"{len(media)} copied" in first.stdout
    again = await asyncio.to_thread(
        clipsync, site, "backup", "--to", target, "--media", "--keep", "1", env=env
    )
    assert again.returncode == 0, again.stderr
    assert f"0 copied (0 bytes), {len(media)} already in the target" in again.stdout
    # Retention in a bucket: the first backup goes, the media the second uses stay.
    assert "Kept the newest 1 backup(s); deleted 1." in again.stdout

    # A new install, migrated and empty, on a bucket of its own.
    fresh = write_config(
        tmp_path / "fresh",
        database_url=postgres_server.create_database(f"fresh_{run}"),
        s3=s3_server.plugin_table(bucket=f"fresh-{run}", prefix="media"),
    )
    await db.migrate(settings_of(fresh))
    restored = await asyncio.to_thread(
        clipsync, fresh, "restore", "--from", target, "--media", env=env
    )
    assert restored.returncode == 0, restored.stderr
    await check_restored(settings_of(fresh), video_id, media)

    refused = await asyncio.to_thread(
        clipsync, fresh, "restore", "--from", target, "--media", env=env
    )
    assert refused.returncode == 1 and "not empty" in refused.stderr
