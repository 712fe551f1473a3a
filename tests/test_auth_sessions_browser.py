"""A sign-in outlives many access tokens in a real browser, in two tabs, unnoticed.

Access tokens live three seconds here (`[auth] access_token_minutes = 0.05`: the
setting takes a fraction for exactly this), so a dozen seconds span four of them.
session.js renews them before they run out, one tab at a time (a Web Lock): if both
tabs sent the same refresh token, the second would look like a stolen copy and end
the session, so any uncoordinated renewal fails this test.
"""

from __future__ import annotations

import time

import pytest
from browser import LiveServer, Watcher, reported, set_up_admin, url_is
from playwright.sync_api import Page, Response, expect

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
PASSWORD = "correct horse battery"
LIFETIME_SECONDS = 3


@pytest.fixture
def live_server_toml() -> str:
    return f"[auth]\naccess_token_minutes = {LIFETIME_SECONDS / 60}\n"


def signed_in_here(page: Page) -> None:
    """What the person sees and does: their name in the header, an API call that works."""
    expect(page.locator(".nav-user")).to_have_attribute("title", f"Signed in as {ADMIN_EMAIL}")
    answer = page.evaluate(
        """async () => {
            const response = await fetch("/api/auth/me", {credentials: "same-origin"});
            return {status: response.status, body: await response.json()};
        }"""
    )
    assert answer["status"] == 200, answer
    assert answer["body"]["user"]["email"] == ADMIN_EMAIL


def test_a_session_outlives_several_access_tokens_in_two_tabs(
    page: Page, live_server: LiveServer
) -> None:
    watcher = Watcher()
    refreshes: list[int] = []

    def note(response: Response) -> None:
        if response.url.endswith("/api/auth/refresh"):
            refreshes.append(response.status)

    page.context.on("response", note)
    started = time.monotonic()
    with reported(live_server, watcher):
        watcher.watch(page)
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        other = watcher.watch(page.context.new_page())
        other.goto("/account/sessions")
        expect(other.locator(".session-current")).to_have_count(1)

        # Four access-token lifetimes with both tabs open and nobody touching them
        # (waiting in Playwright, so it sees the responses meanwhile).
        page.wait_for_timeout(4 * LIFETIME_SECONDS * 1000)

        elapsed = time.monotonic() - started
        assert len(refreshes) >= 3, refreshes
        assert set(refreshes) == {200}, refreshes
        # One tab renews for both: a token renews every 0.75 lifetime (2.25 s; about
        # 2 s as expiries are whole seconds), two tabs each renewing would double it.
        assert len(refreshes) <= elapsed / 1.4, (refreshes, elapsed)
        # Each tab still works without a reload, and so does a new page load.
        signed_in_here(page)
        signed_in_here(other)
        other.get_by_role("link", name="Sessions").click()
        expect(other).to_have_url(url_is(live_server, "/account/sessions"))
        expect(other.locator(".session-row")).to_have_count(1)
        page.reload()
        signed_in_here(page)


def test_a_page_opened_after_the_access_token_expired_is_renewed_and_shown(
    page: Page, live_server: LiveServer
) -> None:
    watcher = Watcher()
    with reported(live_server, watcher):
        watcher.watch(page)
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        # No page is open to renew it (as with a laptop that slept): the token expires.
        page.goto("about:blank")
        page.wait_for_timeout((LIFETIME_SECONDS + 1.5) * 1000)
        page.goto("/account/sessions")
        # The server sent the expired visit to sign in; the page renewed and went on.
        expect(page).to_have_url(url_is(live_server, "/account/sessions"))
        signed_in_here(page)
