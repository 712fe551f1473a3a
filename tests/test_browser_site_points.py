"""Points around the site in headless Chromium against a real `clipsync serve`, on a
phone (390 by 844 px) where it matters:

- the header folds into a menu button (a disclosure: aria-expanded, aria-controls,
  Escape closes and gives focus back) and keeps the bell and the page's search box in
  reach; without scripts the menu simply stays open, and a wide screen never folds;
- the admin's home says it shows every category and leaves rejected, failed and
  unfinished videos to the moderation pages;
- the analytics pages name categories by their labels, their charts' axes have
  titles, and their tables keep their column labels.

Videos are written straight into the database (the pages only read rows); watch events
go in through the JSON API, as a player sends them.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import LiveServer, Watcher, reported, set_up_admin, sign_in
from clients import bearer
from playwright.sync_api import Browser, Page, expect
from test_browser_ui_points import (
    assert_labels_shown,
    overview_when_counted,
    record_a_view,
    table_of,
)

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
PASSWORD = "correct horse battery"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# "About 64 px": the header of a phone, menu closed (it took 224 px before).
PHONE_HEADER_MAX = 64
# The videos are written behind the server's back: nothing may be cached.
CONFIG = """
[cache]
backend = "off"

[[category]]
name = "staff"
label = "Staff room"
self_select = true
default = true

[[category]]
name = "dealers"
label = "Dealer network"
self_select = true
"""
AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def live_server_toml() -> str:
    return CONFIG


def add_video(live_server: LiveServer, title: str, status: str, category: str = "staff") -> str:
    """A video of the admin's, written into the database; returns its id."""
    db = sqlite3.connect(live_server.data_dir / "clipsync.sqlite3")
    (owner,) = db.execute("SELECT id FROM users WHERE email = ?", (ADMIN_EMAIL,)).fetchone()
    video_id = str(uuid.uuid4())
    count = db.execute("SELECT count(*) FROM videos").fetchone()[0]
    at = (datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=count)).isoformat(" ")
    db.execute(
        "INSERT INTO videos (id, owner_id, title, original_filename, description, category,"
        " status, progress, attempts, duration, created_at, updated_at)"
        " VALUES (?, ?, ?, 'clip.mp4', '', ?, ?, 100, 1, 42.0, ?, ?)",
        (video_id, owner, title, category, status, at, at),
    )
    db.commit()
    db.close()
    return video_id


def header_height(page: Page) -> float:
    return page.locator("#site-header").evaluate("(h) => h.getBoundingClientRect().height")


def focused_id(page: Page) -> str:
    return page.evaluate("() => document.activeElement && document.activeElement.id")


def focus_is_in_menu(page: Page) -> bool:
    return page.evaluate(
        "() => document.getElementById('site-menu').contains(document.activeElement)"
    )


