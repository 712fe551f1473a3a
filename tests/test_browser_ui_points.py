"""Three points of the web UI, checked in headless Chromium against a real `clipsync serve`.

- The analytics tables keep their column labels on a phone (375 px wide).
- Sizes read in binary units (GiB, MiB, KiB) everywhere: the upload page's limit, the
  sizes in "My videos", and the browser's `formatBytes` says exactly what the server's
  `format_size` says (tests/test_sizes.py checks the Python side).
- A paused upload shows that it is paused and how to resume, not a disabled
  "Uploading…" button.

The videos and the watch events go in through the JSON API (as a script would); the
pages are read as a person reads them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import LiveServer, Watcher, reported, set_up_admin
from clients import bearer
from clips import FFMPEG, run
from playwright.sync_api import Locator, Page, expect
from test_sizes import SAMPLES

from clipsync.sizes import format_size

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
PASSWORD = "correct horse battery"
TITLE = "Harbour at dawn, seen from the old lighthouse on the northern pier"
PHONE = {"width": 375, "height": 740}

# One small rendition: the transcoding the uploads start stays cheap.
CONFIG = """
[transcoder]
ladder = [{ height = 144, bitrate = 150 }]
segment_seconds = 1
max_attempts = 1
"""
CLIP_SECONDS = 4
FIGURES_TIMEOUT_S = 10  # the SQLite analytics backend writes every second
# Bytes per second the browser may send: the file takes several seconds to upload.
UPLOAD_BYTES_PER_SECOND = 400_000
UPLOAD_SIZE = 4 * 1024 * 1024


@pytest.fixture
def live_server_toml() -> str:
    return CONFIG


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clips") / "harbour.mp4"
    run([
        FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate=25:duration={CLIP_SECONDS}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(out),
    ])  # fmt: skip
    return out


def expect_ok(answer: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert answer.status_code == status, f"{answer.request.url}: {answer.text}"
    return answer.json()


def admin_with_a_video(page: Page, live_server: LiveServer, clip: Path) -> tuple[str, str]:
    """Sets up the admin (the page is then signed in), uploads and registers `clip`.

    Returns the admin's API token and the video's id. The video need not be
    transcoded: its owner may report watching it as soon as it is registered.
    """
    set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
    with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
        login = {"email": ADMIN_EMAIL, "password": PASSWORD}
        token = expect_ok(http.post("/api/auth/login", json=login))["token"]
        with clip.open("rb") as fh:
            sent = http.post(
                "/api/videos/upload-local",
                files={"file": (clip.name, fh, "video/mp4")},
                headers=bearer(token),
            )
        video_id = expect_ok(sent, 201)["videoId"]
        registration = {"videoId": video_id, "title": TITLE, "description": ""}
        expect_ok(http.post("/api/videos/register", json=registration, headers=bearer(token)), 201)
    return token, video_id


# --- the analytics tables on a phone ---------------------------------------------------


def record_a_view(live_server: LiveServer, token: str, video_id: str) -> None:
    events = [
        {"type": "PLAY", "videoId": video_id, "sessionId": "phone-1", "position": 0},
        {
            "type": "PROGRESS",
            "videoId": video_id,
            "sessionId": "phone-1",
            "position": 3,
            "played": 3,
        },
    ]
    with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
        answer = expect_ok(http.post("/api/analytics/event", json=events, headers=bearer(token)))
    assert answer == {"accepted": 2, "rejected": []}, answer


def overview_when_counted(page: Page) -> None:
    """Opens /analytics, reloading until the view is counted."""
    deadline = time.monotonic() + FIGURES_TIMEOUT_S
    while True:
        page.goto("/analytics")
        views = page.locator("dd[data-figure=views]").inner_text().strip()
        if views != "0" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    expect(page.locator("dd[data-figure=views]")).to_have_text("1")


# Where each column label really is on screen: what a person sees at its centre (a
# label clipped or moved out of sight is not what the page shows there), and whether
# it stands over its own column, within the phone's width.
LABELS_ON_SCREEN = """(table) => {
    const firstRow = table.tBodies[0].rows[0];
    return [...table.tHead.rows[0].cells].map((th, column) => {
        th.scrollIntoView({ block: "center", inline: "nearest" });
        const box = th.getBoundingClientRect();
        const seen = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
        const cell = firstRow.cells[column].getBoundingClientRect();
        return {
            label: th.textContent.trim(),
            shown: Boolean(seen) && th.contains(seen),
            whole: th.scrollWidth <= th.clientWidth && box.width > 0,
            overColumn: box.left < cell.right && cell.left < box.right,
            withinPhone: box.left >= 0 && box.right <= window.innerWidth,
        };
    });
}"""


def table_of(page: Page, heading: str) -> Locator:
    """The table of the page's section with this heading."""
    section = page.locator("section").filter(has=page.get_by_role("heading", name=heading))
    return section.locator("table")


