"""Videos in a real browser: upload, live processing status, HLS playback, quality, resume.

Runs `clipsync serve` for real (see `browser.LiveServer`), whose job consumer really
transcodes the upload with ffmpeg, and drives it with headless Chromium as a person
would: the upload form, "My videos" following the processing live, and the watch page
playing the HLS stream through hls.js and Media Source Extensions.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import LiveServer, play_muted, set_up_admin, url_is
from clips import FFMPEG, run
from playwright.sync_api import ConsoleMessage, Error, Page, expect

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
ADMIN_PASSWORD = "correct horse battery"

# Three renditions of a 640x360 clip, so there is a real choice of quality; short
# segments so seeking and switching need little data.
LADDER = """
[transcoder]
ladder = [
    { height = 144, bitrate = 150 },
    { height = 240, bitrate = 300 },
    { height = 360, bitrate = 600 },
]
segment_seconds = 1
max_attempts = 1
"""
CLIP_SECONDS = 16  # the player resumes only between 5 s in and 5 s before the end
RESUME_FROM = 7.0  # where the viewer seeks to before stopping

PROCESSING_TIMEOUT_MS = 90_000
PLAYBACK_TIMEOUT_MS = 20_000


@pytest.fixture
def live_server_toml() -> str:
    return LADDER


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """640x360, 25 fps, H.264 and AAC, long enough to stop in the middle and resume."""
    out = tmp_path_factory.mktemp("clips") / "holiday.mp4"
    run([
        FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={CLIP_SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={CLIP_SECONDS}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "96k", "-shortest", str(out),
    ])  # fmt: skip
    return out


@pytest.fixture
def console(page: Page) -> list[str]:
    """What the page logs to its console, and uncaught errors, as lines."""
    lines: list[str] = []

    def note(message: ConsoleMessage) -> None:
        lines.append(f"[{message.type}] {message.text} ({page.url})")

    page.on("console", note)
    page.on("pageerror", lambda error: lines.append(f"[pageerror] {error} ({page.url})"))
    return lines


@contextlib.contextmanager
def reported(live_server: LiveServer, console: list[str]) -> Iterator[None]:
    """Adds the browser's console and the server's log to a failure."""
    try:
        yield
    except (AssertionError, Error) as error:
        logged = "\n".join(console[-40:]) or "(nothing)"
        raise AssertionError(
            f"{error}\n--- browser console ---\n{logged}{live_server.log_tail()}"
        ) from error


def current_time(page: Page) -> float:
    return page.evaluate("document.getElementById('player').currentTime")


def wait_for_playback_past(page: Page, seconds: float) -> None:
    """Until the player is playing and its position is beyond `seconds`."""
    page.wait_for_function(
        """(seconds) => {
            const video = document.getElementById("player");
            return !video.paused && video.currentTime > seconds;
        }""",
        arg=seconds,
        timeout=PLAYBACK_TIMEOUT_MS,
    )


def saved_position(page: Page, video_id: str) -> float | None:
    answer = page.request.get(f"/api/videos/{video_id}")
    assert answer.ok, f"GET /api/videos/{video_id}: HTTP {answer.status} {answer.text()}"
    return answer.json()["userProgress"]


def test_uploaded_video_is_followed_live_to_ready_then_plays_switches_quality_and_resumes(
    page: Page, live_server: LiveServer, console: list[str], long_clip: Path
) -> None:
    with reported(live_server, console):
        set_up_admin(page, live_server, ADMIN_EMAIL, ADMIN_PASSWORD)

        # --- upload: the form sends the file, registers it, and opens "My videos" ----
        page.goto("/upload")
        page.set_input_files("#file", long_clip)
        expect(page.locator("#file-name")).to_contain_text("holiday.mp4")
        page.fill("#title", "Holiday by the sea")
        page.fill("#description", "Waves, mostly.")
        page.click("#upload-submit")
        expect(page).to_have_url(url_is(live_server, "/videos"), timeout=30_000)

        # --- "My videos" follows the processing live, without reloading --------------
        page.evaluate("window.__marker = 1")  # a reload or navigation would clear it
        row = page.locator("tr[data-video-id]")
        expect(row).to_have_count(1)
        video_id = row.get_attribute("data-video-id")
        assert video_id
        status = row.locator("[data-role=status]")
        # Every label the badge shows from now on, in order.
        page.evaluate(
            """() => {
                const badge = document.querySelector("tr[data-video-id] [data-role=status]");
                window.__statuses = [badge.textContent.trim()];
                new MutationObserver(() => {
                    const text = badge.textContent.trim();
                    if (window.__statuses.at(-1) !== text) window.__statuses.push(text);
                }).observe(badge, { childList: true, characterData: true, subtree: true });
            }"""
        )
        expect(row.locator("[data-role=title]")).to_have_text("Holiday by the sea")
        expect(status).to_have_text("Ready", timeout=PROCESSING_TIMEOUT_MS)
        statuses = page.evaluate("window.__statuses")
        assert page.evaluate("window.__marker") == 1, "the page was reloaded"
        assert page.url == live_server.url("/videos")
        # Transcoding takes seconds, so the row arrived before Ready: Ready came live,
        # and every label shown was one of the video's states, in their order. (Whether
        # "Processing" is caught depends on the machine's speed: not asserted.)
        order = ["Uploaded", "Processing", "Ready"]
        assert statuses[0] != "Ready", statuses
        assert statuses[-1] == "Ready", statuses
        assert set(statuses) <= set(order), statuses
        assert statuses == sorted(statuses, key=order.index), statuses
        expect(row.locator("[data-role=progress-box]")).to_be_hidden()
        expect(row.locator("[data-role=note]")).to_have_text(
            "Ready to watch. Others see it once it is approved."
        )

        # --- the watch page plays the HLS stream through hls.js ----------------------
        row.locator("a[data-role=title]").click()
        expect(page).to_have_url(url_is(live_server, f"/watch/{video_id}"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Holiday by the sea")
        page.wait_for_function(
            "() => window.clipsyncPlayer && window.clipsyncPlayer.hls"
            " && window.clipsyncPlayer.hls.levels.length === 3"
        )
        quality = page.locator("#quality")
        expect(quality).to_be_enabled()
        expect(quality.locator("option")).to_have_text(
            [
                re.compile(r"^Auto( \(\d+p\))?$"),
                "360p",
                "240p",
                "144p",
            ]
        )
        # Muted playback needs no gesture (and Chromium runs with autoplay allowed).
        play_muted(page)
        wait_for_playback_past(page, 1.5)
        expect(page.locator("#player-error")).to_be_hidden()

        # --- choosing a quality switches hls.js to that rendition ---------------------
        lowest = quality.locator("option", has_text="144p").get_attribute("value")
        assert lowest is not None
        level = int(lowest)
        assert page.evaluate(f"window.clipsyncPlayer.hls.levels[{level}].height") == 144
        quality.select_option(lowest)
        page.wait_for_function(
            """(level) => {
                const { hls, video } = window.clipsyncPlayer;
                return hls.currentLevel === level && hls.loadLevel === level
                    && !hls.autoLevelEnabled && video.videoHeight === 144;
            }""",
            arg=level,
            timeout=PLAYBACK_TIMEOUT_MS,
        )
        expect(quality).to_have_value(lowest)
        wait_for_playback_past(page, current_time(page) + 1)

        # --- stopping part-way saves the position ------------------------------------
        page.evaluate(f"document.getElementById('player').currentTime = {RESUME_FROM}")
        wait_for_playback_past(page, RESUME_FROM + 1)
        page.evaluate("document.getElementById('player').pause()")
        stopped_at = current_time(page)
        deadline = time.monotonic() + 10
        saved = saved_position(page, video_id)
        while (saved is None or saved < RESUME_FROM - 1) and time.monotonic() < deadline:
            time.sleep(0.2)
            saved = saved_position(page, video_id)
        assert saved is not None, "the position was never saved"
        assert saved == pytest.approx(stopped_at, abs=0.5), (saved, stopped_at)

        # --- coming back resumes there -----------------------------------------------
        page.reload()
        expect(page).to_have_url(url_is(live_server, f"/watch/{video_id}"))
        player = page.locator("#player")
        assert float(player.get_attribute("data-resume-at") or 0) == pytest.approx(saved)
        notice = page.locator("#resume-notice")
        expect(notice).to_be_visible(timeout=PLAYBACK_TIMEOUT_MS)
        expect(notice).to_contain_text(f"Resumed at 0:{int(saved):02d}")
        page.wait_for_function(
            """(saved) => {
                const video = document.getElementById("player");
                return video.readyState >= 1 && Math.abs(video.currentTime - saved) < 2;
            }""",
            arg=saved,
            timeout=PLAYBACK_TIMEOUT_MS,
        )
        expect(page.locator("#player-error")).to_be_hidden()
