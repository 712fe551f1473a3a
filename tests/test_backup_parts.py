"""The parts of backups: masked config, pg_dump's version, retention, the schedule, S3 keys."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from services import S3Server

from clipsync.backup import config as config_file
from clipsync.backup import database, schedule
from clipsync.backup.manifest import MANIFEST, Manifest, MediaObject, blob_name
from clipsync.backup.targets import LocalTarget, S3Target, open_target
from clipsync.models import SiteAlert
from clipsync.services.transcoding import JobContext
from clipsync.settings import parse_settings

CONFIG = """\
# my site
[database]
url = "postgres://clipsync:db-password-1@127.0.0.1/clipsync"  # the database

[queue]
redis_url = { "$env" = "REDIS_URL" }

[plugins]
disabled = ["someone_elses"]  # its table is kept, and read by no schema

[plugins.auth_local]
jwt_secret = 'jwt-secret-2'

[plugins.storage_s3]
endpoint = "127.0.0.1:9000"
access_key = "access-3"
secret_key = "secret-4"

[plugins.someone_elses]
api_token = "token-5"
colour = "blue"
"""


def test_a_config_keeps_everything_but_its_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    settings = parse_settings(tomllib.loads(CONFIG), where="test", source=path, environ={})
    from clipsync.plugins import create_plugin_host

    host = create_plugin_host(settings, load_entry_points=False)
    secrets = config_file.secret_settings(settings, dict(host.configs))
    masked = config_file.masked(CONFIG, secrets)
    for secret in ("db-password-1", "jwt-secret-2", "access-3", "secret-4", "token-5"):
        assert secret not in masked
    data = tomllib.loads(masked)
    assert data["plugins"]["storage_s3"]["secret_key"] == config_file.MASK
    # What is not a secret stays, and so do references, comments and lines.
    assert data["queue"]["redis_url"] == {"$env": "REDIS_URL"}
    assert data["plugins"]["storage_s3"]["endpoint"] == "127.0.0.1:9000"
    assert data["plugins"]["someone_elses"]["colour"] == "blue"
    assert masked.startswith("# my site\n") and len(masked.splitlines()) == len(CONFIG.splitlines())


def test_a_secret_that_cannot_be_masked_line_by_line_is_refused() -> None:
    text = '[plugins.auth_local]\njwt_secret = """\nline one\n"""\n'
    with pytest.raises(config_file.CannotMask):
        config_file.masked(text, {("plugins.auth_local", "jwt_secret")})


async def test_a_pg_dump_older_than_the_server_is_refused_with_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "pg_dump"
    old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 11.22'\n")
    old.chmod(old.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(database, "client_candidates", lambda program: [old])

    async def server_major(url: str) -> int:
        return 16

    monkeypatch.setattr(database, "server_major", server_major)
    with pytest.raises(database.BackupError) as caught:
        await database.dump_postgres("postgres://u@127.0.0.1/db", tmp_path / "dump")
    message = caught.value.message
    assert "PostgreSQL 16" in message and "postgresql-client-16" in message
    assert "pg_dump (PostgreSQL) 11.22" in message


def fake_backup(target: Path, name: str, contents: list[bytes]) -> list[str]:
    """A complete backup folder whose manifest lists `contents`; the blobs' names."""
    import hashlib

    media = []
    for n, data in enumerate(contents):
        sha = hashlib.sha256(data).hexdigest()
        media.append(MediaObject(f"videos/v/{n}", len(data), sha))
        (target / blob_name(sha)).parent.mkdir(parents=True, exist_ok=True)
        (target / blob_name(sha)).write_bytes(data)
    manifest = Manifest("1", "9_x", "sqlite", "now", media, media_copied=True)
    (target / name).mkdir(parents=True)
    (target / name / "database.sqlite3").write_bytes(b"db")
    (target / name / MANIFEST).write_bytes(manifest.to_json())
    return [blob_name(m.sha256) for m in media]


