"""A chunked video in a real browser: hls.js plays across the joins of its chunks.

`clipsync serve` transcodes a 12 s upload as three 4 s chunks (its own job consumer
runs the chunks one after another), and Chromium plays it through both joins, with
one continuous buffered range (no gap at a join) and no player error.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from browser import LiveServer, Watcher, reported, set_up_admin
from clients import bearer
from clips import make_long_clip
from playwright.sync_api import Page
from test_browser_moderation import PASSWORD, log_in
from test_browser_player import ADMIN_EMAIL, upload_ready, wait_for_manifest, wait_until

pytestmark = pytest.mark.browser

SECONDS = 12

CONFIG = """
[transcoder]
ladder = [{ height = 144, bitrate = 150 }, { height = 240, bitrate = 300 }]
segment_seconds = 2
chunk_seconds = 4
max_attempts = 1
"""


@pytest.fixture
def live_server_toml() -> str:
    return CONFIG


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clips") / "three-chunks.mp4"
    return make_long_clip(out, SECONDS)


def test_a_chunked_video_plays_across_its_joins(
    page: Page, live_server: LiveServer, clip: Path
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        video_id = upload_ready(live_server, clip, "Three chunks")
        with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
            token = log_in(http, ADMIN_EMAIL)
            video = http.get(f"/api/videos/{video_id}", headers=bearer(token)).json()["video"]
        assert video["chunks"] == 3, video
        page.goto(f"/watch/{video_id}")
        wait_for_manifest(page, levels=2)
        page.evaluate(
            """() => {
                window.playerErrors = [];
                window.clipsyncPlayer.hls.on("hlsError", (_, data) =>
                    window.playerErrors.push(data.details + (data.fatal ? " (fatal)" : "")));
                const v = document.getElementById("player");
                v.muted = true;
                v.currentTime = 3;
                v.play();
            }"""
        )
        # Through the joins at 4 s and at 8 s, playing (not seeking) across both.
        wait_until(page, "!v.paused && v.currentTime > 9", timeout=30_000)
        state = page.evaluate(
            """() => {
                const v = document.getElementById("player");
                const ranges = [];
                for (let i = 0; i < v.buffered.length; i++)
                    ranges.push([v.buffered.start(i), v.buffered.end(i)]);
                return {ranges, errors: window.playerErrors, decoded:
                    v.getVideoPlaybackQuality().totalVideoFrames,
                    dropped: v.getVideoPlaybackQuality().droppedVideoFrames};
            }"""
        )
        assert state["errors"] == [], state
        # One buffered range from before the first join to past the second: no gap.
        assert len(state["ranges"]) == 1, state
        start, end = state["ranges"][0]
        assert start <= 3.1 and end >= 9, state
        assert state["decoded"] > 100, state
