"""The library in a real browser: an editor unpublishes an approved video from
`/admin/library`; its uploader then renames it on the edit page and deletes it after
the confirmation page. Plain forms: every step is a page load, no script needed.

Runs `clipsync serve` for real (see `browser.LiveServer`), whose job consumer really
transcodes the upload; accounts, the upload and the approval go through the JSON API.
"""

from __future__ import annotations

import httpx
import pytest
from browser import LiveServer, Watcher, reported, set_up_admin, sign_in, url_is
from clients import bearer
from playwright.sync_api import Page, expect
from test_browser_moderation import (
    CONFIG,
    PASSWORD,
    log_in,
    register,
    upload,
    wait_for_status,
)

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
TITLE = "Harbour Safety Walkthrough"


@pytest.fixture
def live_server_toml() -> str:
    return CONFIG


def test_an_editor_unpublishes_then_the_owner_renames_and_deletes(
    page: Page, live_server: LiveServer
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
            admin_token = log_in(http, ADMIN_EMAIL)
            uploader = register(http, "uploader@example.org", "staff")
            viewer = register(http, "viewer@example.org", "staff")
            editor = register(http, "editor@example.org", "staff")
            promoted = http.patch(
                f"/api/admin/users/{editor['user']['id']}",
                json={"role": "editor"},
                headers=bearer(admin_token),
            )
            assert promoted.status_code == 200, promoted.text
            video_id = upload(http, uploader["token"], TITLE)
            wait_for_status(http, uploader["token"], video_id, "READY")
            approved = http.post(
                f"/api/admin/videos/{video_id}/approve", headers=bearer(admin_token)
            )
            assert approved.status_code == 200, approved.text
            seen = http.get(f"/api/videos/{video_id}", headers=bearer(viewer["token"]))
            assert seen.status_code == 200

        # --- the editor takes it down from the library ---------------------------------
        page.get_by_role("banner").get_by_role("button", name="Sign out").click()
        sign_in(page, live_server, "editor@example.org", PASSWORD)
        page.goto("/admin")
        nav = page.get_by_role("navigation", name="Moderation console")
        nav.get_by_role("link", name="Library").click()
        expect(page).to_have_url(url_is(live_server, "/admin/library"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Library")
        page.get_by_label("Status").select_option("APPROVED")
        page.get_by_role("button", name="Show").click()
        row = page.locator(f'.library-row[data-video-id="{video_id}"]')
        expect(row).to_contain_text(TITLE)
        expect(row.locator("[data-role=status]")).to_have_text("Approved")
        row.get_by_role("button", name="Unpublish").click()
        expect(page.locator("#library-notice")).to_contain_text("The video was unpublished")
        # Back on the list as it was filtered: approved videos only, so it is gone.
        expect(page.get_by_label("Status")).to_have_value("APPROVED")
        expect(page.locator(f'.library-row[data-video-id="{video_id}"]')).to_have_count(0)
        with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
            hidden = http.get(f"/api/videos/{video_id}", headers=bearer(viewer["token"]))
            assert hidden.status_code == 404, hidden.text
            mine = http.get(f"/api/videos/{video_id}", headers=bearer(uploader["token"]))
            assert mine.json()["video"]["status"] == "READY"

        # --- the uploader renames it, then deletes it after confirming -----------------
        page.get_by_role("banner").get_by_role("button", name="Sign out").click()
        sign_in(page, live_server, "uploader@example.org", PASSWORD)
        page.goto("/videos")
        page.get_by_role("link", name=f"Edit “{TITLE}”").click()
        expect(page).to_have_url(url_is(live_server, f"/videos/{video_id}/edit"))
        page.get_by_label("Title").fill("Harbour Safety, revised")
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#edit-saved")).to_have_text("Your changes are saved.")
        expect(page.get_by_label("Title")).to_have_value("Harbour Safety, revised")

        page.get_by_role("link", name="Delete video").click()
        expect(page).to_have_url(url_is(live_server, f"/videos/{video_id}/delete"))
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Delete “Harbour Safety, revised”?"
        )
        # "Keep it" changes nothing.
        page.get_by_role("link", name="Keep it").click()
        expect(page).to_have_url(url_is(live_server, f"/videos/{video_id}/edit"))
        stored = live_server.data_dir / "media" / "videos" / video_id
        assert (stored / "hls" / "master.m3u8").is_file()
        page.get_by_role("link", name="Delete video").click()
        page.get_by_role("button", name="Delete for good").click()
        expect(page).to_have_url(url_is(live_server, "/videos?deleted=1"))
        expect(page.locator("#deleted-notice")).to_have_text("The video was deleted.")
        expect(page.locator(f'tr[data-video-id="{video_id}"]')).to_have_count(0)
        with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
            gone = http.get(f"/api/videos/{video_id}", headers=bearer(uploader["token"]))
            assert gone.status_code == 404
        assert not stored.exists()