async def test_retention_keeps_the_newest_and_the_media_they_use(tmp_path: Path) -> None:
    oldest = fake_backup(tmp_path, "clipsync-20260101T000000-000000Z", [b"gone", b"shared"])
    middle = fake_backup(tmp_path, "clipsync-20260102T000000-000000Z", [b"shared", b"mid"])
    newest = fake_backup(tmp_path, "clipsync-20260103T000000-000000Z", [b"new"])
    # Cut short before the newest: no manifest, so it is deleted too.
    (tmp_path / "clipsync-20260102T120000-000000Z").mkdir()
    (tmp_path / "clipsync-20260102T120000-000000Z" / "database.sqlite3").write_bytes(b"x")

    assert await schedule.prune(LocalTarget(tmp_path), keep=2) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "media") == [
        "clipsync-20260102T000000-000000Z",
        "clipsync-20260103T000000-000000Z",
    ]
    kept = {
        p.relative_to(tmp_path).as_posix() for p in (tmp_path / "media").rglob("*") if p.is_file()
    }
    assert kept == set(middle) | set(newest)
    assert oldest[0] not in kept and oldest[1] in kept


@pytest.fixture
async def scheduled(start_app: Any, make_settings: Any, migrated_sqlite: Path, tmp_path: Path):
    settings = make_settings(
        backup={"schedule_hours": 6, "target": str(tmp_path / "nightly"), "keep": 1}
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite, settings.data_dir / "clipsync.sqlite3")
    app, _ = await start_app(settings)
    return JobContext(app.ctx.settings, app.ctx.plugins, app.ctx.backends)


async def test_one_scheduled_backup_a_period_and_retention(scheduled, tmp_path: Path) -> None:
    ctx = scheduled
    assert await schedule.start_if_due(ctx) is True
    first = schedule._running
    assert await schedule.start_if_due(ctx) is False  # running now
    assert await first is not None
    assert await schedule.start_if_due(ctx) is False  # done, and this period is claimed
    # The period is over: the next round makes a new backup and drops the older one.
    await SiteAlert.filter(name=schedule.CLAIM).update(
        last_sent_at=datetime.now(UTC) - timedelta(hours=7)
    )
    assert await schedule.start_if_due(ctx) is True
    second = await schedule._running
    assert second is not None and second.name != first.result().name
    folders = sorted(p.name for p in (tmp_path / "nightly").iterdir())
    assert folders == [second.name]
    manifest = json.loads((tmp_path / "nightly" / second.name / MANIFEST).read_text())
    assert manifest["files"]["database"] == "database.sqlite3"


