from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from services import free_port

from clipsync.cli import main


def run(*args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clipsync", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def config(tmp_path: Path, extra: str = "") -> str:
    path = tmp_path / "config.toml"
    path.write_text(f'[paths]\ndata_dir = "data"\n[plugins.auth_local]\nbcrypt_rounds = 4\n{extra}')
    return str(path)


def test_user_create_makes_an_admin_from_the_shell(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert run("--config", cfg, "migrate").returncode == 0
    create = ["--config", cfg, "user", "create", "--email", "Root@Example.org", "--role", "admin"]
    done = run(*create, "--password-stdin", stdin="correct horse battery\n")
    assert done.returncode == 0, done.stderr
    assert "created admin root@example.org" in done.stdout
    again = run(
        "--config",
        cfg,
        "user",
        "create",
        "--email",
        "root@example.org",
        "--password-stdin",
        stdin="another password\n",
    )
    assert again.returncode == 1
    assert "already exists" in again.stderr
    short = run(
        "--config",
        cfg,
        "user",
        "create",
        "--email",
        "x@example.org",
        "--password-stdin",
        stdin="short\n",
    )
    assert short.returncode == 1 and "at least 8" in short.stderr


def test_user_create_without_a_terminal_asks_for_password_stdin(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    run("--config", cfg, "migrate")
    done = run("--config", cfg, "user", "create", "--email", "a@example.org")
    assert done.returncode == 2 and "--password-stdin" in done.stderr


def test_a_bad_config_exits_with_the_key_named(tmp_path: Path) -> None:
    cfg = config(tmp_path, "[server]\nport = -1\n")
    done = run("--config", cfg, "plugins")
    assert done.returncode == 2
    assert cfg in done.stderr and "[server] port" in done.stderr
    assert "Traceback" not in done.stderr


def test_plugins_lists_plugins_versions_and_active_backends(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    done = run("--config", cfg, "plugins")
    assert done.returncode == 0, done.stderr
    assert "auth_local 0.1.0 (built-in)" in done.stdout
    assert "transcoder: cpu from transcoder_cpu (configured: auto; auto:" in done.stdout
    report = json.loads(run("--config", cfg, "plugins", "--json").stdout)
    assert {b["kind"] for b in report["backends"]} == {"storage", "transcoder", "auth", "analytics"}


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    done = run("--config", config(tmp_path), "serve")
    assert done.returncode == 1 and "clipsync migrate" in done.stderr


def test_config_toml_in_the_current_folder_is_used(tmp_path: Path, monkeypatch, capsys) -> None:
    config(tmp_path, '[[category]]\nname = "here"\nlabel = "Here"\ndefault = true\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLIPSYNC_CONFIG", raising=False)
    assert main(["plugins", "--json"]) == 0
    assert (tmp_path / "data" / "secrets" / "jwt.key").exists()


def test_serve_port_flag_is_the_port_of_the_links_it_builds(tmp_path: Path) -> None:
    """`clipsync serve --port` reaches every worker, so invite links carry that port."""
    cfg = config(tmp_path)
    assert run("--config", cfg, "migrate").returncode == 0
    create = ["--config", cfg, "user", "create", "--email", "root@example.org", "--role", "admin"]
    assert run(*create, "--password-stdin", stdin="correct horse battery\n").returncode == 0
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "clipsync", "--config", cfg, "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "clipsync serve did not answer"
                time.sleep(0.2)
            login = http.post(
                "/api/auth/login",
                json={"email": "root@example.org", "password": "correct horse battery"},
            )
            token = login.json()["token"]
            invite = http.post(
                "/api/admin/invites", json={}, headers={"Authorization": f"Bearer {token}"}
            )
        assert invite.status_code == 201, invite.text
        assert invite.json()["url"].startswith(f"http://127.0.0.1:{port}/register?invite=")
    finally:
        # As LiveServer.stop: Sanic can miss a SIGINT sent right after start-up.
        server.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
