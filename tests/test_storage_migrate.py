"""`clipsync storage migrate`: copy every key to another store, verify, then switch.

Against real local storage and a real S3 endpoint (moto's server, signatures
enforced); the bucket is read only through the minio SDK.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from clipsync_storage_local import LocalStorage
from minio import Minio
from services import S3Server

from clipsync.cli import main
from clipsync.config_file import set_string, write_setting
from clipsync.errors import ConfigError
from clipsync.services import storage_migration as migration
from clipsync.services.storage_migration import Plan, Store, copy_all
from clipsync.settings import load_settings

PREFIX = "clipsync/"

CONFIG = """\
# ClipSync test install
[paths]
data_dir = "data"   # next to this file

[queue]
backend = "sqlite"  # not the storage backend: must stay as it is

[storage]
# Where media files live.
backend = "{backend}"   # local or s3

[plugins.auth_local]
bcrypt_rounds = 4

[plugins.storage_s3]
# the test server
endpoint = "{endpoint}"
bucket = "{bucket}"
region = "{region}"
access_key = "{access_key}"
secret_key = "{secret_key}"
secure = false
prefix = "{prefix}"
"""


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_backend_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(migration.BACKEND_VARIABLE, raising=False)
    monkeypatch.delenv("CLIPSYNC_CONFIG", raising=False)


def write_config(tmp_path: Path, server: S3Server, backend: str = "local", **values: str) -> Path:
    fields = {
        "backend": backend,
        "endpoint": server.endpoint,
        "bucket": f"test-{uuid.uuid4().hex[:16]}",
        "region": server.region,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "prefix": PREFIX,
    }
    fields.update(values)
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(**fields))
    return path


def bucket_of(config: Path) -> str:
    return load_settings(config, environ={}).plugin_tables["storage_s3"]["bucket"]


def minio(server: S3Server) -> Minio:
    return Minio(
        server.endpoint,
        access_key=server.access_key,
        secret_key=server.secret_key,
        secure=False,
        region=server.region,
    )


def seed(root: Path) -> dict[str, bytes]:
    """Two videos' worth of files in a local store; one spans several read chunks."""
    files: dict[str, bytes] = {}
    for n in range(2):
        video = f"videos/{uuid.uuid4()}"
        files[f"{video}/source.mp4"] = os.urandom(2_500_000 if n == 0 else 40_000)
        files[f"{video}/hls/master.m3u8"] = b"#EXTM3U\n#EXT-X-VERSION:7\n"
        files[f"{video}/hls/720p/init.mp4"] = os.urandom(1_000)
        files[f"{video}/hls/720p/seg_00001.m4s"] = os.urandom(30_000)
        files[f"{video}/hls/poster.jpg"] = os.urandom(5_000)
    files[f"videos/{uuid.uuid4()}/source.webm"] = b""  # an empty file is copied too
    for key, data in files.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
    return files


def bucket_contents(server: S3Server, bucket: str) -> dict[str, bytes]:
    client = minio(server)
    contents = {}
    for obj in client.list_objects(bucket, prefix=PREFIX, recursive=True):
        response = client.get_object(bucket, obj.object_name)
        try:
            contents[obj.object_name[len(PREFIX) :]] = response.read()
        finally:
            response.close()
            response.release_conn()
    return contents


def local_contents(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def migrate(config: Path, *args: str) -> int:
    return main(["--config", str(config), "storage", "migrate", *args])


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    old, new = before.splitlines(), after.splitlines()
    assert len(old) == len(new)
    return [(a, b) for a, b in zip(old, new, strict=True) if a != b]


class Flaky:
    """A storage backend that delegates, but breaks or counts `put_stream`."""

    def __init__(self, inner: Any, fail_key: str = "", interrupt_key: str = "") -> None:
        self.inner = inner
        self.fail_key = fail_key
        self.interrupt_key = interrupt_key
        self.puts: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], content_type: Any) -> int:
        self.puts.append(key)
        if key == self.fail_key:
            raise OSError(28, "No space left on device")
        if key != self.interrupt_key:
            return await self.inner.put_stream(key, chunks, content_type)

        async def cut_short() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                yield chunk
                raise KeyboardInterrupt  # Ctrl-C with one chunk of this key sent

        return await self.inner.put_stream(key, cut_short(), content_type)


