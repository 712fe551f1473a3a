"""The admin status page and `GET /api/admin/status`: who may see it, what it shows.

The configuration it shows is the one in force, read from a real `config.toml` with
secrets written in it, one behind a `$env` reference and one from a `CLIPSYNC_*`
variable: none of them may appear anywhere in the page or the JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from clients import PASSWORD, bearer

from clipsync.backup.config import MASK
from clipsync.jobs.liveness import Presence, new_consumer_id
from clipsync.models import Delivery, DeliveryStatus, Role, Video, VideoStatus
from clipsync.services import site_status
from clipsync.settings import load_settings, parse_settings

API = "/api/admin/status"
PAGE = "/admin/status"

# Each must be masked wherever it would show.
FILE_SECRET = "jwt-FILE-SECRET-4f1d2c-long-enough-for-hs256"
URL_PASSWORD = "queue-URL-PASSWORD-77ab"
ENV_SECRET = "metrics-ENV-SECRET-90ce"
VARIABLE_SECRET = "backup-VARIABLE-SECRET-1b2c"
SMTP_SECRET = "smtp-FILE-SECRET-e3e3"
SECRETS = (FILE_SECRET, URL_PASSWORD, ENV_SECRET, VARIABLE_SECRET, SMTP_SECRET)


def write_config(folder: Path) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f"""
[paths]
data_dir = "data"

[server]
public_url = "http://clipsync.test"

[queue]
redis_url = "redis://clipsync:{URL_PASSWORD}@127.0.0.1:1/0"

[metrics]
token = {{ "$env" = "STATUS_TEST_METRICS_TOKEN" }}

[plugins.auth_local]
bcrypt_rounds = 4
jwt_secret = "{FILE_SECRET}"

