"""Email through a real job consumer while the SMTP server is down, then back.

`clipsync worker` runs as its own process on the same config (the queue is the
SQLite one in the data directory); the app in this process publishes the events and
queues the jobs, as `clipsync serve` does. The mails must wait for the server, be
retried by the consumer with back-off, and arrive once each when it is back.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clients import PASSWORD, bearer
from smtp import SmtpServer

from clipsync import events
from clipsync.models import Delivery, DeliveryStatus, Notification, Role, Video, VideoStatus
from clipsync.settings import load_settings

STARTED = "job consumer started"


def toml(tables: dict[str, dict[str, Any]]) -> str:
    """A TOML file of flat tables (strings, numbers, booleans)."""
    lines = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        for key, value in table.items():
            text = ("true" if value else "false") if isinstance(value, bool) else json.dumps(value)
            lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"


@contextmanager
def consumer(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`clipsync worker` on `config`, stopped (SIGINT, as systemd does) at the end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPSYNC_")}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "clipsync", "--config", str(config), "worker"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=config.parent, env={**env, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while STARTED not in log.read_text(errors="replace"):
            assert process.poll() is None, f"the worker exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the worker did not start:\n{log.read_text()}"
            time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


async def until(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.1)


async def test_smtp_down_then_up_is_retried_by_the_consumer_and_delivered_once(
    tmp_path: Path, migrated_sqlite: Path, start_app
) -> None:
    smtp_server = SmtpServer(tmp_path / "smtp")  # made, not started: the port is closed
    data = tmp_path / "data"
    data.mkdir()
    (data / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    config = tmp_path / "config.toml"
    # Attempts 0.5, 1, 2, 4, 8 s apart: about 15 s in all.
    notify = {"digest_minutes": 0, "delivery_attempts": 6, "retry_delay_seconds": 0.5}
    config.write_text(
        toml(
            {
                "server": {"public_url": "http://clipsync.test"},
                "paths": {"data_dir": str(data)},
                "queue": {"heartbeat_seconds": 1, "reaper_interval_seconds": 1},
                "notifications": notify,
                "plugins.auth_local": {"bcrypt_rounds": 4},
                "plugins.notify_email": smtp_server.config(),
            }
        )
    )
    app, client = await start_app(load_settings(config, environ={}))
    accounts = app.ctx.accounts
    uploader = await accounts.create_user("uploader@example.org", PASSWORD, role=Role.USER)
    editor = await accounts.create_user("editor@example.org", PASSWORD, role=Role.EDITOR)

    with consumer(config, tmp_path / "worker.log"):
        video = await Video.create(
            owner=uploader, title="Harbour tour", category=uploader.category,
            status=VideoStatus.READY,
        )  # fmt: skip
        await events.publish_status(video)
        approved = await client.post(
            f"/api/admin/videos/{video.id}/approve",
            headers=bearer(accounts.start_session(editor).token),
        )
        assert approved.status_code == 200, approved.text

        async def retried() -> Delivery | None:
            row = await Delivery.get_or_none(channel="email", type="video.approved")
            return row if row is not None and row.attempts >= 2 else None

        row = await until("the consumer to try twice", retried)
        assert row.status == DeliveryStatus.PENDING
        assert "Connect call failed" in row.last_error or "refused" in row.last_error
        assert smtp_server.mails() == []

        smtp_server.start()
        try:

            async def all_sent() -> bool:
                rows = await Delivery.filter(channel="email")
                return len(rows) == 3 and all(r.status == DeliveryStatus.SENT for r in rows)

            await until("every mail to be sent", all_sent)
            await asyncio.sleep(3)  # time for a duplicate to show, if there were one
            subjects = sorted((m.rcpt_tos, str(m.message["Subject"])) for m in smtp_server.mails())
            assert subjects == [
                (("editor@example.org",), "“Harbour tour” awaits a decision"),
                (("uploader@example.org",), "“Harbour tour” is ready"),
                (("uploader@example.org",), "“Harbour tour” was approved"),
            ]
            assert all(m.tls for m in smtp_server.mails())
        finally:
            smtp_server.stop()
    await row.refresh_from_db()
    assert row.status == DeliveryStatus.SENT and row.attempts >= 3 and row.last_error == ""
    # The in-app items were never touched by the mail's troubles: one each.
    assert await Notification.filter(user_id=uploader.id, type="video.approved").count() == 1
    assert await Notification.filter(user_id=uploader.id, type="video.ready").count() == 1