@pytest.fixture
def wrap_target(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make the CLI's target store a `Flaky` around the real one; returns a setter."""
    made: list[Flaky] = []
    real = migration.plan_migration

    def install(**kwargs: str) -> list[Flaky]:
        def plan(*args: Any, **kw: Any) -> Plan:
            planned = real(*args, **kw)
            flaky = Flaky(planned.target.backend, **kwargs)
            made.append(flaky)
            return replace(planned, target=replace(planned.target, backend=flaky))

        monkeypatch.setattr(migration, "plan_migration", plan)
        return made

    return install


# --- moving both ways ----------------------------------------------------------------------------


def test_local_to_s3_and_back_is_byte_identical_and_switches_the_config(
    tmp_path: Path, s3_server: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, s3_server)
    original = config.read_text()
    media = tmp_path / "data" / "media"
    files = seed(media)

    assert migrate(config, "--to", "s3", "--concurrency", "3") == 0
    out = capsys.readouterr().out
    assert f"{len(files)} files" in out and f"{len(files)} copied and verified" in out
    assert "left in place" in out and "--to local" in out
    assert bucket_contents(s3_server, bucket_of(config)) == files
    # Only the backend line changed; its comment and every other line are kept.
    assert changed_lines(original, config.read_text()) == [
        ('backend = "local"   # local or s3', 'backend = "s3"   # local or s3')
    ]
    playlist = next(k for k in files if k.endswith(".m3u8"))
    stat = minio(s3_server).stat_object(bucket_of(config), PREFIX + playlist)
    assert stat.content_type == "application/vnd.apple.mpegurl"

    media.rename(tmp_path / "old-media")
    assert migrate(config, "--to", "local") == 0
    assert local_contents(media) == files
    assert changed_lines(original, config.read_text()) == []


def test_the_real_command_moves_and_moves_back_skipping_what_is_there(
    tmp_path: Path, s3_server: S3Server
) -> None:
    config = write_config(tmp_path, s3_server)
    files = seed(tmp_path / "data" / "media")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPSYNC_")}
        return subprocess.run(
            [sys.executable, "-m", "clipsync", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=120,
        )

    there = run("storage", "migrate", "--to", "s3")  # ./config.toml
    assert there.returncode == 0, there.stderr
    assert 'Switched: [storage] backend = "s3"' in there.stdout
    assert load_settings(config, environ={}).storage.backend == "s3"

    # `--config` also works after the command; the local files are still there.
    back = run("storage", "migrate", "--config", str(config), "--to", "local")
    assert back.returncode == 0, back.stderr
    assert f"0 copied and verified (0 bytes), {len(files)} already there" in back.stdout
    assert load_settings(config, environ={}).storage.backend == "local"

    again = run("--config", str(config), "storage", "migrate", "--to", "local")
    assert again.returncode == 1
    assert "already the active storage backend" in again.stderr


# --- interruptions and re-runs ------------------------------------------------------------------


def test_a_failing_copy_switches_nothing_and_a_rerun_copies_only_that_file(
    tmp_path: Path, s3_server: S3Server, wrap_target: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, s3_server)
    original = config.read_text()
    files = seed(tmp_path / "data" / "media")
    broken = sorted(files)[3]

    wrap_target(fail_key=broken)
    assert migrate(config, "--to", "s3", "--concurrency", "2") == 1
    captured = capsys.readouterr()
    assert f"failed {broken}: OSError: [Errno 28] No space left on device" in captured.out
    assert "nothing was switched" in captured.err
    assert config.read_text() == original
    assert set(bucket_contents(s3_server, bucket_of(config))) == set(files) - {broken}

    made = wrap_target()
    assert migrate(config, "--to", "s3") == 0
    assert made[-1].puts == [broken]
    assert bucket_contents(s3_server, bucket_of(config)) == files
    assert load_settings(config, environ={}).storage.backend == "s3"


def test_ctrl_c_midway_leaves_no_half_object_and_the_config_unchanged(
    tmp_path: Path, s3_server: S3Server, wrap_target: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, s3_server)
    original = config.read_text()
    files = seed(tmp_path / "data" / "media")
    big = max(files, key=lambda k: len(files[k]))  # several chunks: cut after the first

    wrap_target(interrupt_key=big)
    assert migrate(config, "--to", "s3", "--concurrency", "1") == 130
    assert "Interrupted: nothing was switched" in capsys.readouterr().err
    assert config.read_text() == original
    assert big not in bucket_contents(s3_server, bucket_of(config))

    made = wrap_target()
    assert migrate(config, "--to", "s3") == 0
    assert big in made[-1].puts
    assert bucket_contents(s3_server, bucket_of(config)) == files


def test_a_rerun_keeps_good_copies_and_replaces_corrupt_ones(
    tmp_path: Path, s3_server: S3Server
) -> None:
    config = write_config(tmp_path, s3_server)
    settings = load_settings(config, environ={})
    files = seed(tmp_path / "data" / "media")
    plan = migration.plan_migration(settings, "s3", environ={})  # creates the bucket
    keys = sorted(k for k in files if files[k])
    good, shorter, same_size = keys[0], keys[1], keys[2]
    client, bucket = minio(s3_server), bucket_of(config)
    wrong = {
        good: files[good],
        shorter: files[shorter][:-1],
        same_size: bytes(len(files[same_size])),  # same size, other bytes
    }
    for key, data in wrong.items():
        client.put_object(bucket, PREFIX + key, io.BytesIO(data), len(data))

    flaky = Flaky(plan.target.backend)
    plan = replace(plan, target=replace(plan.target, backend=flaky))
    tally = asyncio.run(copy_all(plan, concurrency=3))
    assert tally.ok and (tally.copied, tally.present) == (len(files) - 1, 1)
    assert good not in flaky.puts and {shorter, same_size} <= set(flaky.puts)
    assert bucket_contents(s3_server, bucket) == files

    # --size-only trusts the size: a same-size object is not read again.
    client.put_object(
        bucket, PREFIX + same_size, io.BytesIO(wrong[same_size]), len(files[same_size])
    )
    quick = asyncio.run(copy_all(plan, size_only=True))
    assert quick.ok and quick.present == len(files)


def test_a_copy_that_reads_back_differently_fails_verification(tmp_path: Path) -> None:
    class Lossy(LocalStorage):
        async def read(self, key: str, start: int = 0, end: int | None = None) -> Any:
            async for chunk in super().read(key, start, end):
                yield chunk[:-1] if chunk else chunk

    source, target = tmp_path / "a", tmp_path / "b"
    files = seed(source)
    plan = Plan(
        Store("local", "", LocalStorage(source)), Store("lossy", "", Lossy(target)), tmp_path
    )
    tally = asyncio.run(copy_all(plan))
    assert not tally.ok
    big = max(files, key=lambda k: len(files[k]))
    failures = {f.key: f.reason for f in tally.failures}
    assert set(failures) == {k for k in files if files[k]}  # the empty file reads back fine
    # 2,500,000 bytes come back in three chunks, each one byte short.
    assert failures[big] == "verification: the target holds 2499997 bytes, not 2500000"


# --- refusals and the dry run -------------------------------------------------------------------


def test_a_backend_set_by_the_environment_is_refused_unless_only_copying(
    tmp_path: Path,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(tmp_path, s3_server)
    original = config.read_text()
    files = seed(tmp_path / "data" / "media")
    monkeypatch.setenv(migration.BACKEND_VARIABLE, "local")
    assert migrate(config, "--to", "s3") == 1
    assert "CLIPSYNC_STORAGE_BACKEND=local chooses the storage backend" in capsys.readouterr().err
    assert config.read_text() == original
    assert not minio(s3_server).bucket_exists(bucket_of(config))  # refused before any I/O

    # Copying without switching is allowed: the operator changes the variable.
    assert migrate(config, "--to", "s3", "--copy-only") == 0
    assert bucket_contents(s3_server, bucket_of(config)) == files
    assert config.read_text() == original


def test_an_unusable_target_is_refused_with_its_probe_reason(
    tmp_path: Path, s3_server: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, s3_server, access_key="", secret_key="")
    original = config.read_text()
    seed(tmp_path / "data" / "media")
    assert migrate(config, "--to", "s3") == 1
    err = capsys.readouterr().err
    assert "storage backend 's3' cannot work: [plugins.storage_s3] needs access_key" in err
    assert config.read_text() == original


def test_unknown_and_active_backends_are_refused(
    tmp_path: Path, s3_server: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, s3_server)
    assert migrate(config, "--to", "floppy") == 1
    assert "no storage backend 'floppy' (available: local, s3)" in capsys.readouterr().err
    assert migrate(config, "--to", "local") == 1
    assert "'local' is already the active storage backend" in capsys.readouterr().err


def test_a_dry_run_copies_and_changes_nothing(
    tmp_path: Path, s3_server: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, s3_server)
    original = config.read_text()
    files = seed(tmp_path / "data" / "media")
    assert migrate(config, "--to", "s3", "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"Dry run: {len(files)} files" in out and f"{len(files)} to copy" in out
    assert config.read_text() == original
    assert bucket_contents(s3_server, bucket_of(config)) == {}


def test_copy_only_copies_everything_but_does_not_switch(
    tmp_path: Path, s3_server: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, s3_server)
    original = config.read_text()
    files = seed(tmp_path / "data" / "media")
    assert migrate(config, "--to", "s3", "--copy-only") == 0
    assert "Copied without switching" in capsys.readouterr().out
    assert config.read_text() == original
    assert bucket_contents(s3_server, bucket_of(config)) == files


# --- the config file edit -----------------------------------------------------------------------


def test_set_string_changes_only_the_storage_backend_line() -> None:
    text = (
        "# top\n[queue]\nbackend = 'sqlite'\n\n[storage] # media\n"
        "  # the store\n  backend   =   'local'  # see docs\n\n"
        '[plugins.storage_s3]\nbackend = "x"\n'
    )
    new = set_string(text, "storage", "backend", "s3")
    assert new == text.replace("  backend   =   'local'", '  backend   =   "s3"')


def test_set_string_keeps_crlf_and_handles_quoted_keys_and_no_final_newline() -> None:
    text = '[storage]\r\n"backend" = "local"\r\n[web]\r\ntheme = "default"'
    assert set_string(text, "storage", "backend", "s3") == text.replace('"local"', '"s3"')
    assert set_string("[storage]", "storage", "backend", "s3") == '[storage]\nbackend = "s3"\n'


def test_set_string_adds_the_key_or_the_table_when_missing() -> None:
    text = "# c\n[storage]\n# nothing yet\n[web]\ntheme = 'x'\n"
    assert set_string(text, "storage", "backend", "s3") == text.replace(
        "[storage]\n", '[storage]\nbackend = "s3"\n'
    )
    text = "[paths]\ndata_dir = 'data'  # here\n"
    assert set_string(text, "storage", "backend", "s3") == text + '\n[storage]\nbackend = "s3"\n'
    assert set_string("", "storage", "backend", "s3") == '[storage]\nbackend = "s3"\n'


@pytest.mark.parametrize(
    "text",
    [
        'storage = { backend = "local" }\n',
        'storage.backend = "local"\n',
        '[storage]\nbackend = """local"""\n',
        "[storage\n",
    ],
)
def test_set_string_refuses_what_it_cannot_edit_safely(text: str) -> None:
    with pytest.raises(ConfigError):
        set_string(text, "storage", "backend", "s3")


def test_write_setting_replaces_the_file_and_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[storage]\nbackend = "local"  # here\n')
    path.chmod(0o640)
    assert write_setting(path, "storage", "backend", "s3") == "local"
    assert path.read_text() == '[storage]\nbackend = "s3"  # here\n'
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]
