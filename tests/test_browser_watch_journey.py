"""The whole watch page by keyboard only, as issue 17 tells it: a viewer opens a video,
plays it (Space), goes full screen (f), turns the French captions on (c), seeks 5 s on
(→), writes a comment with markdown and a script tag (shown inert), likes the video,
sees another viewer's comment arrive live, and goes on to the next video in Up next.
axe-core then finds no violation on the page as it stands, comment and Up next shown.

Runs `clipsync serve` for real (`browser.LiveServer`), whose job consumer transcodes the
upload; the captions and the approval go through the JSON API. The video to go on to is
a second approved video of the same uploader, written straight into the database: Up
next offers a new video's uploader's other videos before the periodic job has run
(`services/up_next.py`), and it is never played here. The viewer's page is only ever
driven by `page.keyboard`; the other viewer (the administrator) uses the mouse.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser import DEFAULT_TIMEOUT_MS, LiveServer, Watcher, reported, set_up_admin, url_is
from clients import bearer
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, expect
from test_browser_moderation import PASSWORD, log_in, register
from test_browser_player import (
    ADMIN_EMAIL,
    CONFIG,
    SRT,
    long_clip,  # noqa: F401 (a fixture)
    upload_ready,
    wait_for_manifest,
    wait_until,
)
from test_browser_up_next import add_video
from test_browser_watch_a11y import summary, violations

pytestmark = pytest.mark.browser

VIEWER_EMAIL = "viewer@example.org"
# Comments by others arrive over the event bus and the page's stream.
LIVE_TIMEOUT_MS = 15_000
# Markdown, a script tag and an event attribute: only the markdown may take effect.
COMMENT = (
    "**Lovely** *light* <script>window.pwned = 1; alert('script')</script>"
    '<img src="x" onerror="window.pwned = 2; alert(\'img\')">'
)
FRENCH_SHOWING = "Array.from(v.textTracks).some((t) => t.language === 'fr' && t.mode === 'showing')"


@pytest.fixture
def live_server_toml() -> str:
    return CONFIG


@pytest.fixture
def viewer_context(browser: Browser, live_server: LiveServer) -> Iterator[BrowserContext]:
    """The context of the page under test, which lets axe-core in past the CSP.

    A script the sanitiser let through would run in it too: the CSP cannot hide one.
    """
    context = browser.new_context(base_url=live_server.base_url, bypass_csp=True)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


def sign_in_by_keyboard(page: Page, live_server: LiveServer, email: str) -> None:
    page.goto("/login")
    expect(page.locator("#email")).to_be_focused()  # autofocus
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(url_is(live_server, "/"))


def tab_to(page: Page, selector: str, key: str = "Tab", limit: int = 80) -> None:
    """Press `key` (Tab or Shift+Tab) until the focus is on the element `selector`."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
        page.keyboard.press(key)
    raise AssertionError(f"{key} never reached {selector}")