[plugins.notify_email]
username = "mailer"
password = "{SMTP_SECRET}"
"""
    )
    return path


@pytest.fixture
async def site(start_app, migrated_sqlite: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("STATUS_TEST_METRICS_TOKEN", ENV_SECRET)
    monkeypatch.setenv("CLIPSYNC_BACKUP_S3_SECRET_KEY", VARIABLE_SECRET)
    settings = load_settings(write_config(tmp_path))
    assert settings.metrics.token.reveal() == ENV_SECRET  # the secrets really are in force
    assert settings.backup.s3_secret_key.reveal() == VARIABLE_SECRET
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    people = {}
    for name, role in [("admin", Role.ADMIN), ("editor", Role.EDITOR), ("user", Role.USER)]:
        user = await app.ctx.accounts.create_user(f"{name}@example.org", PASSWORD, role=role)
        people[name] = (user, app.ctx.accounts.start_session(user).token)
    return app, client, people


async def test_only_admins_see_the_status(site) -> None:
    _app, client, people = site
    assert (await client.get(API)).status_code == 401
    for name in ("editor", "user"):
        headers = bearer(people[name][1])
        assert (await client.get(API, headers=headers)).status_code == 403
        page = await client.get(PAGE, headers=headers)
        assert page.status_code == 403
        assert "Server status" not in page.text
    assert (await client.get(API, headers=bearer(people["admin"][1]))).status_code == 200


async def test_the_nav_links_the_status_page_for_admins_only(site) -> None:
    _app, client, people = site
    admin_page = await client.get("/admin", headers=bearer(people["admin"][1]))
    assert 'href="/admin/status"' in admin_page.text
    editor_page = await client.get("/admin", headers=bearer(people["editor"][1]))
    assert editor_page.status_code == 200
    assert 'href="/admin/status"' not in editor_page.text


async def test_no_secret_appears_in_the_page_or_the_json(site) -> None:
    _app, client, people = site
    headers = bearer(people["admin"][1])
    answer = await client.get(API, headers=headers)
    page = await client.get(PAGE, headers=headers)
    assert page.status_code == 200
    for secret in SECRETS:
        assert secret not in answer.text
        assert secret not in page.text
    config = answer.json()["config"]
    assert config["sections"]["metrics"]["token"] == MASK
    assert config["sections"]["backup"]["s3_secret_key"] == MASK
    assert config["sections"]["queue"]["redis_url"] == MASK
    assert config["sections"]["database"]["url"] == ""  # no secret set: nothing to hide
    assert config["plugins"]["auth_local"]["jwt_secret"] == MASK
    assert config["plugins"]["auth_local"]["bcrypt_rounds"] == 4  # what is not secret shows
    assert config["plugins"]["notify_email"]["password"] == MASK
    assert f'data-key="metrics.token">{MASK}' in page.text.replace("<code>", "")


def test_secrets_no_loaded_plugin_describes_are_masked_by_name_and_in_urls() -> None:
    settings = parse_settings(
        {
            "web": {"site_name": "Harbour Videos"},
            "plugins": {"elsewhere": {"api_token": "tp-SECRET", "endpoint": "https://x.test"}},
        },
        where="test",
    )
    shown = site_status.effective_config(settings, {"elsewhere": None})
    assert shown["sections"]["web"]["site_name"] == "Harbour Videos"
    assert shown["plugins"]["elsewhere"] == {"api_token": MASK, "endpoint": "https://x.test"}
    assert site_status._plain("postgres://u:pw-123@db/clipsync", False) == (
        f"postgres://u:{MASK}@db/clipsync"
    )


async def test_a_running_job_and_failures_are_shown(site) -> None:
    app, client, people = site
    owner = people["user"][0]
    presence = Presence(app.ctx.jobs.liveness, new_consumer_id())
    presence.start()
    try:
        running = await Video.create(
            owner=owner,
            title="Harbour timelapse",
            category="general",
            status=VideoStatus.PROCESSING,
            progress=42,
            encoder="libx264",
            attempts=1,
            worker_lease=f"{presence.id}:1",
            heartbeat_at=datetime.now(UTC),
        )
        stalled = await Video.create(
            owner=owner,
            title="Left behind",
            category="general",
            status=VideoStatus.PROCESSING,
            progress=7,
            worker_lease="0123456789abcdef:1",
        )
        failed = await Video.create(
            owner=owner,
            title="Broken upload",
            category="general",
            status=VideoStatus.FAILED,
            error="The file ends too early: it was not uploaded whole.",
        )
        await Delivery.create(
            channel="webhook",
            type="video.ready",
            recipient="https://example.org/hook",
            status=DeliveryStatus.FAILED,
            attempts=5,
            last_error="connection refused",
            response_status=None,
        )
        await Delivery.create(
            channel="email", type="video.ready", recipient="a@example.org", attempts=1
        )
        headers = bearer(people["admin"][1])
        body = (await client.get(API, headers=headers)).json()
        page = (await client.get(PAGE, headers=headers)).text
    finally:
        presence.stop()

    jobs = {job["id"]: job for job in body["running"]}
    assert jobs[str(running.id)]["progress"] == 42
    assert jobs[str(running.id)]["state"] == "running"
    assert jobs[str(stalled.id)]["state"] == "stalled"
    assert body["jobs"]["consumers"] == 1
    assert [v["id"] for v in body["failures"]["videos"]] == [str(failed.id)]
    assert body["failures"]["videos"][0]["error"].startswith("The file ends too early")
    [delivery] = body["failures"]["deliveries"]
    assert (delivery["channel"], delivery["error"], delivery["attempts"]) == (
        "webhook",
        "connection refused",
        5,
    )
    assert 'value="42"' in page and "Harbour timelapse" in page
    assert "The file ends too early" in page and "connection refused" in page


async def test_storage_disk_version_and_uptime(site) -> None:
    _app, client, people = site
    owner = people["user"][0]
    await Video.create(
        owner=owner,
        title="Stored",
        category="general",
        status=VideoStatus.READY,
        source_key="videos/x/source.mp4",
        size=5 * 1024 * 1024,
    )
    body = (await client.get(API, headers=bearer(people["admin"][1]))).json()
    assert body["version"]
    assert body["storage"]["bytes"]["sources"] == 5 * 1024 * 1024
    assert body["storage"]["videos"]["READY"] == 1
    assert body["disk"]["ok"] is True
    assert {f["label"] for f in body["disk"]["folders"]} >= {"the data directory"}
    assert body["uptime"]["processSeconds"] >= 0
    # Under the test client no `clipsync serve` runs: its start is not known.
    assert body["uptime"]["serveSeconds"] is None
    assert body["queue"]["ok"] is True and body["queue"]["pending"] == 0


async def test_the_doctor_runs_only_when_asked_and_is_kept_a_minute(site) -> None:
    _app, client, people = site
    headers = bearer(people["admin"][1])
    assert (await client.get(API, headers=headers)).json()["doctor"] is None
    first = (await client.get(API, params={"checks": "run"}, headers=headers)).json()["doctor"]
    assert first["error"] is None, first
    checks = {check["name"]: check for check in first["checks"]}
    assert checks["database"]["ok"] is True
    assert checks["data directory"]["ok"] is True
    # The server's own database connection survived the doctor.
    assert (await client.get(API, headers=headers)).status_code == 200
    again = (await client.get(API, params={"checks": "run"}, headers=headers)).json()["doctor"]
    assert again["ranAt"] == first["ranAt"]
    page = (await client.get(PAGE, headers=headers)).text
    assert 'data-check="database" data-ok="true"' in page
    for secret in SECRETS:
        assert secret not in str(first)
