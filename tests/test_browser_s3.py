"""S3 storage in a real browser: a resumable upload through the page, paused, resumed,
continued after a reload, then watched with every segment fetched from the S3 endpoint.

`clipsync serve` runs with `[storage] backend = "s3"` against moto's standalone S3
server. moto 5.2 answers presigned requests only when it does not enforce signatures
(see `services.S3Server`), so this module starts its own server with
``enforce_auth=False``; the refusal of unsigned and expired URLs is tested in
tests/test_s3_playback.py. The browser's upload is slowed down (Chromium's network
emulation) so that pausing, reloading and resuming happen mid-file.
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import clipsync_storage_s3 as s3
import pytest
from browser import LiveServer, Watcher, play_muted, reported, set_up_admin, url_is
from clips import FFMPEG, run
from playwright.sync_api import Browser, Page, Request, Response, Route, expect
from services import LOOPBACK, RadosGwServer, S3Server, free_port
from test_storage_s3 import new_bucket, probe, s3_config

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
ADMIN_PASSWORD = "correct horse battery"
CLIP_SECONDS = 8
# Bytes per second the browser may send: the clip takes several seconds to upload.
UPLOAD_BYTES_PER_SECOND = 400_000
PROCESSING_TIMEOUT_MS = 90_000
PLAYBACK_TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def open_s3_server() -> Iterator[S3Server]:
    with S3Server(enforce_auth=False) as server:
        yield server


@pytest.fixture
def live_server_toml(open_s3_server: S3Server) -> str:
    return f"""
[storage]
backend = "s3"

[plugins.storage_s3]
endpoint = "{open_s3_server.endpoint}"
secure = false
region = "{open_s3_server.region}"
access_key = "clipsync"
secret_key = "clipsync-secret"
bucket = "browser-test"

[transcoder]
ladder = [{{ height = 144, bitrate = 150 }}, {{ height = 240, bitrate = 300 }}]
segment_seconds = 1
max_attempts = 1
"""


@pytest.fixture(scope="module")
def big_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short noisy clip at 3 Mbit/s: about 3 MB, several seconds to upload here."""
    out = tmp_path_factory.mktemp("clips") / "harbour.mp4"
    run([
        FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={CLIP_SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=330:duration={CLIP_SECONDS}",
        "-vf", "noise=alls=10", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "3M",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(out),
    ])  # fmt: skip
    assert out.stat().st_size > 3 * UPLOAD_BYTES_PER_SECOND, out.stat().st_size
    return out


def throttle_uploads(page: Page) -> None:
    session = page.context.new_cdp_session(page)
    session.send("Network.enable")
    session.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": UPLOAD_BYTES_PER_SECOND,
        },
    )


def progress(page: Page) -> int:
    return int(page.evaluate("document.getElementById('upload-progress').value"))


def wait_for_progress(page: Page, percent: int) -> None:
    page.wait_for_function(
        "(percent) => document.getElementById('upload-progress').value >= percent",
        arg=percent,
        timeout=30_000,
    )


def stored_offset(page: Page, upload_url: str) -> int:
    answer = page.request.fetch(upload_url, method="HEAD", headers={"Tus-Resumable": "1.0.0"})
    assert answer.status == 200, f"HEAD {upload_url}: {answer.status}"
    return int(answer.headers["upload-offset"])


def settled_offset(page: Page, upload_url: str) -> int:
    """The server's offset once it has noticed that the paused request was dropped."""
    deadline = time.monotonic() + 10
    last = stored_offset(page, upload_url)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = stored_offset(page, upload_url)
        if now == last:
            return now
        last = now
    raise AssertionError(f"the upload's offset kept moving while paused (now {last})")


def watch_until(page: Page, video_id: str, seconds: float) -> None:
    """Open the watch page, play muted, and wait until playback is past `seconds`."""
    page.goto(f"/watch/{video_id}")
    page.wait_for_function("() => window.clipsyncPlayer && window.clipsyncPlayer.hls")
    play_muted(page)
    page.wait_for_function(
        "(seconds) => { const v = document.getElementById('player');"
        " return !v.paused && v.currentTime > seconds; }",
        arg=seconds,
        timeout=PLAYBACK_TIMEOUT_MS,
    )
    expect(page.locator("#player-error")).to_be_hidden()


