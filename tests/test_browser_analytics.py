"""Watch analytics in a real browser: a viewer watches part of a video, and the admin's
dashboard then shows that view, its watch time, and the retention curve dropping where
the viewer stopped.

Runs `clipsync serve` for real (see `browser.LiveServer`), whose job consumer really
transcodes the upload and whose analytics backend (the default, SQLite) really writes
the events. The admin is set up on /setup in the browser; the upload, its approval and
the viewer's account go through the JSON API (as a script would). The viewer's page
sends its events with the player's own tracker (`static/js/analytics.js`).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
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
from clips import FFMPEG, run
from playwright.sync_api import Browser, Page, Response, expect

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
VIEWER_EMAIL = "viewer@example.org"
PASSWORD = "correct horse battery"
TITLE = "Harbour at dawn"

# One small rendition with 1 s segments: ready seconds after the upload.
CONFIG = """
[transcoder]
ladder = [{ height = 144, bitrate = 150 }]
segment_seconds = 1
max_attempts = 1
"""
CLIP_SECONDS = 16
STOP_AFTER = 6.5  # the viewer pauses as soon as the video has played past this

PROCESSING_TIMEOUT_S = 45
PLAYBACK_TIMEOUT_MS = 20_000
FIGURES_TIMEOUT_S = 10  # the backend writes every second


@pytest.fixture
def live_server_toml() -> str:
    return CONFIG


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """180x320 (upright), 25 fps, H.264 and AAC, 16 s: long enough to stop well before
    the end; its rendition is 144 wide, 256 high, and reported as "144p"."""
    out = tmp_path_factory.mktemp("clips") / "harbour.mp4"
    run([
        FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=180x320:rate=25:duration={CLIP_SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={CLIP_SECONDS}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "64k", "-shortest", str(out),
    ])  # fmt: skip
    return out


# --- the API side ------------------------------------------------------------------------


def expect_ok(answer: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert answer.status_code == status, f"{answer.request.url}: {answer.text}"
    return answer.json()


def approved_video(http: httpx.Client, admin_token: str, clip: Path) -> dict[str, Any]:
    """Uploads `clip` as the admin, waits until it is transcoded, approves it."""
    with clip.open("rb") as fh:
        sent = http.post(
            "/api/videos/upload-local",
            files={"file": (clip.name, fh, "video/mp4")},
            headers=bearer(admin_token),
        )
    video_id = expect_ok(sent, 201)["videoId"]
    expect_ok(
        http.post(
            "/api/videos/register",
            json={"videoId": video_id, "title": TITLE, "description": "Boats, mostly."},
            headers=bearer(admin_token),
        ),
        201,
    )
    deadline = time.monotonic() + PROCESSING_TIMEOUT_S
    while True:
        video = expect_ok(http.get(f"/api/videos/{video_id}", headers=bearer(admin_token)))
        status = video["video"]["status"]
        if status == "READY":
            break
        assert status != "FAILED", f"the video failed: {video['video'].get('error')}"
        assert time.monotonic() < deadline, f"still {status} after {PROCESSING_TIMEOUT_S}s"
        time.sleep(0.25)
    approved = http.post(f"/api/admin/videos/{video_id}/approve", headers=bearer(admin_token))
    return expect_ok(approved)["video"]


def events_url(live_server: LiveServer) -> str:
    return live_server.url("/api/analytics/event")


def sent_types(response: Response) -> list[str]:
    """The types of the events a batch sent."""
    return [event["type"] for event in response.request.post_data_json or []]


# --- the dashboard -----------------------------------------------------------------------


def figure(page: Page, name: str) -> str:
    return page.locator(f"dd[data-figure={name}]").inner_text().strip()


def seconds_shown(text: str) -> int:
    """A duration as the dashboard writes it ("7 s", "1 min 05 s") in whole seconds."""
    match = re.fullmatch(r"(?:(\d+) min )?(\d+) s", text)
    assert match, f"not a duration: {text!r}"
    return int(match[1] or 0) * 60 + int(match[2])


def retention(page: Page) -> dict[int, float]:
    """The retention table: share still watching at each point (percent of the video)."""
    rows = page.evaluate(
        """() => [...document.querySelectorAll("#retention-table tr[data-percent]")].map(
            (row) => [row.dataset.percent, row.querySelector("td[data-share]").dataset.share]
        )"""
    )
    return {int(percent): float(share) for percent, share in rows}


def video_figures_when_counted(page: Page, video_id: str) -> None:
    """Opens the video's dashboard, reloading until the view is counted."""
    deadline = time.monotonic() + FIGURES_TIMEOUT_S
    while True:
        page.goto(f"/analytics/videos/{video_id}")
        expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
        if figure(page, "views") != "0" or time.monotonic() > deadline:
            return
        time.sleep(0.3)


# --- the test ------------------------------------------------------------------------------


