"""Captions and chapters in a real browser: the owner uploads French captions on the
edit page (a plain form), then plays the video with them on; hls.js reads the SUBTITLES
group of the master playlist and fills a text track of the <video>. The choice is
remembered on the next load, and the description's chapters mark the seek bar.

Runs `clipsync serve` for real (see `browser.LiveServer`), whose job consumer really
transcodes the upload.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from browser import LiveServer, Watcher, reported, set_up_admin, sign_in, url_is
from clients import bearer
from playwright.sync_api import Page, expect
from test_browser_moderation import CONFIG, PASSWORD, register, upload, wait_for_status

pytestmark = pytest.mark.browser

SRT = (
    "1\n00:00:00,000 --> 00:00:03,500\nBonjour <i>à tous</i>\n\n"
    "2\n00:00:03,500 --> 00:00:04,000\nFin\n"
)

# The text track hls.js made for the French captions: its mode and cue texts.
FRENCH_TRACK = """() => {
    const video = document.getElementById("player");
    const track = Array.from(video.textTracks).find((t) => t.language === "fr");
    if (!track || !track.cues || track.cues.length < 2) return null;
    return { mode: track.mode, texts: Array.from(track.cues).map((cue) => cue.text) };
}"""


@pytest.fixture
def live_server_toml() -> str:
    return CONFIG


def test_the_owner_adds_french_captions_and_plays_with_them_on(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, "admin@example.org", PASSWORD)
        with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
            owner = register(http, "owner@example.org", "staff")
            video_id = upload(http, owner["token"], "Harbour tour")
            edited = http.patch(
                f"/api/videos/{video_id}",
                json={"description": "A short tour.\n0:00 Quay\n0:02 Lighthouse"},
                headers=bearer(owner["token"]),
            )
            assert edited.status_code == 200, edited.text
            wait_for_status(http, owner["token"], video_id, "READY")

        page.get_by_role("banner").get_by_role("button", name="Sign out").click()
        sign_in(page, live_server, "owner@example.org", PASSWORD)
        page.goto(f"/videos/{video_id}/edit")
        captions = page.locator("#captions")
        expect(captions.locator("#caption-none")).to_have_text("No captions yet.")
        srt = tmp_path / "harbour.fr.srt"
        srt.write_text(SRT)
        captions.get_by_label("Language").fill("fr")
        captions.get_by_label("File").set_input_files(srt)
        captions.get_by_role("button", name="Upload captions").click()
        expect(page).to_have_url(
            url_is(live_server, f"/videos/{video_id}/edit?captions=fr#captions")
        )
        expect(page.locator("#caption-saved")).to_have_text("The fr captions are saved.")
        expect(page.locator("#caption-list li")).to_have_count(1)
        expect(page.locator("#caption-list li")).to_contain_text("Français")

        page.goto(f"/watch/{video_id}")
        menu = page.get_by_label("Captions")
        expect(menu).to_be_visible()
        expect(menu).to_have_value("-1")
        expect(menu.locator("option")).to_have_text(["Off", "Français"])
        menu.select_option(label="Français")
        track = page.wait_for_function(FRENCH_TRACK).json_value()
        assert track == {"mode": "showing", "texts": ["Bonjour <i>à tous</i>", "Fin"]}

        # Two chapters: one mark, where the second starts (2 s of 4).
        marks = page.locator("#seek-chapters .seek-chapter")
        expect(marks).to_have_count(1)
        expect(marks).to_have_attribute("title", "Lighthouse")

        # The choice is remembered on the next load; Off turns the track off.
        page.reload()
        expect(page.get_by_label("Captions")).to_have_value("0")
        track = page.wait_for_function(FRENCH_TRACK).json_value()
        assert track["mode"] == "showing"
        page.get_by_label("Captions").select_option(label="Off")
        page.wait_for_function(
            """() => Array.from(document.getElementById("player").textTracks)
                .filter((t) => t.language === "fr").every((t) => t.mode !== "showing")"""
        )
