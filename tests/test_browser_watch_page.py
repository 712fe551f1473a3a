"""The page around the player in a real browser: a time in the description seeks the
player, Share copies a `?t=` link, the embed page plays inside an iframe on an allowed
origin (and is refused on any other), and the original downloads when allowed and is
404 when not.

Runs `clipsync serve` for real (`browser.LiveServer`), which transcodes the upload,
and drives headless Chromium.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from browser import LiveServer, play_muted, set_up_admin, url_is
from clips import FFMPEG, run
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
ADMIN_PASSWORD = "correct horse battery"
CLIP_SECONDS = 12
PROCESSING_TIMEOUT_MS = 90_000
PLAYBACK_TIMEOUT_MS = 20_000


@pytest.fixture
def intranet() -> Iterator[tuple[dict[str, str], int]]:
    """A web server on loopback that answers each path with the HTML put in `pages`.

    A real server, not a routed answer: Chromium lets only a page that itself came
    from the local network frame a loopback address (Local Network Access). On
    127.0.0.1 it is another origin than ClipSync but the same site, so the
    SameSite=Lax session cookie goes with the iframe's request, as for an intranet
    page on a sibling host name; as "localhost" it is another site.
    """
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield pages, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def live_server_toml(tmp_path: Path) -> str:
    return """
[transcoder]
ladder = [{ height = 144, bitrate = 150 }]
segment_seconds = 1
max_attempts = 1

[sharing]
allow_download = true
embed_frame_ancestors = ["'self'", "http://127.0.0.1:*"]
"""


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clips") / "meeting.mp4"
    run([
        FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate=25:duration={CLIP_SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={CLIP_SECONDS}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "64k", "-shortest", str(out),
    ])  # fmt: skip
    return out


def refused(page: Page, frame: str, live_server: LiveServer) -> None:
    """The iframe `frame` shows nothing of ClipSync: the browser refused to frame it."""
    page.wait_for_timeout(1000)
    assert page.frame_locator(frame).locator("main, #embed-notice").count() == 0, frame
    element = page.locator(frame).element_handle()
    assert element is not None
    content = element.content_frame()
    assert content is not None and not content.url.startswith(live_server.base_url), content.url


def upload_ready(page: Page, live_server: LiveServer, clip: Path, description: str) -> str:
    page.goto("/upload")
    page.set_input_files("#file", clip)
    page.fill("#title", "Team meeting")
    page.fill("#description", description)
    page.click("#upload-submit")
    expect(page).to_have_url(url_is(live_server, "/videos"), timeout=30_000)
    row = page.locator("tr[data-video-id]")
    expect(row.locator("[data-role=status]")).to_have_text("Ready", timeout=PROCESSING_TIMEOUT_MS)
    video_id = row.get_attribute("data-video-id")
    assert video_id
    return video_id


def test_description_times_seek_share_copies_a_t_link_embed_plays_and_download(
    page: Page, live_server: LiveServer, clip: Path, intranet: tuple[dict[str, str], int]
) -> None:
    set_up_admin(page, live_server, ADMIN_EMAIL, ADMIN_PASSWORD)
    video_id = upload_ready(page, live_server, clip, "Agenda\n\n0:07 budget\n\n*thanks*")

    # --- a time in the description seeks the player; the page stays ----------------------
    page.goto(f"/watch/{video_id}")
    expect(page.locator("#player")).not_to_have_attribute("controls", "")
    assert page.evaluate("document.getElementById('player').hasAttribute('controls')") is False
    page.evaluate("document.getElementById('player').muted = true")
    link = page.locator("#video-description a.timestamp")
    expect(link).to_have_text("0:07")
    expect(page.locator("#video-description em")).to_have_text("thanks")
    link.click()
    page.wait_for_function(
        """() => {
            const v = document.getElementById("player");
            return v.currentTime >= 7 && !v.paused;
        }""",
        timeout=PLAYBACK_TIMEOUT_MS,
    )
    assert page.url == live_server.url(f"/watch/{video_id}")
    page.locator("#play-pause").click()  # ClipSync's own button pauses
    page.wait_for_function("() => document.getElementById('player').paused")
    at = int(page.evaluate("Math.floor(document.getElementById('player').currentTime)"))
    assert 7 <= at < CLIP_SECONDS

    # --- Share: copy the link, starting at the current time ----------------------------
    page.context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=live_server.base_url
    )
    page.locator("#share > summary").click()
    page.locator("#share-at-time").check()
    page.locator("#share-copy").click()
    expect(page.locator("#share-status")).to_have_text("Copied.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == live_server.url(f"/watch/{video_id}?t={at}")
    # Opening it starts there.
    page.goto(f"/watch/{video_id}?t=4")
    page.wait_for_function(
        """() => {
            const v = document.getElementById("player");
            return v.readyState >= 1 && Math.abs(v.currentTime - 4) < 0.6;
        }""",
        timeout=PLAYBACK_TIMEOUT_MS,
    )

    # --- download: the original, as uploaded ------------------------------------------
    page.goto(f"/watch/{video_id}")
    with page.expect_download() as download_info:
        page.locator("#download").click()
    download = download_info.value
    assert download.suggested_filename == "meeting.mp4"
    assert Path(download.path()).read_bytes() == clip.read_bytes()

    # --- the embed page plays inside an iframe on an allowed origin ---------------------
    pages, port = intranet
    embed_url = live_server.url(f"/embed/{video_id}")
    watch_url = live_server.url(f"/watch/{video_id}")
    pages["/news.html"] = (
        f'<!DOCTYPE html><title>Intranet</title><iframe id="f" src="{embed_url}" '
        'width="640" height="400" allow="fullscreen"></iframe>'
        f'<iframe id="w" src="{watch_url}"></iframe>'
    )
    page.goto(f"http://127.0.0.1:{port}/news.html")
    frame = page.frame_locator("#f")
    expect(frame.locator("#player")).to_have_attribute("data-video-id", video_id)
    embedded = next(f for f in page.frames if f.url.startswith(embed_url))
    play_muted(embedded)
    embedded.wait_for_function(
        """() => {
            const v = document.getElementById("player");
            return !v.paused && v.currentTime > 1;
        }""",
        timeout=PLAYBACK_TIMEOUT_MS,
    )
    # Only the embed page may be framed: the watch page, on the same allowed origin,
    # is refused by frame-ancestors and the frame holds the browser's error page.
    refused(page, "#w", live_server)

    # --- a page on an origin not in embed_frame_ancestors gets no embed ------------------
    pages["/elsewhere.html"] = (
        f'<!DOCTYPE html><title>Elsewhere</title><iframe id="f" src="{embed_url}"></iframe>'
    )
    page.goto(f"http://localhost:{port}/elsewhere.html")
    refused(page, "#f", live_server)

    # --- download refused once the uploader turns it off: 404 -------------------------
    with sqlite3.connect(live_server.data_dir / "clipsync.sqlite3") as db:
        db.execute("UPDATE videos SET download_allowed = 0 WHERE id = ?", (video_id,))
    page.goto(f"/watch/{video_id}")
    expect(page.locator("#download")).to_have_count(0)
    answer = page.request.get(f"/videos/{video_id}/download")
    assert answer.status == 404
