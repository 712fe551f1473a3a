"""Sharing beyond one category, in a real browser (issue 14, "Shown by"): the owner
edits the title, picks another thumbnail and adds French captions on the edit page,
makes a share link in its "Who can watch" panel and sends it to a dealer (another
category); the dealer opens it and plays the video with the French captions on; the
owner revokes the link, and the dealer's next segment request fails. Then an editor
unpublishes an approved video from /admin/library.

Runs `clipsync serve` for real (see `browser.LiveServer`), whose job consumer really
transcodes the upload; accounts, the upload and the approval go through the JSON API.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from browser import LiveServer, Watcher, reported, set_up_admin, sign_in, url_is
from clients import bearer
from playwright.sync_api import Browser, Page, Response, expect
from test_browser_captions import FRENCH_TRACK, SRT
from test_browser_moderation import CONFIG, PASSWORD, log_in, register, upload, wait_for_status

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
TITLE = "Harbour Safety"


@pytest.fixture
def live_server_toml() -> str:
    return CONFIG


def test_a_link_shared_across_categories_plays_with_captions_until_revoked(
    page: Page, browser: Browser, live_server: LiveServer, tmp_path: Path
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
            admin_token = log_in(http, ADMIN_EMAIL)
            owner = register(http, "owner@example.org", "staff")
            register(http, "dealer@example.org", "dealers")
            editor = register(http, "editor@example.org", "staff")
            promoted = http.patch(
                f"/api/admin/users/{editor['user']['id']}",
                json={"role": "editor"},
                headers=bearer(admin_token),
            )
            assert promoted.status_code == 200, promoted.text
            video_id = upload(http, owner["token"], TITLE)
            wait_for_status(http, owner["token"], video_id, "READY")
            approved = http.post(
                f"/api/admin/videos/{video_id}/approve", headers=bearer(admin_token)
            )
            assert approved.status_code == 200, approved.text

        # --- the owner edits the title, the thumbnail and the captions ------------------
        page.get_by_role("banner").get_by_role("button", name="Sign out").click()
        sign_in(page, live_server, "owner@example.org", PASSWORD)
        page.goto(f"/videos/{video_id}/edit")
        page.get_by_label("Title").fill("Harbour Safety, 2027")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator("#edit-saved")).to_have_text("Your changes are saved.")
        frames = page.get_by_role("group", name="Pick a frame of the video")
        frames.get_by_role("button", name="Frame 3 of 6").click()
        expect(page.locator("#thumbnail-saved")).to_be_visible()
        captions = page.locator("#captions")
        srt = tmp_path / "harbour.fr.srt"
        srt.write_text(SRT)
        captions.get_by_label("Language").fill("fr")
        captions.get_by_label("File").set_input_files(srt)
        captions.get_by_role("button", name="Upload captions").click()
        expect(page.locator("#caption-saved")).to_have_text("The fr captions are saved.")

        # --- and shares a link ----------------------------------------------------------
        sharing = page.locator("#sharing")
        expect(sharing.locator("#sharing-categories-now")).to_have_text("Published to: staff.")
        sharing.get_by_label("Works for").select_option(label="1 day")
        sharing.get_by_role("button", name="Create link").click()
        new_link = sharing.get_by_label(re.compile("The new link"))
        expect(new_link).to_have_value(re.compile("/s/"))
        link_url = new_link.input_value()
        token = link_url.rsplit("/s/", 1)[1]
        assert link_url == live_server.url(f"/s/{token}")
        expect(sharing.locator("#sharing-links li")).to_have_count(1)
        expect(sharing.locator("#sharing-links li")).to_contain_text("works until")

        # --- a dealer (another category) plays it with French captions ------------------
        dealer_context = browser.new_context(base_url=live_server.base_url)
        try:
            dealer = dealer_context.new_page()
            watcher.watch(dealer)
            media: list[Response] = []
            dealer.on(
                "response",
                lambda r: media.append(r) if "/share/" in r.url and "/hls/" in r.url else None,
            )
            sign_in(dealer, live_server, "dealer@example.org", PASSWORD)
            dealer.goto(f"/watch/{video_id}")
            expect(dealer.get_by_role("heading", level=1)).not_to_have_text("Harbour Safety, 2027")
            dealer.goto(f"/s/{token}")
            expect(dealer.get_by_role("heading", level=1)).to_have_text("Harbour Safety, 2027")
            # The thumbnail the owner picked, reached through the link.
            expect(dealer.locator("video#player")).to_have_attribute(
                "poster", f"/hls/{video_id}/share/{token}/candidates/3.jpg"
            )
            poster = dealer.request.get(f"/hls/{video_id}/share/{token}/candidates/3.jpg")
            assert poster.status == 200 and poster.headers["content-type"] == "image/jpeg"
            menu = dealer.get_by_label("Captions")
            expect(menu).to_be_visible()
            menu.select_option(label="Français")
            track = dealer.wait_for_function(FRENCH_TRACK).json_value()
            assert track["mode"] == "showing"
            dealer.locator("#play-pause").click()
            dealer.wait_for_function(
                "() => document.getElementById('player').currentTime > 0.5", timeout=15_000
            )
            segments = [r for r in media if ".m4s" in r.url]
            assert segments and all(r.status == 200 for r in segments), [
                (r.status, r.url) for r in media
            ]
            playlist = next(
                r for r in reversed(media) if r.url.split("?")[0].endswith("index.m3u8")
            )
            uris = [line for line in playlist.text().splitlines() if ".m4s" in line]
            next_segment = urljoin(playlist.url, uris[-1])

            # --- the owner revokes the link: the dealer's next segment fails ------------
            page.once("dialog", lambda dialog: dialog.accept())
            sharing.get_by_role("button", name="Revoke").click()
            expect(sharing.locator("#sharing-status")).to_have_text("The link is revoked.")
            expect(sharing.locator("#sharing-links li")).to_contain_text("revoked")
            assert dealer.request.get(next_segment).status == 404
            assert dealer.request.get(urljoin(playlist.url, "index.m3u8")).status == 404
            assert dealer.goto(f"/s/{token}").status == 404
        finally:
            dealer_context.close()

        # --- an editor unpublishes the approved video from the library ------------------
        page.get_by_role("banner").get_by_role("button", name="Sign out").click()
        sign_in(page, live_server, "editor@example.org", PASSWORD)
        page.goto("/admin/library")
        page.get_by_label("Status").select_option("APPROVED")
        page.get_by_role("button", name="Show").click()
        row = page.locator(f'.library-row[data-video-id="{video_id}"]')
        expect(row.locator("[data-role=status]")).to_have_text("Approved")
        row.get_by_role("button", name="Unpublish").click()
        expect(page.locator("#library-notice")).to_contain_text("The video was unpublished")
        expect(page.locator(f'.library-row[data-video-id="{video_id}"]')).to_have_count(0)
        expect(page).to_have_url(url_is(live_server, "/admin/library"))
