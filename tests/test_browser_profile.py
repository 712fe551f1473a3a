"""The profile page in a real browser: a display name in the header, an avatar.

Runs `clipsync serve` for real (see `browser.LiveServer`) and drives it with headless
Chromium, as a person would.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from browser import LiveServer, set_up_admin, url_is
from PIL import Image
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
ADMIN_PASSWORD = "correct horse battery"


def test_a_name_and_an_avatar_are_set_on_the_profile_page(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    set_up_admin(page, live_server, ADMIN_EMAIL, ADMIN_PASSWORD)
    header = page.locator("#nav-profile")
    expect(header).to_have_text("Signed in as admin")
    header.click()
    expect(page).to_have_url(url_is(live_server, "/account/profile"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Profile")

    page.get_by_label("Shown to others as").fill("Ada <b>Admin</b>")
    page.get_by_role("button", name="Save name").click()
    expect(page.locator("#profile-done")).to_have_text("Your display name was saved.")
    expect(header).to_have_text("Signed in as Ada <b>Admin</b>")  # shown as text, inert
    expect(page.locator("#nav-profile b")).to_have_count(0)
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Ada <b>Admin</b>")

    page.goto("/account/profile")
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("just some text")
    page.get_by_label("Choose an image").set_input_files(not_an_image)
    page.get_by_role("button", name="Upload avatar").click()
    expect(page.locator("#avatar-error")).to_contain_text("not an image ClipSync can use")

    photo = tmp_path / "photo.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (20, 120, 200)).save(buffer, "JPEG")
    photo.write_bytes(buffer.getvalue())
    page.get_by_label("Choose an image").set_input_files(photo)
    page.get_by_role("button", name="Upload avatar").click()
    expect(page.locator("#profile-done")).to_have_text("Your avatar was saved.")
    avatar = page.locator("#avatar-image")
    expect(avatar).to_be_visible()
    page.wait_for_function("() => document.getElementById('avatar-image').naturalWidth === 256")

    page.get_by_role("button", name="Remove avatar").click()
    expect(page.locator("#profile-done")).to_have_text("Your avatar was removed.")
    expect(page.locator("#avatar-none")).to_be_visible()
