"""`clipsync doctor`: every check on a healthy install, and a clear failure for each fault."""

from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path

import pytest

from clipsync.cli import main


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(tmp_path: Path, extra: str = "", *, migrated: Path | None = None) -> str:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    if migrated is not None:
        shutil.copyfile(migrated, data / "clipsync.sqlite3")
    path = tmp_path / "config.toml"
    path.write_text(
        '[paths]\ndata_dir = "data"\n[plugins.auth_local]\nbcrypt_rounds = 4\n'
        # No GPU, whatever this machine has: both devices point at nothing.
        "[plugins.transcoder_nvenc]\ngpu = 7\n"
        f'[plugins.transcoder_vaapi]\ndevice = "{tmp_path}/dri"\n{extra}'
    )
    return str(path)


def test_a_healthy_install_passes_every_check(
    tmp_path: Path, migrated_sqlite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, migrated=migrated_sqlite)
    assert main(["--config", config, "doctor"]) == 0
    out = capsys.readouterr().out
    for line in (
        "  ok    ffmpeg ",
        "  ok    ffprobe ",
        "  ok    data directory ",
        "  ok    database          sqlite: reachable, migrations up to date",
        "  ok    queue             sqlite: answers, 0 job(s) waiting",
        "  ok    storage           local from storage_local",
        "  ok    transcoder        cpu from transcoder_cpu: auto:",
        "  ok    auth ",
        "  --    transcoder nvenc  unavailable (priority 20): no /dev/nvidia7:",
        f"  --    transcoder vaapi  unavailable (priority 10): no {tmp_path}/dri:",
        "  ok    transcoder cpu    available (priority 0): libx264 test encode",
        "Everything this configuration needs is here.",
    ):
        assert line in out, f"{line!r} not in:\n{out}"
    # Each program with its version and where it was found.
    assert re.search(r"  ok    ffmpeg +ffmpeg \S+ \(/\S+ffmpeg\)", out), out
    assert re.search(r"  ok    ffprobe +ffprobe \S+ \(/\S+ffprobe\)", out), out


def test_json_report(tmp_path: Path, migrated_sqlite: Path, capsys) -> None:
    config = write_config(tmp_path, migrated=migrated_sqlite)
    assert main(["--config", config, "doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["transcoder nvenc"] == {
        "name": "transcoder nvenc",
        "ok": False,
        "detail": checks["transcoder nvenc"]["detail"],
        "required": False,
    }
    assert checks["database"]["ok"] and checks["queue"]["ok"]


def test_an_unmigrated_database_fails_and_says_to_migrate(tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path)
    assert main(["--config", config, "doctor"]) == 1
    out = capsys.readouterr().out
    assert "  FAIL  database " in out and "run `clipsync migrate`" in out
    assert "1 problem(s) to fix: database." in out


def test_an_unreachable_database_fails_with_the_reason_and_no_password(
    tmp_path: Path, migrated_sqlite: Path, capsys
) -> None:
    url = f"postgres://clipsync:hunter2secret@127.0.0.1:{closed_port()}/clipsync"
    config = write_config(tmp_path, f'[database]\nurl = "{url}"\n')
    assert main(["--config", config, "doctor"]) == 1
    out = capsys.readouterr().out
    assert "  FAIL  database          postgres: cannot be reached:" in out
    assert "hunter2secret" not in out


def test_a_queue_on_a_closed_redis_port_fails_with_the_reason(
    tmp_path: Path, migrated_sqlite: Path, capsys
) -> None:
    port = closed_port()
    config = write_config(
        tmp_path,
        f'[queue]\nbackend = "redis"\nredis_url = "redis://:qsecret@127.0.0.1:{port}/0"\n',
        migrated=migrated_sqlite,
    )
    assert main(["--config", config, "doctor"]) == 1
    out = capsys.readouterr().out
    assert "  FAIL  queue             redis: does not answer:" in out
    assert "Connection refused" in out and "qsecret" not in out
    assert "  ok    database " in out


def test_a_configured_gpu_that_is_missing_fails_unless_the_cpu_is_the_fallback(
    tmp_path: Path, migrated_sqlite: Path, capsys
) -> None:
    config = write_config(tmp_path, '[transcoder]\nbackend = "vaapi"\n', migrated=migrated_sqlite)
    assert main(["--config", config, "doctor"]) == 1
    out = capsys.readouterr().out
    assert (
        f"  FAIL  transcoder        {config}: [transcoder] backend = 'vaapi': unavailable: " in out
    )
    assert f"no {tmp_path}/dri: pass the device to the container (--device /dev/dri)" in out

    config = write_config(
        tmp_path, '[transcoder]\nbackend = "vaapi"\nfallback = "cpu"\n', migrated=migrated_sqlite
    )
    assert main(["--config", config, "doctor"]) == 0
    out = capsys.readouterr().out
    assert (
        "  ok    transcoder        cpu from transcoder_cpu: fallback: vaapi is unavailable" in out
    )


def test_a_missing_ffprobe_fails(tmp_path: Path, migrated_sqlite: Path, capsys) -> None:
    config = write_config(
        tmp_path, '[uploads]\nffprobe = "/nonexistent/ffprobe"\n', migrated=migrated_sqlite
    )
    assert main(["--config", config, "doctor"]) == 1
    assert "  FAIL  ffprobe           /nonexistent/ffprobe not found" in capsys.readouterr().out


async def test_hook_doctor_checks_are_reported_and_a_failing_one_is_named(tmp_path: Path) -> None:
    from clipsync import doctor, hookimpl
    from clipsync.plugins import create_plugin_host
    from clipsync.settings import parse_settings

    class Healthy:
        @hookimpl
        async def doctor_checks(self, plugins):
            return [doctor.Check("thing", True, f"{plugins.settings.web.site_name} sees it")]

    class Broken:
        @hookimpl
        def doctor_checks(self):
            raise ConnectionError("the daemon hung up")

    host = create_plugin_host(parse_settings({"paths": {"data_dir": str(tmp_path)}}, where="t"))
    host.pm.register(Healthy(), name="healthy")
    host.pm.register(Broken(), name="broken")
    checks = {c.name: c for c in await doctor.check_plugins(host)}
    assert checks["thing"].ok and checks["thing"].detail == "ClipSync sees it"
    assert checks["broken"].failed and "the daemon hung up" in checks["broken"].detail
