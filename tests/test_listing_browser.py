"""The home page's infinite scroll in a real browser, and its page links without scripts.

Runs `clipsync serve` for real (see `browser.LiveServer`); the administrator is made
through the set-up page and 60 videos of theirs are written straight into the
database, as the list only reads rows.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from browser import LiveServer, Watcher, reported, set_up_admin, sign_in
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.browser

EMAIL = "admin@example.org"
PASSWORD = "correct horse battery"
VIDEOS = 60  # the home page shows 24 at a time: two more pages, the last one short


@pytest.fixture
def live_server_toml() -> str:
    # The videos are written straight into the database, behind the server's back: its
    # cache (which only ClipSync's own writes keep fresh) would not know of them.
    return '[cache]\nbackend = "off"\n'


def add_videos(live_server: LiveServer) -> list[str]:
    """The titles, newest first."""
    db = sqlite3.connect(live_server.data_dir / "clipsync.sqlite3")
    owner, category = db.execute("SELECT id, category FROM users").fetchone()
    start = datetime(2026, 3, 1, tzinfo=UTC)
    rows = []
    for n in range(VIDEOS):
        at = (start + timedelta(minutes=n)).isoformat(" ")  # as Tortoise writes it
        rows.append((str(uuid.uuid4()), owner, f"Clip {n:02d}", category, at, at))
    db.executemany(
        "INSERT INTO videos (id, owner_id, title, original_filename, description, category,"
        " status, progress, attempts, duration, created_at, updated_at)"
        " VALUES (?, ?, ?, 'clip.mp4', '', ?, 'APPROVED', 100, 1, 42.0, ?, ?)",
        rows,
    )
    db.commit()
    db.close()
    return [f"Clip {n:02d}" for n in reversed(range(VIDEOS))]


def test_the_home_page_scrolls_on_through_every_video(
    page: Page, live_server: LiveServer, browser: Browser
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, EMAIL, PASSWORD)
        titles = add_videos(live_server)
        page.goto("/")
        cards = page.locator(".video-grid .video-card")
        expect(cards).to_have_count(24)
        # With the script, the numbered links give way to the scroll.
        expect(page.locator(".pagination")).to_be_hidden()
        page.locator('[data-role="list-end"]').scroll_into_view_if_needed()
        # The next page comes; while the end of the list is still in view (cards whose
        # posters have not laid out yet), the one after it may come at once too.
        page.wait_for_function(
            "() => document.querySelectorAll('.video-grid .video-card').length >= 48"
        )
        page.locator('[data-role="list-end"]').scroll_into_view_if_needed()
        expect(cards).to_have_count(VIDEOS)
        expect(page.locator('[data-role="list-status"]')).to_have_text("That is every video.")
        assert page.locator(".video-card-title").all_inner_texts() == titles
        # The cards the script adds are the server's: a link, the duration, the date.
        last = cards.last
        expect(last.locator("a.video-card-link")).to_have_attribute("href", "/watch/" + (
            last.get_attribute("data-video-id") or "?"
        ))  # fmt: skip
        expect(last.locator(".duration-badge")).to_contain_text("0:42")
        expect(last.locator("time")).to_have_attribute("datetime", "2026-03-01T00:00:00+00:00")
        assert not [line for line in watcher.console if "error" in line.lower()]

    # Without JavaScript the same list is there, a page at a time.
    context = browser.new_context(base_url=live_server.base_url, java_script_enabled=False)
    try:
        plain = context.new_page()
        sign_in(plain, live_server, EMAIL, PASSWORD)
        expect(plain.locator(".video-card")).to_have_count(24)
        plain.get_by_role("link", name="Older →").click()
        expect(plain.locator(".video-card")).to_have_count(24)
        expect(plain.locator(".video-card-title").first).to_have_text(titles[24])
    finally:
        context.close()