def test_upload_to_s3_pauses_resumes_survives_a_reload_and_plays_from_the_bucket(
    page: Page, live_server: LiveServer, open_s3_server: S3Server, big_clip: Path
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    tus_requests: list[str] = []

    def note(request: Request) -> None:
        if "/api/uploads/" in request.url:
            tus_requests.append(f"{request.method} {request.url}")

    page.context.on("request", note)
    size = big_clip.stat().st_size

    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, ADMIN_PASSWORD)
        throttle_uploads(page)

        # --- start, pause part-way: the server keeps what it received --------------------
        page.goto("/upload")
        page.set_input_files("#file", big_clip)
        page.fill("#title", "Harbour at night")
        page.click("#upload-submit")
        pause = page.locator("#upload-pause")
        expect(pause).to_be_visible()
        wait_for_progress(page, 15)
        pause.click()
        expect(pause).to_have_text("Resume")
        expect(page.locator("#upload-status")).to_contain_text("Paused")
        created = [r for r in tus_requests if r.startswith("POST ")]
        assert len(created) == 1, tus_requests
        upload_url = next(r.split(" ", 1)[1] for r in tus_requests if r.startswith("PATCH "))
        paused_at = settled_offset(page, upload_url)
        assert 0 < paused_at < size, (paused_at, size)

        # --- resume, then leave the page mid-upload ---------------------------------------
        pause.click()
        expect(pause).to_have_text("Pause")
        page.wait_for_function(
            "(percent) => document.getElementById('upload-progress').value > percent",
            arg=progress(page) + 10,
            timeout=30_000,
        )
        pause.click()
        expect(pause).to_have_text("Resume")
        assert settled_offset(page, upload_url) > paused_at

        # --- after a reload, choosing the same file continues where it stopped --------
        page.reload()
        notice = page.locator("#upload-unfinished")
        expect(notice).to_be_visible()
        expect(notice).to_contain_text("harbour.mp4")
        page.set_input_files("#file", big_clip)
        expect(page.locator("#title")).to_have_value("Harbour at night")
        tus_requests.clear()
        page.click("#upload-submit")
        expect(page).to_have_url(url_is(live_server, "/videos"), timeout=60_000)
        assert not [r for r in tus_requests if r.startswith("POST ")], tus_requests
        assert f"HEAD {upload_url}" in tus_requests, tus_requests
        assert page.evaluate("localStorage.getItem('clipsync.upload-draft')") is None

        # --- it is processed from the bucket and plays with segments from S3 ----------
        row = page.locator("tr[data-video-id]")
        expect(row).to_have_count(1)
        video_id = row.get_attribute("data-video-id")
        assert video_id and upload_url.rstrip("/").endswith(video_id)
        expect(row.locator("[data-role=status]")).to_have_text(
            "Ready", timeout=PROCESSING_TIMEOUT_MS
        )

        fetched: list[Response] = []
        page.context.on("response", lambda response: fetched.append(response))
        watch_until(page, video_id, 2)

        first_watch = list(fetched)

        # --- presigned URLs that expire mid-playback: the player signs afresh -------
        # hls.js reads a VOD playlist once; here the store refuses every segment from
        # the fourth on (as it would once the URLs expired) until the player loads
        # the stream from the app again, whose media playlists sign them anew. (A
        # switch to another rendition's playlist does not count: those URLs were
        # signed as long ago.)
        expired = {"on": True, "refused": 0, "playlists": 0}

        def store(route: Route) -> None:
            number = re.search(r"seg_(\d+)\.m4s", route.request.url)
            if expired["on"] and number and int(number.group(1)) >= 3:
                expired["refused"] += 1
                route.fulfill(status=403, body="Request has expired")
            else:
                route.continue_()

        def note_playlist(request: Request) -> None:
            if request.url.endswith("/master.m3u8") and expired["refused"]:
                expired["playlists"] += 1
                expired["on"] = False

        page.route(f"{open_s3_server.url}/**", store)
        page.on("request", note_playlist)
        watch_until(page, video_id, 5)
        assert expired["refused"] and expired["playlists"], expired
        page.unroute(f"{open_s3_server.url}/**")

    from_s3 = [r for r in first_watch if r.url.startswith(open_s3_server.url)]
    segments = [r for r in from_s3 if re.search(r"\.m4s(\?|$)", r.url)]
    assert segments, [r.url for r in first_watch]
    assert all(r.status == 200 for r in from_s3), [(r.status, r.url) for r in from_s3]
    assert all("X-Amz-Signature=" in r.url for r in from_s3)
    # Playlists come from the app (each one authorised); no segment passes through it.
    through_app = [r.url for r in first_watch if r.url.startswith(live_server.base_url)]
    assert any(u.endswith("/master.m3u8") for u in through_app), through_app
    assert not [u for u in through_app if ".m4s" in u], through_app


# --- CORS, as a browser meets it (Ceph's radosgw: moto lets every origin read) ---------


class _SitePage(BaseHTTPRequestHandler):
    """An empty page: the site's origin, for a script that fetches media from the store."""

    def do_GET(self) -> None:
        body = b"<!doctype html><title>ClipSync</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def site_origin() -> Iterator[str]:
    server = ThreadingHTTPServer((LOOPBACK, free_port()), _SitePage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


READ = """async (url) => {
    try {
        const response = await fetch(url);
        return `${response.status} ${await response.text()}`;
    } catch (error) {
        return `refused: ${error}`;
    }
}"""


def test_a_page_reads_presigned_media_only_once_the_bucket_allows_its_origin(
    browser: Browser, rgw_server: RadosGwServer, site_origin: str, tmp_path: Path, make_settings
) -> None:
    config = s3_config(rgw_server, new_bucket())
    assert probe(config, tmp_path, make_settings(storage={"playback": "proxy"})).ok
    storage = s3.S3Storage(config, tmp_path / "scratch")
    name = storage.object_name("videos/b/hls/360p/seg_00001.m4s")
    storage.client.put_object(storage.bucket, name, io.BytesIO(b"segment"), 7)
    url = storage.presigned_get("videos/b/hls/360p/seg_00001.m4s", 60)

    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(site_origin)
        # The store sends the bytes, but no CORS header: the browser keeps them from the page.
        assert page.evaluate(READ, url).startswith("refused: TypeError")
        # What ClipSync's start-up does with presigned playback and this public URL.
        settings = make_settings(server={"public_url": site_origin})
        assert probe(config, tmp_path, settings).ok
        assert page.evaluate(READ, url) == "200 segment"
    finally:
        context.close()
