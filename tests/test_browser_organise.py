"""Organising the library in a real browser: an uploader tags a video on its edit page
by picking a suggestion, browses the tag from the watch page, finds "Demo" by searching
"demos" from the header, makes a playlist, adds two videos from their watch pages,
reorders them, and plays the playlist through: the first video's end opens the next.

Runs `clipsync serve` for real (see `browser.LiveServer`), whose job consumer really
transcodes the uploads; accounts, uploads and approvals go through the JSON API.
"""

from __future__ import annotations

import re

import httpx
import pytest
from browser import LiveServer, Watcher, reported, set_up_admin, sign_in, url_is
from clients import bearer
from clips import make_clip
from playwright.sync_api import Page, expect
from test_browser_moderation import CONFIG, PASSWORD, log_in, register, wait_for_status

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
PLAY_TIMEOUT_MS = 20_000


@pytest.fixture
def live_server_toml() -> str:
    return CONFIG


def upload(http: httpx.Client, token: str, title: str, tags: list[str]) -> str:
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
        json={"videoId": sent.json()["videoId"], "title": title, "tags": tags},
        headers=bearer(token),
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["video"]["tags"] == tags
    return registered.json()["video"]["id"]


def test_tag_browse_search_and_play_a_playlist_through(page: Page, live_server: LiveServer) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
            admin = log_in(http, ADMIN_EMAIL)
            uploader = register(http, "uploader@example.org", "staff")
            demo = upload(http, uploader["token"], "Demo", ["Tutorial"])
            walk = upload(http, uploader["token"], "Harbour walk", [])
            for video in (demo, walk):
                wait_for_status(http, uploader["token"], video, "READY")
                approved = http.post(f"/api/admin/videos/{video}/approve", headers=bearer(admin))
                assert approved.status_code == 200, approved.text

        page.get_by_role("banner").get_by_role("button", name="Sign out").click()
        sign_in(page, live_server, "uploader@example.org", PASSWORD)

        # --- tag the walk with a suggestion, on its edit page ------------------------
        page.goto(f"/videos/{walk}/edit")
        tags = page.get_by_role("textbox", name="Tags")
        tags.press_sequentially("tut")
        page.get_by_role("button", name="#Tutorial").click()
        expect(tags).to_have_value("Tutorial, ")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator("#edit-saved")).to_have_text("Your changes are saved.")
        expect(page.get_by_role("textbox", name="Tags")).to_have_value("Tutorial")

        # --- browse the tag from the watch page ----------------------------------------
        page.goto(f"/watch/{walk}")
        page.locator("header.watch-head").get_by_role("link", name="#Tutorial").click()
        expect(page).to_have_url(url_is(live_server, "/tags/tutorial"))
        expect(page.get_by_role("heading", level=1)).to_have_text("#Tutorial")
        cards = page.locator(".video-grid .video-card")
        expect(cards).to_have_count(2)
        page.get_by_label("Sort by").select_option("title")
        expect(page).to_have_url(url_is(live_server, "/tags/tutorial"))
        expect(cards.first).to_contain_text("Demo")
        expect(cards.nth(1)).to_contain_text("Harbour walk")

        # --- search "demos" from the header ---------------------------------------------
        search = page.get_by_role("search").filter(has=page.locator("#header-q"))
        search.get_by_label("Search videos").fill("demos")
        search.get_by_label("Search videos").press("Enter")
        expect(page).to_have_url(url_is(live_server, "/"))
        results = page.locator(".video-grid .video-card")
        expect(results).to_have_count(1)
        expect(results.first).to_contain_text("Demo")

        # --- a playlist with both videos, reordered -----------------------------------
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Playlists").click()
        expect(page).to_have_url(url_is(live_server, "/playlists"))
        page.get_by_label("Title").fill("Watch later")
        page.get_by_role("button", name="Make playlist").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Watch later")
        playlist = page.url.rsplit("/", 1)[1]
        for video in (demo, walk):
            page.goto(f"/watch/{video}")
            page.locator("#playlist-add summary").click()
            expect(page.get_by_label("Playlist", exact=True)).to_be_enabled()
            page.get_by_label("Playlist", exact=True).select_option(label="Watch later")
            page.get_by_role("button", name="Add", exact=True).click()
            expect(page.locator("#playlist-add-status")).to_have_text("Added to “Watch later”.")
        page.goto(f"/playlists/{playlist}")
        expect(page.locator("#playlist-count")).to_have_text("2 videos you can watch.")
        items = page.locator("#playlist-items > li")
        expect(items.first).to_contain_text("Demo")
        page.get_by_role("button", name="Move “Demo” down").click()
        expect(items.first).to_contain_text("Harbour walk")
        expect(page.locator("#playlist-items")).to_have_attribute("data-saved", re.compile(r"\d+"))
        page.reload()
        expect(items.first).to_contain_text("Harbour walk")
        expect(items.nth(1)).to_contain_text("Demo")

        # --- play it through: the walk's end opens Demo --------------------------------
        page.get_by_role("link", name="Play all").click()
        expect(page).to_have_url(url_is(live_server, f"/watch/{walk}"))
        expect(page.locator("#playlist-playing")).to_contain_text("1 of 2")
        page.wait_for_function(
            "() => { const v = document.getElementById('player');"
            " return v && v.readyState >= 1 && isFinite(v.duration) && v.duration > 0; }",
            timeout=PLAY_TIMEOUT_MS,
        )
        page.evaluate(
            "() => { const v = document.getElementById('player'); v.muted = true;"
            " v.currentTime = Math.max(0, v.duration - 0.3); return v.play(); }"
        )
        expect(page).to_have_url(url_is(live_server, f"/watch/{demo}"), timeout=PLAY_TIMEOUT_MS)
        expect(page.locator("#playlist-playing")).to_contain_text("2 of 2")
        expect(page.locator("#playlist-playing")).to_contain_text("This is the last video.")