def assert_labels_shown(table: Locator, labels: list[str]) -> None:
    expect(table.locator("thead th")).to_have_text(labels)
    for column in table.evaluate(LABELS_ON_SCREEN):
        assert column == {
            "label": column["label"],
            "shown": True,
            "whole": True,
            "overColumn": True,
            "withinPhone": True,
        }, column


def test_analytics_tables_keep_their_column_labels_on_a_phone(
    page: Page, live_server: LiveServer, clip: Path
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    page.set_viewport_size(PHONE)
    with reported(live_server, watcher):
        token, video_id = admin_with_a_video(page, live_server, clip)
        record_a_view(live_server, token, video_id)
        overview_when_counted(page)

        page.get_by_text("Table", exact=True).click()  # the day-by-day table, as a person opens it
        assert_labels_shown(
            table_of(page, "Day by day"), ["Day", "Views", "Watch time", "Active users"]
        )
        top = table_of(page, "Top videos")
        expect(top.locator(f"tr[data-video-id='{video_id}'] a")).to_have_text(TITLE)
        assert_labels_shown(top, ["Video", "Views", "Watch time"])
        assert_labels_shown(
            table_of(page, "By category"),
            ["Category", "Views", "Unique viewers", "Watch time", "Completion"],
        )
        # Nothing makes the page itself wider than the phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        page.goto(f"/analytics/videos/{video_id}")
        page.get_by_text("Table", exact=True).click()
        assert_labels_shown(
            table_of(page, "Audience retention"), ["Point of the video", "Still watching"]
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


# --- sizes in binary units ------------------------------------------------------------------


def test_sizes_read_in_binary_units_on_the_pages_and_in_the_browser(
    page: Page, live_server: LiveServer, clip: Path
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        admin_with_a_video(page, live_server, clip)

        page.goto("/upload")
        # [uploads] max_size is 2 GiB by default: not "2.1 GB".
        expect(page.locator("#file-hint")).to_contain_text("up to 2 GiB.")

        shown = page.evaluate(
            "(sizes) => sizes.map((size) => window.ClipSync.formatBytes(size))", list(SAMPLES)
        )
        assert dict(zip(SAMPLES, shown, strict=True)) == SAMPLES
        # Choosing a file shows its size the same way.
        page.set_input_files("#file", clip)
        size = clip.stat().st_size
        assert size >= 1024, size  # so that a unit is written, not bytes
        expect(page.locator("#file-name")).to_have_text(f"{clip.name} ({format_size(size)})")

        page.goto("/videos")
        row_size = page.locator("#video-rows [data-role=size]")
        expect(row_size).to_have_text(format_size(size))
        assert row_size.inner_text().endswith(" KiB"), row_size.inner_text()


# --- a paused upload --------------------------------------------------------------------


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


def test_a_paused_upload_says_it_is_paused_and_how_to_resume(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    # Only the bytes matter until the video is registered, and it never is here.
    big = tmp_path / "long take.mp4"
    big.write_bytes(bytes(range(256)) * (UPLOAD_SIZE // 256))
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        throttle_uploads(page)
        page.goto("/upload")
        page.set_input_files("#file", big)
        form = page.locator("#upload-form")
        submit = page.locator("#upload-submit")
        pause = page.locator("#upload-pause")
        status = page.locator("#upload-status")

        submit.click()
        expect(submit).to_have_text("Uploading…")
        expect(form).to_have_attribute("aria-busy", "true")
        page.wait_for_function(
            "() => document.getElementById('upload-progress').value >= 10", timeout=30_000
        )
        pause.click()

        # Paused: said on the main button, the toggle offers Resume, the text says how.
        expect(submit).to_have_text("Upload paused")
        expect(submit).to_be_disabled()
        expect(pause).to_have_text("Resume")
        expect(pause).to_have_attribute("aria-pressed", "true")
        expect(pause).to_be_enabled()
        expect(form).to_have_attribute("aria-busy", "false")
        expect(form).to_contain_class("is-paused")
        expect(status).to_contain_text("Paused at ")
        expect(status).to_contain_text(f"of {format_size(UPLOAD_SIZE)} sent")
        expect(status).to_contain_text("Choose Resume to continue, or Cancel to stop.")

        pause.click()
        expect(submit).to_have_text("Uploading…")
        expect(pause).to_have_text("Pause")
        expect(pause).to_have_attribute("aria-pressed", "false")
        expect(form).to_have_attribute("aria-busy", "true")
        expect(form).not_to_contain_class("is-paused")

        # Pausing again, then cancelling, leaves the form ready to send again.
        pause.click()
        expect(submit).to_have_text("Upload paused")
        page.locator("#upload-cancel").click()
        expect(submit).to_have_text("Upload")
        expect(submit).to_be_enabled()
        expect(pause).to_be_hidden()
        expect(form).not_to_contain_class("is-paused")
