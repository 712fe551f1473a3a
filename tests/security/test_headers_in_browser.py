"""Finding 5 in Chromium: the pages work under the Content-Security-Policy, and Back
after signing out does not show a private page again.

A real `clipsync serve` (its job consumer really transcodes the clip) and headless
Chromium. Every violation of the policy is collected (the browser's own console
report and the `securitypolicyviolation` event); a page that needs something the
policy blocks fails the test even where the page still looks right.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from browser import LiveServer, Watcher, play_muted, reported, set_up_admin, url_is
from clients import bearer
from clips import FFMPEG, run
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
ADMIN_PASSWORD = "correct horse battery"
CLIP_SECONDS = 4
PROCESSING_TIMEOUT_S = 90
PLAYBACK_TIMEOUT_MS = 20_000
# Reports each violation to the console, so it is seen even when the browser's own
# message is worded differently. Added by Playwright, outside the page's policy.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


@pytest.fixture
def live_server_toml() -> str:
    return """
[transcoder]
ladder = [{ height = 144, bitrate = 150 }]
segment_seconds = 1
max_attempts = 1
"""


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clips") / "policy.mp4"
    run([
        FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate=25:duration={CLIP_SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={CLIP_SECONDS}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", str(out),
    ])  # fmt: skip
    return out


def ready_video(live_server: LiveServer, clip: Path) -> str:
    """Upload `clip` as the admin through the API; its id once it is READY."""
    with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
        signed_in = http.post(
            "/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        headers = bearer(signed_in.json()["token"])
        with clip.open("rb") as fh:
            uploaded = http.post(
                "/api/videos/upload-local",
                files={"file": (clip.name, fh, "video/mp4")},
                headers=headers,
            )
        assert uploaded.status_code == 201, uploaded.text
        video_id = uploaded.json()["videoId"]
        registered = http.post(
            "/api/videos/register",
            json={"videoId": video_id, "title": "Under the policy", "description": "x"},
            headers=headers,
        )
        assert registered.status_code in (200, 201), registered.text
        deadline = time.monotonic() + PROCESSING_TIMEOUT_S
        while True:
            answer = http.get(f"/api/videos/{video_id}", headers=headers).json()
            status = answer["video"]["status"]
            if status == "READY":
                return video_id
            assert status != "FAILED", f"the clip failed to transcode{live_server.log_tail()}"
            assert time.monotonic() < deadline, f"still {status}{live_server.log_tail()}"
            time.sleep(0.5)


def test_every_page_and_the_player_work_under_the_content_security_policy(
    page: Page, live_server: LiveServer, clip: Path
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    page.add_init_script(REPORT_VIOLATIONS)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, ADMIN_PASSWORD)
        video_id = ready_video(live_server, clip)

        for path in (
            "/",
            "/upload",
            "/videos",
            "/analytics",
            f"/analytics/videos/{video_id}",
            "/admin",
            "/admin/users",
            "/admin/invites",
            "/admin/audit",
            "/-/plugins",
        ):
            answer = page.goto(path)
            assert answer is not None and answer.ok, f"{path}: {answer and answer.status}"
            assert "content-security-policy" in answer.headers, path

        # The player: hls.js through Media Source Extensions (a blob: URL), the
        # poster and the seek-preview sprite, all allowed by the policy.
        page.goto(f"/watch/{video_id}")
        page.wait_for_function("() => window.clipsyncPlayer && window.clipsyncPlayer.hls")
        play_muted(page)
        page.wait_for_function(
            "() => document.getElementById('player').currentTime > 1",
            timeout=PLAYBACK_TIMEOUT_MS,
        )
        assert page.evaluate("document.getElementById('player').src").startswith("blob:")
        expect(page.locator("#player-error")).to_be_hidden()
        violations = [
            line
            for line in watcher.console
            if "Content Security Policy" in line or "CSP violation" in line
        ]
        assert not violations, "the policy blocked something:\n" + "\n".join(violations)


def test_back_after_signing_out_does_not_show_the_private_page_again(
    page: Page, live_server: LiveServer
) -> None:
    set_up_admin(page, live_server, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.goto("/videos")
    signed_in_as = page.locator(".nav-user")
    expect(signed_in_as).to_have_attribute("title", f"Signed in as {ADMIN_EMAIL}")

    page.get_by_role("banner").get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(url_is(live_server, "/login"))
    page.go_back()
    # The browser asks again (nothing was stored), and the server sends it to sign in.
    expect(page).to_have_url(url_is(live_server, "/login"))
    expect(signed_in_as).to_have_count(0)
