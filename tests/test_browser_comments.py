"""Comments and likes on the watch page, in a real browser, by keyboard.

Runs `clipsync serve` for real (see `browser.LiveServer`). The administrator is made
through the set-up page; the video is written straight into the database (the
comments read only its row), approved in the category that two viewers share. One
viewer writes a comment with markdown and a script tag (shown as text, never run),
the other sees it appear without reloading, answers, and the first sees the answer
live; the like button toggles the count; each edits or deletes their own.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from browser import DEFAULT_TIMEOUT_MS, LiveServer, Watcher, reported, set_up_admin, sign_in
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
# New comments arrive over the event bus and the page's stream.
LIVE_TIMEOUT_MS = 15_000


def add_video(live_server: LiveServer) -> str:
    db = sqlite3.connect(live_server.data_dir / "clipsync.sqlite3")
    owner, category = db.execute("SELECT id, category FROM users").fetchone()
    video_id, at = str(uuid.uuid4()), datetime.now(UTC).isoformat(" ")
    db.execute(
        "INSERT INTO videos (id, owner_id, title, original_filename, description, category,"
        " status, progress, attempts, duration, created_at, updated_at)"
        " VALUES (?, ?, 'Harbour tour', 'clip.mp4', '', ?, 'APPROVED', 100, 1, 42.0, ?, ?)",
        (video_id, owner, category, at, at),
    )
    db.commit()
    db.close()
    return video_id


def viewer(browser: Browser, live_server: LiveServer, watcher: Watcher, email: str) -> Page:
    with httpx.Client(base_url=live_server.base_url) as http:
        answer = http.post("/api/auth/register", json={"email": email, "password": PASSWORD})
        assert answer.status_code == 201, answer.text
    context = browser.new_context(base_url=live_server.base_url)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = watcher.watch(context.new_page())
    sign_in(page, live_server, email, PASSWORD)
    return page


def test_viewers_comment_see_each_other_live_and_like_by_keyboard(
    page: Page, live_server: LiveServer, browser: Browser
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, "admin@example.org", PASSWORD)
        video_id = add_video(live_server)
        ann = viewer(browser, live_server, watcher, "ann@example.org")
        bob = viewer(browser, live_server, watcher, "bob@example.org")
        for person in (ann, bob):
            person.goto(f"/watch/{video_id}")
            expect(person.locator("#comment-form")).to_be_visible()
            expect(person.locator("#like-button")).to_be_enabled()
        # Bob's stream is open before Ann writes: what follows reaches him live.
        bob.wait_for_timeout(500)

        # Ann writes by keyboard: into the box, Tab to the button, Enter.
        ann.locator("#comment-body").focus()
        ann.keyboard.type("**Lovely** shot <script>window.pwned = 1</script>")
        ann.keyboard.press("Tab")
        ann.keyboard.press("Enter")
        mine = ann.locator("#comment-list > .comment").first
        expect(mine.locator(".comment-body strong")).to_have_text("Lovely")
        expect(mine.locator(".comment-body")).to_contain_text("<script>window.pwned = 1</script>")
        expect(ann.locator("#comment-body")).to_have_value("")

        theirs = bob.locator("#comment-list > .comment").first
        expect(theirs.locator(".comment-body strong")).to_have_text(
            "Lovely", timeout=LIVE_TIMEOUT_MS
        )
        expect(theirs.locator(".comment-author")).to_have_text("ann")
        for person in (ann, bob):
            assert person.locator("#comment-list script").count() == 0
            assert person.evaluate("() => window.pwned") is None
        # Not Bob's: no edit or delete for him.
        expect(theirs.get_by_role("button", name="Edit")).to_be_hidden()

        # Bob answers by keyboard; Ann sees the answer live, under her comment.
        theirs.get_by_role("button", name="Reply").focus()
        bob.keyboard.press("Enter")
        expect(bob.get_by_label("Reply to ann")).to_be_focused()
        bob.keyboard.type("Thanks, *ann*!")
        bob.keyboard.press("Tab")
        bob.keyboard.press("Enter")
        expect(mine.locator(".comment-replies .comment-body em")).to_have_text(
            "ann", timeout=LIVE_TIMEOUT_MS
        )
        expect(mine.locator(".comment-replies .comment-author")).to_have_text("bob")
        expect(ann.locator("#comment-total")).to_have_text("(1)")

        # The like button, by keyboard: Space toggles it, the count follows.
        like = ann.locator("#like-button")
        like.focus()
        ann.keyboard.press("Space")
        expect(like).to_have_attribute("aria-pressed", "true")
        expect(ann.locator("#like-count")).to_have_text("1 like")
        ann.keyboard.press("Space")
        expect(like).to_have_attribute("aria-pressed", "false")
        expect(ann.locator("#like-count")).to_have_text("0 likes")

        # Ann edits her comment; the box starts with what she wrote, Escape would cancel.
        mine.locator(":scope > article").get_by_role("button", name="Edit").click()
        box = ann.get_by_label("Edit your comment")
        expect(box).to_be_focused()
        expect(box).to_have_value("**Lovely** shot <script>window.pwned = 1</script>")
        box.fill("**Lovely** shot, *edited*")
        ann.keyboard.press("Tab")
        ann.keyboard.press("Enter")
        expect(mine.locator(":scope > article .comment-body em")).to_have_text("edited")
        expect(mine.locator(":scope > article .comment-flags")).to_have_text("(edited)")

        # Bob deletes his own reply (after the browser's confirmation).
        bob.once("dialog", lambda dialog: dialog.accept())
        bob.locator(".comment-replies .comment").get_by_role("button", name="Delete").click()
        expect(bob.locator(".comment-replies .comment")).to_have_count(0)

        # A reload shows what was stored: the edited comment, no reply.
        bob.reload()
        expect(bob.locator("#comment-list > .comment")).to_have_count(1)
        expect(bob.locator("#comment-list .comment-body em")).to_have_text("edited")
        expect(bob.locator(".comment-replies .comment")).to_have_count(0)
        # No page error on either side (a 404 of the absent HLS files is not one).
        assert not [line for line in watcher.console if "[pageerror]" in line], watcher.console
