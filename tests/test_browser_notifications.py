"""The bell in a real browser: an approval shows in the uploader's header without a reload.

A real `clipsync serve` transcodes the upload (the uploader hears "ready"); an
administrator approves it in the moderation queue in one browser context, and the
uploader's page, open in another, shows the new unread count live; the notifications
page lists both and marks them read.
"""

from __future__ import annotations

import httpx
import pytest
from browser import DEFAULT_TIMEOUT_MS, LiveServer, Watcher, reported, set_up_admin, sign_in
from playwright.sync_api import Browser, Page, expect
from test_browser_moderation import CONFIG, PASSWORD, register, upload, wait_for_status

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
TITLE = "Harbour Safety Walkthrough"
LIVE_TIMEOUT_MS = 15_000


@pytest.fixture
def live_server_toml() -> str:
    return CONFIG


def test_an_approval_reaches_the_uploaders_bell_without_a_reload(
    page: Page, browser: Browser, live_server: LiveServer
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
            uploader = register(http, "uploader@example.org", "staff")
            video_id = upload(http, uploader["token"], TITLE)
            wait_for_status(http, uploader["token"], video_id, "READY")

        context = browser.new_context(base_url=live_server.base_url)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        streams: list[str] = []
        context.on(
            "request",
            lambda request: (
                streams.append(request.url) if "/api/notifications/stream" in request.url else None
            ),
        )
        mine = watcher.watch(context.new_page())
        sign_in(mine, live_server, "uploader@example.org", PASSWORD)
        bell = mine.locator("#notification-bell")
        count = mine.locator("#notification-count")
        expect(count).to_have_text("1")  # "ready", from the stream as it opened
        expect(bell).to_have_attribute("aria-label", "Notifications, 1 unread")
        mine.evaluate("window.__marker = 1")  # a reload would clear it
        # A second tab of the same person shares the first tab's stream.
        other = watcher.watch(context.new_page())
        other.goto("/")
        expect(other.locator("#notification-count")).to_have_text("1")

        page.goto("/admin")
        item = page.locator(f'.queue-item[data-video-id="{video_id}"]')
        item.get_by_role("button", name="Approve").click()
        expect(item.locator("[data-role=status]")).to_have_text("Approved")

        expect(count).to_have_text("2", timeout=LIVE_TIMEOUT_MS)
        expect(other.locator("#notification-count")).to_have_text("2")
        assert mine.evaluate("window.__marker") == 1
        assert len(streams) == 1, streams  # one connection for both tabs
        other.close()

        bell.click()
        expect(mine.get_by_role("heading", level=1)).to_have_text("Notifications")
        titles = mine.locator(".notification-title")
        expect(titles).to_have_text([f"“{TITLE}” was approved", f"“{TITLE}” is ready"])
        mine.get_by_role("button", name="Mark all as read").click()
        expect(count).to_be_hidden()
        expect(mine.locator(".is-unread")).to_have_count(0)
        context.close()
