"""Moderation in a real browser: an editor previews and approves an upload, a colleague
of the same category then finds and plays it, and someone of another category cannot.

Runs `clipsync serve` for real (see `browser.LiveServer`), whose job consumer really
transcodes the upload. Accounts and the upload are made through the JSON API (as a
script would); the moderation console and the pages are driven with headless Chromium.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from browser import (
    DEFAULT_TIMEOUT_MS,
    LiveServer,
    Watcher,
    play_muted,
    reported,
    set_up_admin,
    sign_in,
    url_is,
)
from clients import bearer
from clips import make_clip
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
PASSWORD = "correct horse battery"
TITLE = "Quarterly Forecast Review"

CONFIG = """
[[category]]
name = "staff"
label = "Staff"
self_select = true
default = true

[[category]]
name = "dealers"
label = "Dealers"
self_select = true

[transcoder]
ladder = [{ height = 144, bitrate = 150 }, { height = 240, bitrate = 300 }]
segment_seconds = 1
"""

PROCESSING_TIMEOUT_S = 45
PLAYBACK_TIMEOUT_MS = 15_000
# The queue hears news on its live stream (the event bus) and asks for its page again.
LIVE_TIMEOUT_MS = 15_000


@pytest.fixture
def live_server_toml() -> str:
    return CONFIG


def new_page(browser: Browser, live_server: LiveServer, watcher: Watcher) -> Page:
    """A page in a fresh context: no cookies, nobody signed in."""
    context = browser.new_context(base_url=live_server.base_url)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    return watcher.watch(context.new_page())


# --- the API side ------------------------------------------------------------------------


def register(http: httpx.Client, email: str, category: str) -> dict[str, Any]:
    answer = http.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD, "categoryRole": category}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def log_in(http: httpx.Client, email: str) -> str:
    answer = http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def upload(http: httpx.Client, token: str, title: str) -> str:
    clip = make_clip("landscape")
    with clip.open("rb") as fh:
        sent = http.post(
            "/api/videos/upload-local",
            files={"file": (clip.name, fh, "video/mp4")},
            headers=bearer(token),
        )
    assert sent.status_code == 201, sent.text
    registered = http.post(
        "/api/videos/register",
        json={"videoId": sent.json()["videoId"], "title": title, "description": "Numbers."},
        headers=bearer(token),
    )
    assert registered.status_code == 201, registered.text
    return registered.json()["video"]["id"]


def wait_for_status(http: httpx.Client, token: str, video_id: str, wanted: str) -> dict[str, Any]:
    """Polls the video until it has status `wanted`; fails at once if it FAILED."""
    deadline = time.monotonic() + PROCESSING_TIMEOUT_S
    while True:
        answer = http.get(f"/api/videos/{video_id}", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        video = answer.json()["video"]
        if video["status"] == wanted:
            return video
        assert video["status"] != "FAILED", f"the video failed: {video.get('error')}"
        assert time.monotonic() < deadline, f"still {video['status']} after {PROCESSING_TIMEOUT_S}s"
        time.sleep(0.25)


def wait_for_playback(page: Page, video: str, seconds: float) -> None:
    """Until the <video> matched by the selector `video` plays beyond `seconds`."""
    page.wait_for_function(
        """([selector, seconds]) => {
            const video = document.querySelector(selector);
            return Boolean(video) && !video.paused && video.currentTime > seconds;
        }""",
        arg=[video, seconds],
        timeout=PLAYBACK_TIMEOUT_MS,
    )


# --- the test ------------------------------------------------------------------------------


def test_an_editor_approves_in_the_queue_then_the_category_can_watch_and_others_cannot(
    page: Page, browser: Browser, live_server: LiveServer
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)

        # --- accounts and the upload, through the API ----------------------------------
        with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
            admin_token = log_in(http, ADMIN_EMAIL)
            uploader = register(http, "uploader@example.org", "staff")
            viewer_account = register(http, "viewer@example.org", "staff")
            register(http, "outsider@example.org", "dealers")
            editor = register(http, "editor@example.org", "staff")
            promoted = http.patch(
                f"/api/admin/users/{editor['user']['id']}",
                json={"role": "editor"},
                headers=bearer(admin_token),
            )
            assert promoted.status_code == 200, promoted.text
            assert promoted.json()["user"]["role"] == "editor"
            # The role change signed the editor out everywhere: the old token is dead.
            stale = http.get("/api/auth/me", headers=bearer(editor["token"]))
            assert stale.status_code == 401, stale.text
            assert log_in(http, "editor@example.org")

            video_id = upload(http, uploader["token"], TITLE)
            wait_for_status(http, uploader["token"], video_id, "READY")
            # Until it is approved, colleagues do not see it.
            unseen = http.get("/api/videos?q=forecast", headers=bearer(viewer_account["token"]))
            assert unseen.status_code == 200, unseen.text
            assert unseen.json()["items"] == []

        # --- an admin can put it in another category from the queue, and back ----------
        page.goto("/admin")
        item = page.locator(f'.queue-item[data-video-id="{video_id}"]')
        move_to = item.get_by_label(f"Category of “{TITLE}”")
        expect(move_to).to_have_value("staff")
        for name, label in (("dealers", "Dealers"), ("staff", "Staff")):
            move_to.select_option(name)
            item.get_by_role("button", name="Move").click()
            expect(item.locator("[data-role=message]")).to_have_text(
                f"Moved to {label}: everyone in {label} will see it once it is approved."
            )
            expect(item.locator("[data-role=category]")).to_contain_text(label)
            moved = page.request.get(f"/api/videos/{video_id}")
            assert moved.ok and moved.json()["video"]["category"] == name, moved.text()

        # --- the editor finds it in the queue, previews it and approves it -------------
        page.get_by_role("banner").get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(url_is(live_server, "/login"))
        sign_in(page, live_server, "editor@example.org", PASSWORD)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
        expect(page).to_have_url(url_is(live_server, "/admin"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Moderation queue")
        # Editors moderate; they do not manage accounts.
        tabs = page.get_by_role("navigation", name="Moderation console").get_by_role("link")
        expect(tabs).to_have_text(["Queue", "Library", "Audit log"])
        expect(page.locator("#filter-category")).to_have_count(0)

        item = page.locator(f'.queue-item[data-video-id="{video_id}"]')
        expect(item.locator("[data-role=title]")).to_have_text(TITLE)
        expect(item.locator("[data-role=uploader]")).to_have_text("uploader@example.org")
        expect(item.locator("[data-role=status]")).to_have_text("Ready")
        page.evaluate("window.__marker = 1")  # a reload or navigation would clear it

        preview = item.get_by_role("button", name="Preview")
        preview.click()
        expect(preview).to_have_attribute("aria-expanded", "true")
        player = f'.queue-item[data-video-id="{video_id}"] [data-role=preview] video'
        expect(page.locator(player)).to_be_visible()
        wait_for_playback(page, player, 1.0)

        item.get_by_role("button", name="Approve").click()
        expect(item.locator("[data-role=status]")).to_have_text("Approved")
        expect(item.locator("[data-role=message]")).to_have_text(
            "Approved: everyone in Staff can watch it now."
        )
        expect(item.get_by_role("button", name="Approve")).to_have_count(0)
        expect(item.get_by_role("button", name="Reject")).to_have_count(0)
        assert page.evaluate("window.__marker") == 1, "the page was reloaded"

        # --- the queue keeps itself current: an arrival is announced, a decision taken
        # --- elsewhere shows up, without a reload ---------------------------------------
        with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
            second = upload(http, uploader["token"], "Second Thoughts")
            news = page.locator("#queue-news")
            expect(news).to_have_text("1 new video is waiting. Show them", timeout=LIVE_TIMEOUT_MS)
            news.get_by_role("link", name="Show them").click()
            arrived = page.locator(f'.queue-item[data-video-id="{second}"]')
            expect(arrived.locator("[data-role=title]")).to_have_text("Second Thoughts")
            expect(news).to_be_hidden()
            page.evaluate("window.__marker = 2")
            wait_for_status(http, uploader["token"], second, "READY")
            expect(arrived.locator("[data-role=status]")).to_have_text(
                "Ready", timeout=LIVE_TIMEOUT_MS
            )
            rejected = http.post(
                f"/api/admin/videos/{second}/reject",
                json={"reason": "A duplicate."},
                headers=bearer(admin_token),
            )
            assert rejected.status_code == 200, rejected.text
            expect(arrived.locator("[data-role=status]")).to_have_text(
                "Rejected", timeout=LIVE_TIMEOUT_MS
            )
            expect(page.locator("#queue-total")).to_have_text("0")
            assert page.evaluate("window.__marker") == 2, "the page was reloaded"

        # The decision is on the record, linked to the video.
        page.get_by_role("navigation", name="Moderation console").get_by_role(
            "link", name="Audit log"
        ).click()
        entry = page.locator(f'tr.audit-row[data-video-id="{video_id}"]').first
        expect(entry).to_contain_text("Approved")
        expect(entry).to_contain_text("editor@example.org")
        expect(entry.get_by_role("link", name=TITLE)).to_have_attribute(
            "href", f"/watch/{video_id}"
        )

        # --- the uploader sees the decision ----------------------------------------------
        owner = new_page(browser, live_server, watcher)
        sign_in(owner, live_server, "uploader@example.org", PASSWORD)
        owner.goto("/videos")
        row = owner.locator(f'tr[data-video-id="{video_id}"]')
        expect(row.locator("[data-role=status]")).to_have_text("Approved")
        expect(row.locator("[data-role=moderation]")).to_contain_text("Approved on")
        owner.context.close()

        # --- a colleague in the same category finds it and plays it ------------------------
        viewer = new_page(browser, live_server, watcher)
        sign_in(viewer, live_server, "viewer@example.org", PASSWORD)
        expect(viewer.get_by_role("link", name="Admin")).to_have_count(0)
        found = viewer.request.get("/api/videos?q=forecast")
        assert found.ok, found.text()
        assert [v["id"] for v in found.json()["items"]] == [video_id]
        # The header's search box (the home page has one of its own too).
        search = viewer.locator("#header-q")
        search.fill("forecast")
        search.press("Enter")
        expect(viewer).to_have_url(re.compile(r"/\?q=forecast$"))
        card = viewer.locator(f'.video-card[data-video-id="{video_id}"]')
        expect(card).to_be_visible()
        card.get_by_role("link", name=TITLE).click()
        expect(viewer).to_have_url(url_is(live_server, f"/watch/{video_id}"))
        expect(viewer.get_by_role("heading", level=1)).to_have_text(TITLE)
        play_muted(viewer)
        wait_for_playback(viewer, "#player", 1.0)
        expect(viewer.locator("#player-error")).to_be_hidden()
        # Viewers do not moderate.
        refused = viewer.goto("/admin")
        assert refused is not None and refused.status == 403
        expect(viewer.get_by_role("heading", level=1)).to_have_text("Not allowed")
        viewer.context.close()

        # --- someone of another category does not even learn that it exists --------------
        outsider = new_page(browser, live_server, watcher)
        sign_in(outsider, live_server, "outsider@example.org", PASSWORD)
        expect(outsider.locator(f'[data-video-id="{video_id}"]')).to_have_count(0)
        expect(outsider.get_by_text(TITLE)).to_have_count(0)
        found = outsider.request.get("/api/videos?q=forecast")
        assert found.ok, found.text()
        assert found.json()["items"] == []
        watch = outsider.goto(f"/watch/{video_id}")
        assert watch is not None and watch.status == 404
        expect(outsider.get_by_role("heading", level=1)).to_have_text("Page not found")
        playlist = outsider.request.get(f"/hls/{video_id}/master.m3u8")
        assert playlist.status == 404, playlist.text()
        outsider.context.close()
