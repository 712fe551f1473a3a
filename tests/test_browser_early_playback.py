"""Watch while it transcodes, in a real browser: the uploader opens the watch page of a
video still PROCESSING, the player plays its growing (EVENT) playlists from the start,
and when the video becomes READY the player moves to the finished playlists at the
same position, every level of the ladder in the quality menu.

`clipsync serve` transcodes with its own job consumer; the slower preset and a 36 s
source keep the video PROCESSING for a good part of the test.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from browser import LiveServer, Watcher, reported, set_up_admin
from clients import bearer
from clips import make_long_clip
from playwright.sync_api import Page, expect
from test_browser_moderation import PASSWORD, log_in
from test_browser_player import ADMIN_EMAIL, wait_until

pytestmark = pytest.mark.browser

SECONDS = 36

CONFIG = """
[transcoder]
ladder = [
    { height = 144, bitrate = 150 },
    { height = 240, bitrate = 300 },
    { height = 360, bitrate = 600 },
]
segment_seconds = 1
max_attempts = 1

[plugins.transcoder_cpu]
preset = "medium"
"""


@pytest.fixture
def live_server_toml() -> str:
    return CONFIG


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clips") / "still-transcoding.mp4"
    return make_long_clip(out, SECONDS)


def upload(http: httpx.Client, token: str, clip: Path) -> str:
    with clip.open("rb") as fh:
        sent = http.post(
            "/api/videos/upload-local",
            files={"file": (clip.name, fh, "video/mp4")},
            headers=bearer(token),
        )
    assert sent.status_code == 201, sent.text
    registered = http.post(
        "/api/videos/register",
        json={"videoId": sent.json()["videoId"], "title": "Still transcoding"},
        headers=bearer(token),
    )
    assert registered.status_code == 201, registered.text
    return registered.json()["video"]["id"]


def status(http: httpx.Client, token: str, video_id: str) -> str:
    return http.get(f"/api/videos/{video_id}", headers=bearer(token)).json()["video"]["status"]


LEVELS = """() => {
    const hls = window.clipsyncPlayer.hls;
    const level = hls.levels[hls.currentLevel] || hls.levels[0];
    return {
        count: hls.levels.length,
        live: Boolean(level && level.details && level.details.live),
        menu: document.querySelectorAll('#quality option').length,
    };
}"""


def test_the_uploader_plays_a_video_while_it_transcodes_and_ends_on_the_full_ladder(
    page: Page, live_server: LiveServer, clip: Path
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with (
        reported(live_server, watcher),
        httpx.Client(base_url=live_server.base_url, timeout=30) as http,
    ):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        token = log_in(http, ADMIN_EMAIL)
        video_id = upload(http, token, clip)
        page.goto(f"/watch/{video_id}")
        expect(page.locator("#early-note")).to_have_text(
            "Still transcoding: you can watch what is ready so far."
        )
        # The page waits for the first seconds (no reload), then plays them muted.
        page.wait_for_function(
            "() => { const v = document.getElementById('player'); return v.readyState >= 1; }",
            timeout=30_000,
        )
        page.evaluate(
            "() => { const v = document.getElementById('player'); v.muted = true; v.play(); }"
        )
        wait_until(page, "!v.paused && v.currentTime > 1.5", timeout=30_000)
        assert status(http, token, video_id) == "PROCESSING", "it played only once READY"
        growing = page.evaluate(LEVELS)
        assert growing["live"], growing  # an EVENT playlist, still growing
        assert growing["count"] == 3, growing
        position = page.evaluate("() => document.getElementById('player').currentTime")

        deadline = time.monotonic() + 120
        while status(http, token, video_id) != "READY":
            assert time.monotonic() < deadline, "the transcode did not finish"
            time.sleep(0.5)
        # The live status event switches the player to the finished playlists.
        page.wait_for_function(
            "() => document.getElementById('early-playback').dataset.status === 'READY'",
            timeout=20_000,
        )
        page.wait_for_function(
            "() => { const h = window.clipsyncPlayer.hls; const l = h.levels[h.currentLevel];"
            " return h.levels.length === 3 && l && l.details && !l.details.live; }",
            timeout=20_000,
        )
        wait_until(page, f"!v.paused && v.currentTime > {position + 1}", timeout=20_000)
        finished = page.evaluate(LEVELS)
        assert finished == {"count": 3, "live": False, "menu": 4}, finished  # Auto + 3
        # The finished master's measured bandwidths, not the early one's from the ladder.
        master = http.get(f"/hls/{video_id}/master.m3u8", headers=bearer(token)).text
        measured = sorted(int(n) for n in re.findall(r"[:,]BANDWIDTH=(\d+)", master))
        playing = page.evaluate("() => window.clipsyncPlayer.hls.levels.map((l) => l.bitrate)")
        assert sorted(playing) == measured, (playing, master)
        expect(page.locator("#early-note")).to_have_text(
            "Transcoding finished: every quality is available."
        )
        assert not [line for line in watcher.console if "pageerror" in line], watcher.console
