"""Up next, autoplay, Continue watching and history, in a real browser.

Runs `clipsync serve` for real (see `browser.LiveServer`). The administrator is made
through the set-up page; three videos are written straight into the database (these
pages read only the rows): two approved for the staff category, one for dealers. A
staff viewer watches the first: Up next offers the second, never the dealers' one;
with autoplay on, the end of the video starts a 5-second countdown that can be
cancelled and otherwise opens the second. The end of a video is the <video> element's
own `ended` event, dispatched here: the rows have no media to play, and Up next
listens to nothing else. The home page shows Continue watching until the video is
finished; the history page clears after a confirmation.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from browser import DEFAULT_TIMEOUT_MS, LiveServer, Watcher, reported, set_up_admin, sign_in, url_is
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
VIEWER = "viewer@example.org"
DURATION = 300.0


@pytest.fixture
def live_server_toml() -> str:
    return """
[quotas]
registrations_per_address_per_hour = 0

[[category]]
name = "staff"
label = "Staff"
self_select = true
default = true

[[category]]
name = "dealers"
label = "Dealers"
self_select = true
"""


def add_video(live_server: LiveServer, title: str, category: str, minutes_ago: int) -> str:
    """An approved video of the administrator's, in `category`."""
    db = sqlite3.connect(live_server.data_dir / "clipsync.sqlite3")
    (owner,) = db.execute("SELECT id FROM users WHERE role = 'admin'").fetchone()
    video_id = str(uuid.uuid4())
    at = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat(" ")
    db.execute(
        "INSERT INTO videos (id, owner_id, title, original_filename, description, category,"
        " status, progress, attempts, duration, created_at, updated_at)"
        " VALUES (?, ?, ?, 'clip.mp4', '', ?, 'APPROVED', 100, 1, ?, ?, ?)",
        (video_id, owner, title, category, DURATION, at, at),
    )
    db.commit()
    db.close()
    return video_id


def viewer_page(browser: Browser, live_server: LiveServer, watcher: Watcher) -> Page:
    with httpx.Client(base_url=live_server.base_url) as http:
        answer = http.post("/api/auth/register", json={"email": VIEWER, "password": PASSWORD})
        assert answer.status_code == 201, answer.text
    context = browser.new_context(base_url=live_server.base_url)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = watcher.watch(context.new_page())
    sign_in(page, live_server, VIEWER, PASSWORD)
    return page


def end_video(page: Page) -> None:
    page.evaluate("document.getElementById('player').dispatchEvent(new Event('ended'))")


def save_position(page: Page, video_id: str, position: float) -> None:
    page.evaluate(
        "([id, position]) => ClipSync.api('PUT', `/api/videos/${id}/progress`, { position })",
        [video_id, position],
    )


def test_up_next_autoplay_continue_watching_and_history(
    page: Page, live_server: LiveServer, browser: Browser
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, "admin@example.org", PASSWORD)
        first = add_video(live_server, "Harbour tour", "staff", minutes_ago=30)
        second = add_video(live_server, "Harbour at night", "staff", minutes_ago=20)
        hidden = add_video(live_server, "Dealer price list", "dealers", minutes_ago=10)
        viewer = viewer_page(browser, live_server, watcher)

        # --- Up next: the visible video, never the dealers' one --------------------------
        viewer.goto(f"/watch/{first}")
        panel = viewer.locator("#up-next")
        expect(panel).to_be_visible()
        items = panel.locator(".up-next-item")
        expect(items).to_have_count(1)
        expect(items.first).to_have_attribute("data-video-id", second)
        expect(items.first.locator(".up-next-title")).to_have_text("Harbour at night")
        expect(panel).not_to_contain_text("Dealer price list")
        assert viewer.locator(f"[data-video-id='{hidden}']").count() == 0

        # --- autoplay: off by default; on, remembered; the countdown can be cancelled ----
        toggle = viewer.get_by_label("Autoplay next video")
        expect(toggle).not_to_be_checked()
        end_video(viewer)
        viewer.wait_for_timeout(1500)
        expect(viewer.locator("#up-next-countdown")).to_be_hidden()
        assert viewer.url == live_server.url(f"/watch/{first}")
        toggle.check()
        viewer.reload()
        expect(viewer.locator("#up-next .up-next-item")).to_have_count(1)
        expect(viewer.get_by_label("Autoplay next video")).to_be_checked()
        end_video(viewer)
        countdown = viewer.locator("#up-next-countdown")
        expect(countdown).to_be_visible()
        expect(countdown).to_contain_text("Harbour at night")
        expect(countdown).to_contain_text("in 5 seconds")
        viewer.get_by_role("button", name="Cancel").click()
        expect(countdown).to_be_hidden()
        viewer.wait_for_timeout(5500)
        assert viewer.url == live_server.url(f"/watch/{first}")
        end_video(viewer)
        expect(countdown).to_contain_text("in 4 seconds", timeout=3000)
        expect(viewer).to_have_url(url_is(live_server, f"/watch/{second}"), timeout=8000)

        # --- Continue watching: shown while unfinished, gone once finished ---------------
        save_position(viewer, first, 12)
        viewer.goto("/")
        row = viewer.locator("#row-continue")
        expect(row).to_be_visible()
        expect(row.locator(".video-card")).to_have_count(1)
        expect(row.locator(".video-card-title")).to_have_text("Harbour tour")
        expect(row.locator("progress.watched-progress")).to_have_count(1)
        rows_first = viewer.evaluate(
            """() => Boolean(document.querySelector(".home-rows").compareDocumentPosition(
                document.querySelector(".video-section")) & Node.DOCUMENT_POSITION_FOLLOWING)"""
        )
        assert rows_first, "the rows come above the list"
        save_position(viewer, first, DURATION - 2)
        viewer.reload()
        expect(viewer.locator("#row-continue[data-loaded]")).to_have_count(1)
        expect(row).to_be_hidden()
        assert "Dealer price list" not in viewer.locator("main").inner_text()

        # --- history: listed, then cleared after a confirmation --------------------------
        viewer.goto("/history")
        expect(viewer.locator(".history-entry")).to_have_count(1)
        expect(viewer.locator(".history-entry")).to_contain_text("Watched to the end")
        viewer.get_by_role("link", name="Clear history…").click()
        expect(viewer.locator("h1")).to_have_text("Clear your watch history?")
        viewer.get_by_role("button", name="Clear history").click()
        expect(viewer).to_have_url(url_is(live_server, "/history"))
        expect(viewer.locator("#history-notice")).to_have_text("Your history was cleared.")
        expect(viewer.locator(".history-entry")).to_have_count(0)
        viewer.goto("/")
        expect(viewer.locator("#row-continue[data-loaded]")).to_have_count(1)
        expect(viewer.locator("#row-continue")).to_be_hidden()
        # Nothing started now: both staff videos are new to the viewer, not the dealers'.
        expect(viewer.locator("#row-new .video-card")).to_have_count(2)
        assert not [line for line in watcher.console if "[pageerror]" in line], watcher.console