def axe_violations(page: Page, selector: str) -> list[dict[str, Any]]:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm install` (axe-core is a devDependency)")
    page.add_script_tag(content=AXE.read_text())
    return page.evaluate(
        """async (selector) => {
            const result = await window.axe.run(
                { include: [selector] }, { resultTypes: ["violations"] });
            return result.violations.map((v) => ({
                id: v.id, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")) }));
        }""",
        selector,
    )


# --- the header ---------------------------------------------------------------------


def test_the_header_folds_into_a_menu_button_on_a_phone(
    page: Page, browser: Browser, live_server: LiveServer
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    page.set_viewport_size(PHONE)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        banner = page.get_by_role("banner")
        button = banner.get_by_role("button", name="Menu")
        main_nav = page.get_by_role("navigation", name="Main")

        # Closed: one row of name, bell and button; the links are folded away.
        expect(button).to_be_visible()
        expect(button).to_have_attribute("aria-expanded", "false")
        expect(button).to_have_attribute("aria-controls", "site-menu")
        expect(main_nav.get_by_role("link", name="Upload")).to_be_hidden()
        expect(banner.get_by_role("button", name="Sign out")).to_be_hidden()
        assert header_height(page) <= PHONE_HEADER_MAX, header_height(page)
        bell = banner.get_by_role("link", name="Notifications")
        expect(bell).to_be_visible()
        box = bell.bounding_box()
        assert box and box["x"] + box["width"] <= PHONE["width"] and box["height"] >= 44
        # The page's search box is on the first screen, not under the header.
        search = page.get_by_role("search").get_by_role("searchbox", name="Search videos")
        expect(search).to_be_visible()
        search_box = search.bounding_box()
        assert search_box and search_box["y"] + search_box["height"] <= PHONE["height"]
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        # Opened by pointer: the links show, and the menu is a proper disclosure.
        button.click()
        expect(button).to_have_attribute("aria-expanded", "true")
        expect(main_nav.get_by_role("link", name="Upload")).to_be_visible()
        expect(banner.get_by_role("button", name="Sign out")).to_be_visible()
        # Tab goes from the button into the menu; Escape closes it and returns focus.
        button.focus()
        page.keyboard.press("Tab")
        assert focus_is_in_menu(page)
        page.keyboard.press("Escape")
        expect(button).to_have_attribute("aria-expanded", "false")
        assert focused_id(page) == "menu-button"
        expect(main_nav.get_by_role("link", name="Upload")).to_be_hidden()

        # By keyboard alone: Enter opens, Escape from a link inside closes.
        page.keyboard.press("Enter")
        expect(button).to_have_attribute("aria-expanded", "true")
        page.keyboard.press("Tab")
        page.keyboard.press("Escape")
        expect(button).to_have_attribute("aria-expanded", "false")
        assert focused_id(page) == "menu-button"

        # A click outside closes it; a link inside goes where it says.
        button.click()
        page.locator("main h1").click()
        expect(button).to_have_attribute("aria-expanded", "false")
        button.click()
        main_nav.get_by_role("link", name="Upload").click()
        expect(page).to_have_url(live_server.url("/upload"))
        expect(page.get_by_role("banner").get_by_role("button", name="Menu")).to_have_attribute(
            "aria-expanded", "false"
        )

        # axe-core finds nothing wrong with the open menu (in a context of its own: the
        # page's Content-Security-Policy keeps an injected axe-core out).
        context = browser.new_context(
            base_url=live_server.base_url, bypass_csp=True, viewport=PHONE
        )
        try:
            checked = context.new_page()
            sign_in(checked, live_server, ADMIN_EMAIL, PASSWORD)
            checked.get_by_role("banner").get_by_role("button", name="Menu").click()
            found = axe_violations(checked, "#site-header")
            assert not found, found
        finally:
            context.close()


def test_without_scripts_the_menu_stays_open_and_a_wide_screen_is_unchanged(
    page: Page, browser: Browser, live_server: LiveServer
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        page.set_viewport_size(DESKTOP)
        page.goto("/")
        banner = page.get_by_role("banner")
        expect(banner.get_by_role("button", name="Menu")).to_be_hidden()
        main_nav = page.get_by_role("navigation", name="Main")
        expect(main_nav.get_by_role("link", name="Upload")).to_be_visible()
        expect(banner.get_by_role("button", name="Sign out")).to_be_visible()
        expect(banner.get_by_role("link", name="Notifications")).to_be_visible()
        # After the main links, on their row.
        upload = main_nav.get_by_role("link", name="Upload").bounding_box()
        bell = banner.get_by_role("link", name="Notifications").bounding_box()
        assert upload and bell and upload["x"] < bell["x"] and abs(bell["y"] - upload["y"]) < 20
        wide = header_height(page)

        context = browser.new_context(base_url=live_server.base_url, java_script_enabled=False)
        try:
            bare = context.new_page()
            sign_in(bare, live_server, ADMIN_EMAIL, PASSWORD)
            for size in (PHONE, DESKTOP):  # the desktop last
                bare.set_viewport_size(size)
                bare.goto("/")
                expect(bare.locator("#menu-button")).to_be_hidden()
                nav = bare.get_by_role("navigation", name="Main")
                expect(nav.get_by_role("link", name="Upload")).to_be_visible()
                expect(
                    bare.get_by_role("banner").get_by_role("button", name="Sign out")
                ).to_be_visible()
            # A wide screen's header is the same with or without the script.
            assert header_height(bare) == wide, (header_height(bare), wide)
        finally:
            context.close()


# --- the admin's home ------------------------------------------------------------------


def test_the_admins_home_says_all_categories_and_leaves_out_rejected_videos(
    page: Page, live_server: LiveServer
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    page.set_viewport_size(PHONE)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        shown = [
            add_video(live_server, "Approved in staff", "APPROVED"),
            add_video(live_server, "Approved for dealers", "APPROVED", "dealers"),
        ]
        left_out = {
            status: add_video(live_server, f"Clip {status.lower()}", status)
            for status in ("REJECTED", "FAILED", "PROCESSING", "READY")
        }
        page.goto("/")
        expect(page.locator("#feed-scope")).to_contain_text("All categories")
        feed = page.locator('[data-role="video-list"]')
        expect(feed.locator(".video-card")).to_have_count(len(shown))
        for video_id in shown:
            expect(feed.locator(f'.video-card[data-video-id="{video_id}"]')).to_be_visible()
        for video_id in left_out.values():
            expect(page.locator(f'.video-card[data-video-id="{video_id}"]')).to_have_count(0)
        # A category shows by its label.
        expect(feed.locator(f'.video-card[data-video-id="{shown[1]}"]')).to_contain_text(
            "Dealer network"
        )
        # The moderation pages still have the others.
        page.locator("#feed-scope").get_by_role("link", name="library").click()
        for title in ("Clip rejected", "Clip failed"):
            expect(page.get_by_text(title).first).to_be_visible()


# --- analytics -------------------------------------------------------------------------


def test_analytics_use_category_labels_titled_axes_and_keep_column_labels_on_a_phone(
    page: Page, live_server: LiveServer
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    page.set_viewport_size(PHONE)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        video_id = add_video(live_server, "Harbour at dawn", "APPROVED")
        with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
            login = {"email": ADMIN_EMAIL, "password": PASSWORD}
            token = http.post("/api/auth/login", json=login).json()["token"]
            assert http.get("/api/videos", headers=bearer(token)).is_success
        record_a_view(live_server, token, video_id)
        overview_when_counted(page)

        categories = table_of(page, "By category")
        expect(categories.locator('tr[data-category="staff"] td').first).to_have_text("Staff room")
        assert_labels_shown(
            categories, ["Category", "Views", "Unique viewers", "Watch time", "Completion"]
        )
        page.get_by_text("Table", exact=True).click()
        assert_labels_shown(
            table_of(page, "Day by day"), ["Day", "Views", "Watch time", "Active users"]
        )
        axes = page.evaluate(
            """() => {
                const scales = window.clipsyncCharts.timeseries.options.scales;
                return Object.fromEntries(Object.entries(scales).map(
                    ([id, s]) => [id, s.title && s.title.display ? s.title.text : null]));
            }"""
        )
        assert axes == {
            "x": "Day",
            "count": "Views and active users",
            "minutes": "Watch time (minutes)",
        }, axes
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        page.goto(f"/analytics/videos/{video_id}")
        axes = page.evaluate(
            """() => {
                const scales = window.clipsyncCharts.retention.options.scales;
                return [scales.x.title.text, scales.y.title.text];
            }"""
        )
        assert axes == ["Point of the video", "Still watching"], axes
        page.get_by_text("Table", exact=True).click()
        assert_labels_shown(
            table_of(page, "Audience retention"), ["Point of the video", "Still watching"]
        )
