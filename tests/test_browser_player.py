"""The player in a real browser: ClipSync's own bar, used by keyboard only; the start
quality; quality names of a portrait video; errors that say what happened and retry.

Runs `clipsync serve` for real (`browser.LiveServer`), whose job consumer transcodes
the uploads with ffmpeg, and drives headless Chromium. Accounts, uploads and captions
go in through the JSON API; the watch page is used as a person would.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import LiveServer, Watcher, reported, set_up_admin
from clients import bearer
from clips import make_clip, make_long_clip
from playwright.sync_api import Browser, Page, Request, expect
from test_browser_moderation import PASSWORD, log_in, wait_for_status

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
CLIP_SECONDS = 20
PLAYBACK_TIMEOUT_MS = 20_000

# Three renditions, so there is a real choice of quality; short segments.
CONFIG = """
[transcoder]
ladder = [
    { height = 144, bitrate = 150 },
    { height = 240, bitrate = 300 },
    { height = 360, bitrate = 600 },
]
segment_seconds = 1
max_attempts = 1
"""

SRT = "1\n00:00:00,000 --> 00:00:19,000\nBonjour\n"

# A media segment of a video rendition: /hls/<id>/<rendition>/seg_00000.m4s.
IN_PLAYER = "document.getElementById('player-box').contains(document.activeElement)"
SEGMENT = re.compile(r"/hls/[^/]+/(\d+p)/seg_\d+\.m4s")


@pytest.fixture
def live_server_toml() -> str:
    return CONFIG


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """640x360, 25 fps, with sound: long enough for 10 s jumps both ways."""
    out = tmp_path_factory.mktemp("clips") / "harbour.mp4"
    return make_long_clip(out, CLIP_SECONDS)


def upload_ready(live_server: LiveServer, clip: Path, title: str, captions: str = "") -> str:
    """Upload `clip` as the administrator and wait until it is READY; returns its id."""
    with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
        token = log_in(http, ADMIN_EMAIL)
        with clip.open("rb") as fh:
            sent = http.post(
                "/api/videos/upload-local",
                files={"file": (clip.name, fh, "video/mp4")},
                headers=bearer(token),
            )
        assert sent.status_code == 201, sent.text
        registered = http.post(
            "/api/videos/register",
            json={"videoId": sent.json()["videoId"], "title": title},
            headers=bearer(token),
        )
        assert registered.status_code == 201, registered.text
        video_id: str = registered.json()["video"]["id"]
        wait_for_status(http, token, video_id, "READY")
        if captions:
            added = http.post(
                f"/api/videos/{video_id}/captions",
                files={"file": ("captions.srt", captions.encode(), "application/x-subrip")},
                data={"language": "fr"},
                headers=bearer(token),
            )
            assert added.status_code == 201, added.text
    return video_id


def video_state(page: Page) -> dict[str, Any]:
    return page.evaluate(
        """() => {
            const v = document.getElementById("player");
            const fr = Array.from(v.textTracks).find((t) => t.language === "fr");
            return {
                paused: v.paused, time: v.currentTime, duration: v.duration, muted: v.muted,
                rate: v.playbackRate, captions: fr ? fr.mode : null,
                fullscreen: document.fullscreenElement ? document.fullscreenElement.id : null,
            };
        }"""
    )


def wait_until(page: Page, condition: str, timeout: int = PLAYBACK_TIMEOUT_MS) -> None:
    """Until `condition` (a JS expression over `v`, the <video>, and `d`, document) holds."""
    page.wait_for_function(
        "() => { const v = document.getElementById('player'); const d = document;"
        f" return {condition}; }}",
        timeout=timeout,
    )


def wait_for_manifest(page: Page, levels: int = 3) -> None:
    page.wait_for_function(
        "(n) => window.clipsyncPlayer && window.clipsyncPlayer.hls"
        " && window.clipsyncPlayer.hls.levels.length === n",
        arg=levels,
        timeout=PLAYBACK_TIMEOUT_MS,
    )


def test_a_keyboard_only_viewer_plays_seeks_mutes_goes_full_screen_and_turns_captions_on(
    page: Page, live_server: LiveServer, long_clip: Path
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        video_id = upload_ready(live_server, long_clip, "Harbour", captions=SRT)
        page.goto(f"/watch/{video_id}")
        wait_for_manifest(page)
        assert page.evaluate("document.getElementById('player').hasAttribute('controls')") is False
        expect(page.locator("#captions-option")).to_be_visible()

        # --- Tab into the player: the bar is ClipSync's, named for a screen reader ------
        for _ in range(60):
            page.keyboard.press("Tab")
            if page.evaluate(IN_PLAYER):
                break
        else:
            raise AssertionError("Tab never reached the player")
        box = page.get_by_role("region", name="Video player")
        expect(box.get_by_role("slider", name="Seek")).to_be_visible()
        expect(box.get_by_role("button", name="Play")).to_be_visible()
        expect(box.get_by_role("button", name="Mute")).to_have_attribute("aria-pressed", "false")
        expect(box.get_by_role("button", name="Full screen")).to_have_attribute(
            "aria-pressed", "false"
        )

        # --- Space plays (and does not scroll), k pauses -------------------------------
        scrolled = page.evaluate("window.scrollY")
        page.keyboard.press("Space")
        wait_until(page, "!v.paused && v.currentTime > 0.3")
        assert page.evaluate("window.scrollY") == scrolled, "Space scrolled the page"
        expect(box.get_by_role("button", name="Pause")).to_be_visible()
        page.keyboard.press("k")
        wait_until(page, "v.paused")

        # --- 5 jumps to 50 %, → seeks 5 s on, j 10 s back --------------------------------
        page.keyboard.press("5")
        wait_until(page, "Math.abs(v.currentTime - v.duration / 2) < 0.3")
        half = video_state(page)["time"]
        page.keyboard.press("ArrowRight")
        wait_until(page, f"Math.abs(v.currentTime - {half + 5}) < 0.3")
        page.keyboard.press("j")
        wait_until(page, f"Math.abs(v.currentTime - {half - 5}) < 0.3")
        expect(page.locator("#seek")).to_have_attribute(
            "aria-valuetext", re.compile(r"^\d+ seconds? of 20 seconds$")
        )
        assert page.evaluate("window.clipsyncPlayer.spokenTime(83)") == "1 minute 23 seconds"
        assert page.evaluate("window.clipsyncPlayer.spokenTime(300)") == "5 minutes"

        # --- m mutes and unmutes; Shift+> speeds up ----------------------------------------
        page.keyboard.press("m")
        wait_until(page, "v.muted")
        expect(box.get_by_role("button", name="Mute")).to_have_attribute("aria-pressed", "true")
        page.keyboard.press("m")
        wait_until(page, "!v.muted")
        page.keyboard.press("Shift+Period")
        wait_until(page, "v.playbackRate === 1.25")
        expect(page.locator("#speed")).to_have_value("1.25")

        # --- c turns the French captions on, then off -----------------------------------
        page.keyboard.press("c")
        page.wait_for_function(
            """() => Array.from(document.getElementById("player").textTracks)
                .some((t) => t.language === "fr" && t.mode === "showing")""",
            timeout=PLAYBACK_TIMEOUT_MS,
        )
        expect(page.get_by_label("Captions")).to_have_value("0")
        page.keyboard.press("c")
        page.wait_for_function(
            """() => Array.from(document.getElementById("player").textTracks)
                .filter((t) => t.language === "fr").every((t) => t.mode !== "showing")"""
        )
        expect(page.get_by_label("Captions")).to_have_value("-1")

        # --- f: the player box (bar included) fills the screen, f again leaves ----------
        page.keyboard.press("f")
        wait_until(page, "d.fullscreenElement && d.fullscreenElement.id === 'player-box'")
        expect(box.get_by_role("button", name="Full screen")).to_have_attribute(
            "aria-pressed", "true"
        )
        expect(page.locator("#player-controls")).to_be_visible()
        page.keyboard.press("f")
        wait_until(page, "d.fullscreenElement === null")

        # --- while playing the bar hides, and comes back on a key or the mouse ---------
        box_element = page.locator("#player-box")
        page.keyboard.press("Shift+Comma")
        wait_until(page, "v.playbackRate === 1")
        page.keyboard.press("0")
        page.keyboard.press("k")
        wait_until(page, "!v.paused")

        expect(box_element).to_have_class(re.compile(r"\bplayer-idle\b"), timeout=8_000)
        page.keyboard.press("ArrowUp")
        expect(box_element).not_to_have_class(re.compile(r"\bplayer-idle\b"))
        expect(box_element).to_have_class(re.compile(r"\bplayer-idle\b"), timeout=8_000)
        frame = page.locator("#player").bounding_box()
        assert frame is not None
        page.mouse.move(frame["x"] + frame["width"] / 2, frame["y"] + frame["height"] / 3)
        page.mouse.move(frame["x"] + frame["width"] / 2 + 10, frame["y"] + frame["height"] / 3)
        expect(box_element).not_to_have_class(re.compile(r"\bplayer-idle\b"))


def test_a_portrait_video_names_qualities_by_the_short_side_and_starts_above_the_lowest(
    page: Page, live_server: LiveServer
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        video_id = upload_ready(live_server, make_clip("portrait"), "Upright")

        # The browser's own guess is left out, so the first visit has no estimate at all.
        page.context.add_init_script(
            "Object.defineProperty(Navigator.prototype, 'connection', { get: () => undefined });"
        )
        segments: list[str] = []

        def note(request: Request) -> None:
            if match := SEGMENT.search(request.url):
                segments.append(match.group(1))

        page.on("request", note)

        # --- a first visit measures the bandwidth on the lowest rendition, and keeps it --
        page.goto(f"/watch/{video_id}")
        wait_for_manifest(page)
        expect(page.locator("#quality option")).to_have_text(
            [re.compile(r"^Auto( \(\d+p\))?$"), "360p", "240p", "144p"]
        )
        page.wait_for_function(
            "() => Number(localStorage.getItem('clipsync.bandwidth')) > 0",
            timeout=PLAYBACK_TIMEOUT_MS,
        )
        assert segments and segments[0] == "144p", segments

        # --- the next visit starts at what that bandwidth allows: the top one ------------
        segments.clear()
        page.goto(f"/watch/{video_id}")
        wait_for_manifest(page)
        page.wait_for_function(
            r"() => performance.getEntriesByType('resource')"
            r".some((entry) => /\/\d+p\/seg_\d+\.m4s/.test(entry.name))",
            timeout=PLAYBACK_TIMEOUT_MS,
        )
        assert segments, "no video segment was requested"
        assert segments[0] == "360p", f"the first segment came from {segments[0]}: {segments}"


def test_player_errors_say_what_happened_and_try_again_and_a_double_tap_seeks(
    page: Page, browser: Browser, live_server: LiveServer, long_clip: Path
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        video_id = upload_ready(live_server, long_clip, "Unlucky")
        master = f"**/hls/{video_id}/master.m3u8"
        error = page.locator("#player-error")
        retry = error.get_by_role("button", name="Try again")

        # --- 404: not ready (or gone) ---------------------------------------------------
        page.route(master, lambda route: route.fulfill(status=404, body="not here"))
        page.goto(f"/watch/{video_id}")
        expect(error).to_be_visible(timeout=PLAYBACK_TIMEOUT_MS)
        expect(error).to_have_attribute("role", "alert")
        expect(page.locator("#player-error-text")).to_contain_text("Not ready")
        expect(page.locator("#player-error-detail")).to_contain_text("HTTP 404")
        expect(retry).to_be_visible()

        # --- 403: not allowed; the retry asks again -------------------------------------
        page.unroute(master)
        page.route(master, lambda route: route.fulfill(status=403, body="no"))
        retry.click()
        expect(page.locator("#player-error-text")).to_contain_text("Not allowed")
        expect(page.locator("#player-error-detail")).to_contain_text("HTTP 403")

        # --- the server answers again: the retry loads the video ------------------------
        page.unroute(master)
        retry.click()
        expect(error).to_be_hidden()
        wait_for_manifest(page, levels=3)
        page.evaluate("() => { const v = document.getElementById('player'); v.muted = true; }")
        page.evaluate("() => document.getElementById('player').play()")
        wait_until(page, "!v.paused && v.currentTime > 0.5")
        expect(error).to_be_hidden()

        # --- the embed page has the same player -----------------------------------------
        page.goto(f"/embed/{video_id}")
        wait_for_manifest(page, levels=3)
        expect(page.locator("#player-controls")).to_be_visible()
        expect(page.get_by_role("button", name="Play")).to_be_visible()
        page.keyboard.press("k")
        wait_until(page, "!v.paused")

        # --- a phone: a double tap on the right third seeks 10 s on, the left 10 s back --
        phone = browser.new_context(
            base_url=live_server.base_url,
            has_touch=True,
            viewport={"width": 390, "height": 844},
            storage_state=page.context.storage_state(),
        )
        try:
            touch = watcher.watch(phone.new_page())
            touch.goto(f"/watch/{video_id}")
            wait_for_manifest(touch)
            wait_until(touch, "v.readyState >= 1")
            area = touch.locator("#player").bounding_box()
            assert area is not None
            y = area["y"] + area["height"] / 3
            for _ in range(2):
                touch.touchscreen.tap(area["x"] + area["width"] * 0.85, y)
            wait_until(touch, "Math.abs(v.currentTime - 10) < 0.3")
            for _ in range(2):
                touch.touchscreen.tap(area["x"] + area["width"] * 0.15, y)
            wait_until(touch, "v.currentTime < 0.3")
            assert touch.evaluate("document.getElementById('player').paused")
        finally:
            phone.close()