def test_a_keyboard_only_viewer_watches_comments_likes_and_goes_on_to_up_next(
    page: Page,
    viewer_context: BrowserContext,
    live_server: LiveServer,
    long_clip: Path,  # noqa: F811
) -> None:
    admin = page
    watcher = Watcher()
    watcher.watch(admin)
    dialogs: list[str] = []
    with reported(live_server, watcher):
        # --- the world: a transcoded video with French captions, approved; a second one --
        set_up_admin(admin, live_server, ADMIN_EMAIL, PASSWORD)
        video_id = upload_ready(live_server, long_clip, "Harbour at dawn", captions=SRT)
        with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
            approved = http.post(
                f"/api/admin/videos/{video_id}/approve", headers=bearer(log_in(http, ADMIN_EMAIL))
            )
            assert approved.status_code == 200, approved.text
            category = approved.json()["video"]["category"]
            register(http, VIEWER_EMAIL, category)
        next_id = add_video(live_server, "Harbour at night", category, minutes_ago=1)

        viewer = watcher.watch(viewer_context.new_page())

        def note_dialog(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        viewer.on("dialog", note_dialog)
        sign_in_by_keyboard(viewer, live_server, VIEWER_EMAIL)
        keys = viewer.keyboard

        # --- opens the video: Space plays, f fills the screen, c captions, → 5 s on -------
        viewer.goto(f"/watch/{video_id}")
        wait_for_manifest(viewer)
        like = viewer.locator("#like-button")
        expect(like).to_be_enabled()
        expect(like).to_have_attribute("aria-pressed", "false")
        expect(viewer.locator("#like-count")).to_have_text("0 likes")
        viewer.evaluate("window.sameDocument = true")  # gone if the page reloads

        keys.press("Space")
        wait_until(viewer, "!v.paused && v.currentTime > 0.3")
        keys.press("f")
        wait_until(viewer, "d.fullscreenElement && d.fullscreenElement.id === 'player-box'")
        keys.press("c")
        wait_until(viewer, FRENCH_SHOWING)
        expect(viewer.get_by_label("Captions")).to_have_value("0")
        before = viewer.evaluate(
            """() => {
                const v = document.getElementById("player");
                window.seekedAt = [];
                v.addEventListener("seeked", () => window.seekedAt.push(v.currentTime));
                return v.currentTime;
            }"""
        )
        keys.press("ArrowRight")
        wait_until(viewer, "window.seekedAt.length > 0")
        landed = viewer.evaluate("window.seekedAt[0]")
        assert 4.7 < landed - before < 5.6, f"→ went from {before:.2f} s to {landed:.2f} s"
        keys.press("f")
        wait_until(viewer, "d.fullscreenElement === null")
        keys.press("k")  # paused from here on: the bar stays shown for axe-core
        wait_until(viewer, "v.paused")

        # --- writes a comment: the markdown formatted, the script and handler inert -------
        tab_to(viewer, "#comment-body")
        keys.type(COMMENT)
        keys.press("Tab")
        expect(viewer.locator("#comment-form button[type=submit]")).to_be_focused()
        keys.press("Enter")
        mine = viewer.locator("#comment-list > .comment").first
        body = mine.locator(".comment-body")
        expect(body.locator("strong")).to_have_text("Lovely")
        expect(body.locator("em")).to_have_text("light")
        expect(viewer.locator("#comment-body")).to_have_value("")
        shown = body.inner_text()
        assert "<script>" in shown or "pwned" not in shown, shown  # escaped or removed
        assert viewer.locator("#comment-list script, #comment-list img").count() == 0

        # --- likes the video: 0 → 1, the button pressed ---------------------------------
        tab_to(viewer, "#like-button", key="Shift+Tab")
        keys.press("Space")
        expect(like).to_have_attribute("aria-pressed", "true")
        expect(viewer.locator("#like-count")).to_have_text("1 like")

        # --- another viewer's comment appears live, without a reload --------------------
        admin.goto(f"/watch/{video_id}")
        admin.locator("#comment-body").fill("Shot from the _lighthouse_?")
        admin.get_by_role("button", name="Post comment").click()
        expect(admin.locator("#comment-list > .comment").first.locator("em")).to_have_text(
            "lighthouse"
        )
        theirs = viewer.locator("#comment-list > .comment").first
        expect(theirs.locator(".comment-body em")).to_have_text(
            "lighthouse", timeout=LIVE_TIMEOUT_MS
        )
        expect(theirs.locator(".comment-author")).to_have_text("admin")
        expect(viewer.locator("#comment-total")).to_have_text("(2)")
        assert viewer.evaluate("window.sameDocument") is True, "the page was reloaded"

        # --- Up next offers the second video --------------------------------------------
        item = viewer.locator(f"#up-next .up-next-item[data-video-id='{next_id}']")
        expect(item).to_be_visible()
        expect(item.locator(".up-next-title")).to_have_text("Harbour at night")

        # Nothing the comment carried ran, on either page.
        for person in (viewer, admin):
            assert person.evaluate("() => window.pwned") is None
        assert dialogs == [], dialogs

        # --- axe-core, on the page as it stands: comments and Up next shown -------------
        found = violations(viewer)
        assert not found, f"axe-core on the watch page:\n{summary(found)}"

        # --- goes on to the next video: Tab to its link, Enter ---------------------------
        tab_to(viewer, f"#up-next a[href='/watch/{next_id}']")
        keys.press("Enter")
        expect(viewer).to_have_url(url_is(live_server, f"/watch/{next_id}"))
        expect(viewer.locator("#video-title")).to_have_text("Harbour at night")
        assert not [line for line in watcher.console if "[pageerror]" in line], watcher.console
