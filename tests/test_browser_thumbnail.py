"""The thumbnail in a real browser: the uploader picks one of the frames the transcode
made on the edit page, then uploads an image instead; the watch page's player and the
home page's card show each at once.

Runs `clipsync serve` for real (see `browser.LiveServer`), whose job consumer really
transcodes the upload; accounts, the upload and the approval go through the JSON API.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import pytest
from browser import LiveServer, Watcher, reported, set_up_admin, sign_in, url_is
from clients import bearer
from PIL import Image
from playwright.sync_api import Page, expect
from test_browser_moderation import CONFIG, PASSWORD, log_in, register, upload, wait_for_status

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
TITLE = "Forklift Basics"


@pytest.fixture
def live_server_toml() -> str:
    return CONFIG


def natural_width(page: Page, selector: str) -> int:
    """The loaded width of an image (0 while it has not loaded, or failed to)."""
    page.wait_for_function(
        f"() => {{ const i = document.querySelector({selector!r}); "
        "return i && i.complete && i.naturalWidth > 0; }"
    )
    return page.eval_on_selector(selector, "image => image.naturalWidth")


def test_the_owner_changes_the_thumbnail_and_the_pages_show_it(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
            admin_token = log_in(http, ADMIN_EMAIL)
            uploader = register(http, "uploader@example.org", "staff")
            video_id = upload(http, uploader["token"], TITLE)
            wait_for_status(http, uploader["token"], video_id, "READY")
            approved = http.post(
                f"/api/admin/videos/{video_id}/approve", headers=bearer(admin_token)
            )
            assert approved.status_code == 200, approved.text

        page.get_by_role("banner").get_by_role("button", name="Sign out").click()
        sign_in(page, live_server, "uploader@example.org", PASSWORD)
        page.goto(f"/watch/{video_id}")
        player = page.locator("video#player")
        expect(player).to_have_attribute("poster", f"/hls/{video_id}/poster.jpg")

        # --- a frame of the video -------------------------------------------------------
        page.goto(f"/videos/{video_id}/edit")
        frames = page.get_by_role("group", name="Pick a frame of the video")
        expect(frames.get_by_role("button")).to_have_count(6)
        third = frames.get_by_role("button", name="Frame 3 of 6")
        expect(third).to_have_attribute("aria-pressed", "false")
        third.click()
        expect(page.locator("#thumbnail-saved")).to_be_visible()
        expect(third).to_have_attribute("aria-pressed", "true")
        chosen = f"/hls/{video_id}/candidates/3.jpg"
        expect(page.locator("#thumbnail-current")).to_have_attribute("src", chosen)

        page.goto(f"/watch/{video_id}")
        expect(player).to_have_attribute("poster", chosen)
        page.goto("/")
        card = page.locator(f'img[src="{chosen}"]')
        expect(card.first).to_be_visible()
        assert natural_width(page, f'img[src="{chosen}"]') == 640

        # --- an image of one's own --------------------------------------------------------
        picture = tmp_path / "cover.png"
        image = Image.new("RGB", (1600, 900), (20, 120, 60))
        out = io.BytesIO()
        image.save(out, "PNG")
        picture.write_bytes(out.getvalue())
        page.goto(f"/videos/{video_id}/edit")
        expect(page).to_have_url(url_is(live_server, f"/videos/{video_id}/edit"))
        page.get_by_label("Or upload an image").set_input_files(str(picture))
        page.get_by_role("button", name="Upload thumbnail").click()
        expect(page.locator("#thumbnail-saved")).to_be_visible()
        current = page.locator("#thumbnail-current")
        uploaded = re.compile(rf"^/hls/{video_id}/posters/[0-9a-f]{{16}}\.jpg$")
        expect(current).to_have_attribute("src", uploaded)
        expect(third).to_have_attribute("aria-pressed", "false")
        src = current.get_attribute("src")
        # Cropped to the video's shape (16:9) at its size: 640x360.
        assert natural_width(page, "#thumbnail-current") == 640

        page.goto(f"/watch/{video_id}")
        expect(player).to_have_attribute("poster", src)
        page.goto("/")
        expect(page.locator(f'img[src="{src}"]').first).to_be_visible()
        expect(page.locator(f'img[src="{chosen}"]')).to_have_count(0)
