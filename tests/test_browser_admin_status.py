"""The admin status page in Chromium, against `clipsync serve`: an admin finds it in
the console's tabs and sees the server's uptime, a failed video with its error and
the configuration with its secrets masked, then runs the doctor's checks; an editor
is refused it.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from browser import LiveServer, Watcher, reported, set_up_admin, sign_in
from clients import bearer
from playwright.sync_api import Browser, Page, expect
from test_browser_moderation import PASSWORD, log_in, new_page, register

from clipsync.backup.config import MASK

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
FILE_SECRET = "smtp-FILE-SECRET-in-the-browser-test"
ENV_SECRET = "metrics-ENV-SECRET-in-the-browser-test"
ERROR = "The file ends too early: it was not uploaded whole."


@pytest.fixture
def live_server_toml(monkeypatch: pytest.MonkeyPatch) -> str:
    # The server inherits this environment: the token comes from a `$env` reference.
    monkeypatch.setenv("STATUS_BROWSER_METRICS_TOKEN", ENV_SECRET)
    return (
        '[metrics]\ntoken = { "$env" = "STATUS_BROWSER_METRICS_TOKEN" }\n\n'
        f'[plugins.notify_email]\nusername = "mailer"\npassword = "{FILE_SECRET}"\n'
    )


def add_failed_video(live_server: LiveServer, title: str) -> str:
    """A video that failed to process, written as the job would leave it."""
    video_id = str(uuid.uuid4())
    now = datetime.now(UTC).isoformat(sep=" ")
    with sqlite3.connect(live_server.data_dir / "clipsync.sqlite3") as db:
        owner = db.execute("SELECT id FROM users ORDER BY id LIMIT 1").fetchone()[0]
        db.execute(
            "INSERT INTO videos (id, title, original_filename, description, category, status,"
            " progress, attempts, error, created_at, updated_at, owner_id)"
            " VALUES (?, ?, 'clip.mp4', '', 'general', 'FAILED', 0, 3, ?, ?, ?, ?)",
            (video_id, title, ERROR, now, now, owner),
        )
    return video_id


def test_an_admin_reads_the_status_page_and_an_editor_is_refused(
    page: Page, browser: Browser, live_server: LiveServer
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        video_id = add_failed_video(live_server, "Broken harbour tour")

        page.goto("/admin")
        page.get_by_role("navigation", name="Moderation console").get_by_role(
            "link", name="Status"
        ).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Server status")
        # Served by `clipsync serve`: how long it has run is known.
        expect(page.locator('[data-role="serve-uptime"]')).not_to_contain_text("not known")
        expect(page.locator('[data-role="process-uptime"]')).to_contain_text("since")

        row = page.locator(f'#status-failed-videos tr[data-video-id="{video_id}"]')
        expect(row).to_contain_text("Broken harbour tour")
        expect(row.locator('[data-role="error"]')).to_have_text(ERROR)

        page.locator('details[data-section="metrics"] summary').click()
        expect(page.locator('[data-key="metrics.token"]')).to_have_text(MASK)
        page.locator('details[data-section="plugins.notify_email"] summary').click()
        expect(page.locator('[data-key="plugins.notify_email.password"]')).to_have_text(MASK)
        content = page.content()
        assert FILE_SECRET not in content and ENV_SECRET not in content

        # The checks run only when asked.
        expect(page.locator("#status-checks-none")).to_be_visible()
        page.get_by_role("button", name="Run checks").click()
        database = page.locator('#status-checks tr[data-check="database"]')
        expect(database).to_have_attribute("data-ok", "true")
        expect(database).to_contain_text("migrations up to date")
        assert FILE_SECRET not in page.content()

        with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
            admin_token = log_in(http, ADMIN_EMAIL)
            editor = register(http, "editor@example.org", "general")
            promoted = http.patch(
                f"/api/admin/users/{editor['user']['id']}",
                json={"role": "editor"},
                headers=bearer(admin_token),
            )
            assert promoted.status_code == 200, promoted.text
            status = http.get("/api/admin/status", headers=bearer(admin_token))
            assert status.status_code == 200
            assert status.json()["uptime"]["serveSeconds"] is not None

        editor_page = new_page(browser, live_server, watcher)
        sign_in(editor_page, live_server, "editor@example.org", PASSWORD)
        editor_page.goto("/admin")
        nav = editor_page.get_by_role("navigation", name="Moderation console")
        expect(nav.get_by_role("link", name="Queue")).to_be_visible()
        expect(nav.get_by_role("link", name="Status")).to_have_count(0)
        refused = editor_page.goto("/admin/status")
        assert refused is not None and refused.status == 403
        assert "Server status" not in editor_page.content()
        editor_page.context.close()
    assert not [line for line in watcher.console if "Content Security Policy" in line]