async def test_a_failed_scheduled_backup_is_logged_and_told_to_the_admins(
    scheduled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    published = []

    async def publish(name: str, **data: Any) -> None:
        published.append((name, data))

    monkeypatch.setattr(schedule.events, "publish", publish)
    (tmp_path / "nightly").write_text("a file where the folder should be")
    assert await schedule.start_if_due(scheduled) is True
    assert await schedule._running is None
    assert [name for name, _ in published] == ["admin.backup_failed"]
    assert published[0][1]["detail"].startswith("The scheduled backup failed:")
    assert "scheduled backup failed" in caplog.text


def test_an_s3_target_takes_its_keys_from_backup_settings_then_the_storage_plugin(
    tmp_path: Path, s3_server: S3Server
) -> None:
    settings = parse_settings({}, where="test", environ={})
    storage_s3 = type(
        "S3Settings",
        (),
        {
            "endpoint": s3_server.endpoint,
            "access_key": _secret(s3_server.access_key),
            "secret_key": _secret(s3_server.secret_key),
            "region": "",
            "secure": False,
        },
    )
    target = open_target("s3://backups-keys/a/b/", settings, storage_s3)
    assert isinstance(target, S3Target) and target.prefix == "a/b/"
    assert target.where == "s3://backups-keys/a/b/"
    target.client.make_bucket("backups-keys")
    asyncio.run(target.put_bytes("x", b"1"))
    assert asyncio.run(target.size("x")) == 1
    env = {
        "CLIPSYNC_BACKUP_S3_ENDPOINT": s3_server.endpoint,
        "CLIPSYNC_BACKUP_S3_ACCESS_KEY": s3_server.denied_access_key,
        "CLIPSYNC_BACKUP_S3_SECRET_KEY": s3_server.denied_secret_key,
        "CLIPSYNC_BACKUP_S3_SECURE": "false",
    }
    denied = open_target("s3://backups-keys/a", parse_settings({}, where="t", environ=env), None)
    with pytest.raises(Exception, match=r"AccessDenied|Access Denied"):
        asyncio.run(denied.size("x"))
    local = open_target("relative", settings, None)
    assert isinstance(local, LocalTarget) and local.root == settings.data_dir / "relative"
    assert os.path.isabs(local.where)


def _secret(value: str) -> Any:
    from clipsync.settings import Secret

    return Secret(value)


def test_progress_bars_are_drawn_on_a_terminal_only() -> None:
    import io

    from rich.console import Console

    from clipsync.backup.progress import Bars

    for terminal in (True, False):
        out = io.StringIO()
        bars = Bars(force=terminal, console=Console(file=out, force_terminal=True, width=100))
        with bars.task("media", 2048) as advance:
            advance(1024)
        bars.close()
        assert ("media" in out.getvalue()) is terminal


def test_the_command_reports_a_failed_backup_in_a_line(
    tmp_path: Path, migrated_sqlite: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from clipsync.cli import main

    monkeypatch.delenv("CLIPSYNC_CONFIG", raising=False)
    (tmp_path / "config.toml").write_text('[paths]\ndata_dir = "data"\n')
    (tmp_path / "data").mkdir()
    shutil.copyfile(migrated_sqlite, tmp_path / "data" / "clipsync.sqlite3")
    (tmp_path / "taken").write_text("a file, not a folder")
    config = str(tmp_path / "config.toml")
    assert main(["--config", config, "backup", "--to", str(tmp_path / "taken")]) == 1
    assert "clipsync: the backup failed:" in capsys.readouterr().err
    missing = str(tmp_path / "nothing-here")
    assert main(["--config", config, "restore", "--from", missing]) == 1
    assert "no complete ClipSync backup there" in capsys.readouterr().err


def test_the_token_key_travels_only_with_the_secrets(
    tmp_path: Path, migrated_sqlite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clipsync.cli import main

    monkeypatch.delenv("CLIPSYNC_CONFIG", raising=False)
    configs = {}
    for site in ("old", "new", "newer"):
        (tmp_path / site).mkdir()
        (tmp_path / site / "config.toml").write_text('[paths]\ndata_dir = "data"\n')
        configs[site] = str(tmp_path / site / "config.toml")
    data = tmp_path / "old" / "data"
    (data / "secrets").mkdir(parents=True)
    shutil.copyfile(migrated_sqlite, data / "clipsync.sqlite3")
    (data / "secrets" / "jwt.key").write_text("the-signing-key\n")
    (data / "secrets" / "two_factor.key").write_text("the-sealing-key\n")

    plain, whole = str(tmp_path / "plain"), str(tmp_path / "whole")
    assert main(["--config", configs["old"], "backup", "--to", plain]) == 0
    assert main(["--config", configs["old"], "backup", "--to", whole, "--include-secrets"]) == 0
    assert main(["--config", configs["new"], "restore", "--from", plain]) == 0
    assert not (tmp_path / "new" / "data" / "secrets").exists()
    assert main(["--config", configs["newer"], "restore", "--from", whole]) == 0
    # Every key the server generated travels: the token key, the two-factor key...
    for name, text in (("jwt.key", "the-signing-key\n"), ("two_factor.key", "the-sealing-key\n")):
        key = tmp_path / "newer" / "data" / "secrets" / name
        assert key.read_text() == text
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
