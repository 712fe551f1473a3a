"""The bell in a real browser: an approval shows in the uploader's header without a reload.

A real `clipsync serve` transcodes the upload (the uploader hears "ready"); an
administrator approves it in the moderation queue in one browser context, and the
uploader's page, open in another, shows the new unread count live; the notifications
page lists both and marks them read. The same news arrives by email, through a real
SMTP server on loopback (STARTTLS), sent by the server's own job consumer, with a
link that opens the video.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser import DEFAULT_TIMEOUT_MS, LiveServer, Watcher, reported, set_up_admin, sign_in
from playwright.sync_api import Browser, Page, expect
from smtp import Received, SmtpServer
from test_browser_moderation import CONFIG, PASSWORD, register, upload, wait_for_status

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
TITLE = "Harbour Safety Walkthrough"
LIVE_TIMEOUT_MS = 15_000


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with SmtpServer(tmp_path / "smtp") as server:
        yield server


@pytest.fixture
def live_server_toml(smtp: SmtpServer) -> str:
    table = "\n".join(
        f"{key} = {value}" if isinstance(value, int) else f'{key} = "{value}"'
        for key, value in smtp.config().items()
    )
    return f"{CONFIG}\n[plugins.notify_email]\n{table}\n"


def mail_about(smtp: SmtpServer, address: str, subject: str) -> list[Received]:
    """The mails to `address` whose subject says `subject`, once at least one came."""
    deadline = time.monotonic() + LIVE_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        found = [m for m in smtp.mails_to(address) if subject in m.message["Subject"]]
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no mail to {address} about {subject!r}: {smtp.mails()}")


def test_an_approval_reaches_the_uploaders_bell_without_a_reload(
    page: Page, browser: Browser, live_server: LiveServer, smtp: SmtpServer
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

        # The same news by email, once, over STARTTLS, with a link to the video.
        [approved] = mail_about(smtp, "uploader@example.org", f"“{TITLE}” was approved")
        assert approved.tls
        link = re.search(r"https?://\S+/watch/[0-9a-f-]+", approved.part("text/plain"))
        assert link and link.group(0).endswith(f"/watch/{video_id}"), approved.part("text/plain")
        mine.goto(link.group(0))
        expect(mine.get_by_role("heading", level=1)).to_have_text(TITLE)
        assert len(mail_about(smtp, "uploader@example.org", f"“{TITLE}” is ready")) == 1

        mine.goto("/")
        bell.click()
        expect(mine.get_by_role("heading", level=1)).to_have_text("Notifications")
        titles = mine.locator(".notification-title")
        expect(titles).to_have_text([f"“{TITLE}” was approved", f"“{TITLE}” is ready"])
        mine.get_by_role("button", name="Mark all as read").click()
        expect(count).to_be_hidden()
        expect(mine.locator(".is-unread")).to_have_count(0)
        context.close()