def test_a_partial_view_shows_on_the_dashboard_with_its_watch_time_and_retention_drop(
    page: Page, browser: Browser, live_server: LiveServer, clip: Path
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
            login = {"email": ADMIN_EMAIL, "password": PASSWORD}
            admin_token = expect_ok(http.post("/api/auth/login", json=login))["token"]
            video = approved_video(http, admin_token, clip)
            viewer = {"email": VIEWER_EMAIL, "password": PASSWORD}
            expect_ok(http.post("/api/auth/register", json=viewer), 201)
        video_id = video["id"]
        duration = float(video["duration"])
        assert duration == pytest.approx(CLIP_SECONDS, abs=0.5)

        # --- the viewer watches from the start and stops part-way ---------------------
        context = browser.new_context(base_url=live_server.base_url)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        watching = watcher.watch(context.new_page())
        batches: list[Response] = []  # every batch of events the page sends
        context.on(
            "response",
            lambda r: batches.append(r) if r.url.startswith(events_url(live_server)) else None,
        )
        sign_in(watching, live_server, VIEWER_EMAIL, PASSWORD)
        watching.goto(f"/watch/{video_id}")
        expect(watching.get_by_role("heading", level=1)).to_have_text(TITLE)
        watching.wait_for_function(
            "() => window.clipsyncAnalytics && window.clipsyncPlayer"
            " && window.clipsyncPlayer.hls && window.clipsyncPlayer.hls.levels.length > 0"
        )
        assert watching.evaluate("document.getElementById('player').currentTime") == 0
        # Muted playback needs no gesture (and Chromium runs with autoplay allowed).
        play_muted(watching)
        watching.wait_for_function(
            """(seconds) => {
                const video = document.getElementById("player");
                if (video.paused || video.currentTime <= seconds) return false;
                video.pause();
                return true;
            }""",
            arg=STOP_AFTER,
            polling=50,
            timeout=PLAYBACK_TIMEOUT_MS,
        )
        stopped_at = watching.evaluate("document.getElementById('player').currentTime")
        assert STOP_AFTER < stopped_at < STOP_AFTER + 1.5, stopped_at
        expect(watching.locator("#player-error")).to_be_hidden()
        # Send what is queued now rather than at the next 10 s tick, and wait until the
        # server has taken the PAUSE (the tick may have sent it already).
        watching.evaluate("window.clipsyncAnalytics.flush()")
        deadline = time.monotonic() + FIGURES_TIMEOUT_S
        while not any("PAUSE" in sent_types(r) for r in batches):
            assert time.monotonic() < deadline, [sent_types(r) for r in batches]
            watching.wait_for_timeout(100)
        for batch in batches:
            answer = batch.json()
            assert batch.status == 200 and answer["rejected"] == [], answer
        # Named by the short side, as the quality menu names it: never "256p".
        renditions = {e["rendition"] for r in batches for e in r.request.post_data_json or []}
        assert renditions - {""} == {"144p"}, renditions
        context.close()

        # --- the admin's dashboard for the video ------------------------------------------
        video_figures_when_counted(page, video_id)
        assert figure(page, "views") == "1"
        assert figure(page, "uniqueViewers") == "1"
        watch_time = seconds_shown(figure(page, "watchTime"))
        assert abs(watch_time - stopped_at) <= 2, (figure(page, "watchTime"), stopped_at)
        assert abs(seconds_shown(figure(page, "averageViewDuration")) - stopped_at) <= 2
        assert figure(page, "completionRate") == "0 %"

        shares = retention(page)
        assert sorted(shares) == list(range(0, 101, 5)), shares
        assert shares[0] == 1.0 and shares[25] == 1.0, shares
        assert all(shares[p] == 0.0 for p in range(60, 101, 5)), shares
        points = [shares[p] for p in range(0, 101, 5)]
        assert points == sorted(points, reverse=True), points
        # It drops exactly where they stopped (give or take the half second a tick takes).
        stopped_percent = stopped_at / duration * 100
        for percent, share in shares.items():
            if percent < stopped_percent - 3:
                assert share == 1.0, (percent, shares, stopped_at)
            elif percent > stopped_percent + 3:
                assert share == 0.0, (percent, shares, stopped_at)
        page.get_by_text("Table", exact=True).click()  # the retention table, as a person opens it
        expect(page.locator("#retention-table tr[data-percent='0'] td")).to_have_text(
            ["0 %", "100 %"]
        )
        expect(page.locator("#retention-table tr[data-percent='100'] td")).to_have_text(
            ["100 %", "0 %"]
        )

        # --- and the overview lists it among the top videos ------------------------------
        page.get_by_role("link", name="← All videos").click()
        expect(page).to_have_url(url_is(live_server, "/analytics"))
        assert figure(page, "views") == "1"
        row = page.locator(f"#top-videos tr[data-video-id='{video_id}']")
        expect(row.get_by_role("link")).to_have_text(TITLE)
        expect(row.locator("td").nth(1)).to_have_text("1")
        assert abs(seconds_shown(row.locator("td").nth(2).inner_text()) - stopped_at) <= 2
